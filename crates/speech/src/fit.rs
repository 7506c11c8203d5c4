//! Phoneme timings for speech a voice made without them (a cloud voice that returns only audio),
//! so visemes, blendshapes and word timings still move with the sound: the text is phonemized
//! with espeak-ng (the same IPA the local voices speak) and the phonemes are laid over the audio.
//!
//! The fit reads the audio's loudness in 10 ms frames: the silence before the first sound and
//! after the last becomes `^` and `$`; pauses of at least [`MIN_PAUSE_MS`] inside are matched,
//! in order, to the clause punctuation of the text (the longest pauses when there are more pauses
//! than marks), so each clause's phonemes fill the stretch of sound it was spoken in; within a
//! stretch the phonemes share the time by weight (a vowel longer than a consonant, a word break
//! short). Without a phonemizer the speech still gets its silences and one span of sound, and
//! words are timed by their length ([`Speech::words`]).

use crate::phonemes::{CLAUSE_PUNCTUATION, PhonemeSpan, Speech, ipa};

/// Frames of this length are judged loud or quiet.
const FRAME_MS: usize = 10;
/// The shortest quiet stretch inside speech taken for a pause between clauses.
pub const MIN_PAUSE_MS: usize = 150;

/// IPA vowels (the base letters; diacritics and length marks follow them).
const VOWELS: &str = "aeiouyæɑɒɔəɚɛɜɝɪʊʌøœɐɘɵɤɯɨʉɞ";

/// `samples` (what a voice said for `text`) with phoneme timings fitted to its sound, the IPA
/// from espeak-ng's `espeak_voice` (`en-us`, `de`, …).
pub fn fit_timing(text: &str, espeak_voice: &str, samples: Vec<i16>, sample_rate: u32) -> Speech {
    let ipa = ipa(espeak_voice, text).unwrap_or_default();
    let phonemes = fit(&ipa, &samples, sample_rate);
    Speech { samples, sample_rate, ipa, phonemes }
}

/// The spans of `ipa`'s phonemes over `samples`, covering them from the first to the last.
pub fn fit(ipa: &str, samples: &[i16], sample_rate: u32) -> Vec<PhonemeSpan> {
    let frame = (sample_rate as usize * FRAME_MS / 1000).max(1);
    let total = samples.len();
    let loud = loud_frames(samples, frame);
    let (Some(first), Some(last)) = (loud.iter().position(|&l| l), loud.iter().rposition(|&l| l)) else {
        return if total > 0 { vec![PhonemeSpan { phoneme: '^', start: 0, len: total }] } else { Vec::new() };
    };
    let onset = first * frame;
    let offset = ((last + 1) * frame).min(total);
    let symbols = symbols(ipa);
    // Clause marks between clauses (not the one that ends the text).
    let end = symbols.iter().rposition(|s| !CLAUSE_PUNCTUATION.contains(&s.0)).map_or(0, |i| i + 1);
    let marks: Vec<usize> =
        symbols[..end].iter().enumerate().filter(|(_, s)| CLAUSE_PUNCTUATION.contains(&s.0)).map(|(i, _)| i).collect();
    let pauses = pauses(&loud[first..=last], frame).into_iter().map(|(s, e)| (onset + s, onset + e));
    let mut pauses: Vec<(usize, usize)> = pauses.collect();
    if pauses.len() > marks.len() {
        pauses.sort_by_key(|(s, e)| std::cmp::Reverse(e - s));
        pauses.truncate(marks.len());
        pauses.sort();
    }
    let mut spans = vec![PhonemeSpan { phoneme: '^', start: 0, len: onset }];
    let mut at = onset;
    if pauses.len() == marks.len() && !marks.is_empty() {
        // Clause by clause: the phonemes before each mark fill the sound before its pause.
        let mut from = 0;
        for (&mark, &(pause_start, pause_end)) in marks.iter().zip(&pauses) {
            spread(&symbols[from..mark], at, pause_start, &mut spans);
            spans.push(PhonemeSpan { phoneme: symbols[mark].0, start: pause_start, len: pause_end - pause_start });
            at = pause_end;
            from = mark + 1;
        }
        spread(&symbols[from..], at, offset, &mut spans);
    } else {
        spread(&symbols, at, offset, &mut spans);
    }
    spans.push(PhonemeSpan { phoneme: '$', start: offset, len: total - offset });
    spans.retain(|s| s.len > 0 || s.phoneme == '^' || s.phoneme == '$');
    spans
}

/// Lays `symbols` (phoneme, weight) over `start..end` by weight, each span starting where the
/// last ended; with no symbols the stretch is one span of sound (`ə`).
fn spread(symbols: &[(char, f64)], start: usize, end: usize, spans: &mut Vec<PhonemeSpan>) {
    let len = end.saturating_sub(start);
    if symbols.is_empty() {
        if len > 0 {
            spans.push(PhonemeSpan { phoneme: 'ə', start, len });
        }
        return;
    }
    let sum: f64 = symbols.iter().map(|s| s.1).sum();
    let mut weight = 0.0;
    let mut at = start;
    for (i, (phoneme, w)) in symbols.iter().enumerate() {
        weight += w;
        let to = if i + 1 == symbols.len() { end } else { start + (len as f64 * weight / sum).round() as usize };
        spans.push(PhonemeSpan { phoneme: *phoneme, start: at, len: to.saturating_sub(at) });
        at = to.max(at);
    }
}

