//! Hesitations in synthetic speech: a sentence written with "..." after a word makes a voice
//! pause there with the intonation of a sentence going on; [`quiet_stretch`] finds that pause
//! and [`stretch_pause`] sets it to the length a test needs (a caller who hesitates for 400 ms,
//! 600 ms, …).

use std::ops::Range;

/// The longest quiet stretch (10 ms windows below 2 % of full scale) within 400 ms of the
/// sample `estimate` (where the word before the pause is thought to end): where the voice paused.
pub fn quiet_stretch(samples: &[i16], rate: u32, estimate: usize) -> Range<usize> {
    let win = (rate as usize / 100).max(1);
    let (from, to) = (estimate.saturating_sub(40 * win).min(samples.len()), (estimate + 40 * win).min(samples.len()));
    let quiet: Vec<bool> =
        (from..to).step_by(win).map(|i| samples[i..(i + win).min(to)].iter().all(|s| s.unsigned_abs() < 650)).collect();
    let (mut best, mut start) = (0..0, None);
    for (k, &q) in quiet.iter().chain([&false]).enumerate() {
        match (q, start) {
            (true, None) => start = Some(k),
            (false, Some(s)) => {
                if k - s > best.len() {
                    best = s..k;
                }
                start = None;
            }
            _ => {}
        }
    }
    (from + best.start * win).min(to)..(from + best.end * win).min(to)
}

/// Replaces the voice's pause near `estimate` (see [`quiet_stretch`]) with `pause_ms` of
/// silence; returns the pause's length as the voice made it, in samples (0: none found, and
/// the silence is inserted at `estimate`).
pub fn stretch_pause(samples: &mut Vec<i16>, rate: u32, estimate: usize, pause_ms: usize) -> usize {
    let gap = quiet_stretch(samples, rate, estimate);
    let found = gap.len();
    let at = if found == 0 { estimate.min(samples.len())..estimate.min(samples.len()) } else { gap };
    samples.splice(at, vec![0; pause_ms * rate as usize / 1_000]);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_quiet_stretch_near_the_word_is_stretched() {
        // 300 ms of sound, 120 ms of quiet, 200 ms of sound, 50 ms quiet, 200 ms sound (16 kHz).
        let sound = |ms: usize| vec![5_000i16; ms * 16];
        let quiet = |ms: usize| vec![0i16; ms * 16];
        let mut audio = [sound(300), quiet(120), sound(200), quiet(50), sound(200)].concat();
        assert_eq!(quiet_stretch(&audio, 16_000, 300 * 16), 300 * 16..420 * 16);
        let before = audio.len();
        assert_eq!(stretch_pause(&mut audio, 16_000, 310 * 16, 500), 120 * 16);
        assert_eq!(audio.len(), before + (500 - 120) * 16);
        assert!(audio[300 * 16..800 * 16].iter().all(|&s| s == 0) && audio[800 * 16] != 0);
    }
}