/// The phonemes of `ipa` with their weights: stress marks dropped, a length mark lengthening the
/// phoneme before it, diacritics (combining marks) part of theirs.
fn symbols(ipa: &str) -> Vec<(char, f64)> {
    let mut out: Vec<(char, f64)> = Vec::new();
    for c in ipa.chars() {
        match c {
            'ˈ' | 'ˌ' | '-' => {}
            'ː' | 'ˑ' => {
                if let Some(last) = out.last_mut() {
                    last.1 += 0.6;
                }
            }
            c if is_combining(c) => {}
            ' ' if out.last().is_some_and(|l| l.0 != ' ') => out.push((' ', 0.25)),
            c if CLAUSE_PUNCTUATION.contains(&c) => out.push((c, 1.5)),
            c if VOWELS.contains(c) => out.push((c, 1.6)),
            c if c.is_alphabetic() => out.push((c, 1.0)),
            _ => {}
        }
    }
    out
}

/// Modifier letters and combining diacritics (the stress and length marks are read before).
fn is_combining(c: char) -> bool {
    matches!(c as u32, 0x02B0..=0x036F)
}

/// Whether each frame is loud: its RMS above a twentieth of the loudest frame's (and above a
/// floor, so hiss is quiet).
fn loud_frames(samples: &[i16], frame: usize) -> Vec<bool> {
    let rms: Vec<f64> = samples
        .chunks(frame)
        .map(|c| (c.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / c.len() as f64).sqrt())
        .collect();
    let peak = rms.iter().cloned().fold(0.0, f64::max);
    let threshold = (peak / 20.0).max(60.0);
    rms.iter().map(|&r| r > threshold).collect()
}

/// The quiet stretches of at least [`MIN_PAUSE_MS`] in `loud` (frames from the first loud one to
/// the last), in samples from its start.
fn pauses(loud: &[bool], frame: usize) -> Vec<(usize, usize)> {
    let min_frames = MIN_PAUSE_MS / FRAME_MS;
    let mut out = Vec::new();
    let mut run_start = None;
    for (i, &l) in loud.iter().enumerate() {
        match (l, run_start) {
            (false, None) => run_start = Some(i),
            (true, Some(s)) => {
                if i - s >= min_frames {
                    out.push((s * frame, i * frame));
                }
                run_start = None;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sound (a 200 Hz tone) and silence, in ms, at 16 kHz.
    fn audio(parts: &[(bool, usize)]) -> Vec<i16> {
        let mut out = Vec::new();
        for &(sound, ms) in parts {
            for i in 0..ms * 16 {
                let t = i as f64 / 16_000.0;
                out.push(if sound { (8_000.0 * (t * 200.0 * std::f64::consts::TAU).sin()) as i16 } else { 0 });
            }
        }
        out
    }

    #[test]
    fn clauses_fill_the_sound_they_were_spoken_in() {
        let samples = audio(&[(false, 100), (true, 600), (false, 300), (true, 500), (false, 200)]);
        let spans = fit("hˈɛloʊ, wˈɜːld.", &samples, 16_000);
        assert_eq!((spans[0].phoneme, spans[0].start, spans[0].len), ('^', 0, 1_600));
        let comma = spans.iter().find(|s| s.phoneme == ',').expect("the comma");
        assert_eq!((comma.start, comma.len), (11_200, 4_800), "the comma is the pause");
        let last = spans.last().unwrap();
        assert_eq!((last.phoneme, last.start, last.start + last.len), ('$', 24_000, samples.len()));
        for pair in spans.windows(2) {
            assert_eq!(pair[0].start + pair[0].len, pair[1].start, "contiguous: {pair:?}");
        }
        let hello: Vec<char> = spans.iter().take_while(|s| s.phoneme != ',').map(|s| s.phoneme).collect();
        assert_eq!(hello, ['^', 'h', 'ɛ', 'l', 'o', 'ʊ'], "stress marks dropped");
        let o = spans.iter().find(|s| s.phoneme == 'ɛ').unwrap();
        let h = spans.iter().find(|s| s.phoneme == 'h').unwrap();
        assert!(o.len > h.len, "a vowel lasts longer than a consonant");
    }

    #[test]
    fn without_pauses_or_phonemes_the_sound_is_still_covered() {
        let samples = audio(&[(false, 50), (true, 400), (false, 50)]);
        let spans = fit("ə, b.", &samples, 16_000);
        assert!(spans.iter().any(|s| s.phoneme == ','), "a mark without a pause is spread with the rest");
        let none = fit("", &samples, 16_000);
        assert_eq!(none.iter().map(|s| s.phoneme).collect::<String>(), "^ə$");
        assert_eq!(fit("a", &audio(&[(false, 100)]), 16_000).len(), 1, "silence is one span");
        assert!(fit("a", &[], 16_000).is_empty());
    }
}
