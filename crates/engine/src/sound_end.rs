//! [`SoundEnd`]: where the sound of the speech stops, 10 ms at a time.
//!
//! A voice-activity model goes on hearing speech for a while after it stops: Silero keeps a
//! 32 ms frame's probability above its threshold for 60–110 ms after the last sound (measured on
//! Piper's voices, docs/turn-taking.md). A silence counted from its last speech frame holds that
//! lag, and so does everything waiting on the pause (its words, their verdict).
//!
//! The audio's loudness places the end within the lag: a 10 ms piece is sound when its RMS is
//! within [`RELATIVE_DB`] of the speech's recent peak (a peak that halves every second, so a
//! cough does not silence the rest of the turn) and above an absolute floor. The model still
//! decides what is speech; the loudness only moves the end of speech it heard back to where the
//! sound stopped, by at most [`MAX_LAG_MS`] — where no sound ends that close, the model's own
//! end stands (quiet speech, or noise as loud as the voice).
//!
//! Whether the sound has *stopped* (a pause worth transcribing before the model hears it) asks
//! more: no piece within [`QUIET_DB`] of the peak. A word's last consonant ("both", "with") can
//! be 30–40 dB under its vowel; a pause heard inside it would be transcribed without it.

use std::collections::VecDeque;

/// A piece this much quieter than the recent peak is not sound: −30 dB (as the recogniser's
/// trim, which then leaves out the same silence).
const RELATIVE_DB: f32 = -30.0;
/// A piece this much quieter than the recent peak is silence: −45 dB (below a soft fricative).
const QUIET_DB: f32 = -45.0;
/// A piece quieter than this RMS (of full scale) is not sound, however quiet the speech.
const FLOOR_RMS: f32 = 0.003;
/// Length of a piece, in ms.
const PIECE_MS: f64 = 10.0;
/// The recent peak halves over this long, in ms.
const PEAK_HALF_LIFE_MS: f64 = 1_000.0;
/// The furthest the end of speech moves back from the model's last speech frame, in ms.
pub const MAX_LAG_MS: f64 = 160.0;
/// Loud pieces older than this are forgotten, in ms.
const HISTORY_MS: f64 = 1_000.0;

/// The loudness of the input audio, piece by piece: where its sound last stopped.
pub(crate) struct SoundEnd {
    /// Samples per piece.
    piece: usize,
    /// Sum of squares (of full-scale samples) and count of the piece being filled.
    sum: f64,
    filled: usize,
    /// Recent peak RMS, decaying.
    peak: f32,
    /// Where the loud pieces of the last [`HISTORY_MS`] end (audio clock, ms), oldest first.
    loud: VecDeque<f64>,
    /// Where the last piece that was not silence ([`QUIET_DB`]) ends (audio clock, ms).
    audible: Option<f64>,
}

impl SoundEnd {
    /// Loudness of audio at `rate` Hz.
    pub(crate) fn new(rate: u32) -> Self {
        SoundEnd {
            piece: ((rate as f64 * PIECE_MS / 1000.0) as usize).max(1),
            sum: 0.0,
            filled: 0,
            peak: 0.0,
            loud: VecDeque::new(),
            audible: None,
        }
    }

    /// Forgets everything heard (a new rate, a cleared buffer).
    pub(crate) fn clear(&mut self, rate: u32) {
        *self = SoundEnd::new(rate);
    }

    /// Hears `samples` at `rate` Hz, which end at `clock_ms` on the audio clock.
    pub(crate) fn push(&mut self, samples: &[i16], rate: u32, clock_ms: f64) {
        let decay = 0.5f32.powf((PIECE_MS / PEAK_HALF_LIFE_MS) as f32);
        let (relative, quiet) = (10f32.powf(RELATIVE_DB / 20.0), 10f32.powf(QUIET_DB / 20.0));
        let ms_per_sample = 1000.0 / rate as f64;
        for (i, &s) in samples.iter().enumerate() {
            let x = s as f64 / 32_768.0;
            self.sum += x * x;
            self.filled += 1;
            if self.filled < self.piece {
                continue;
            }
            let rms = (self.sum / self.filled as f64).sqrt() as f32;
            (self.sum, self.filled) = (0.0, 0);
            self.peak = rms.max(self.peak * decay);
            let end = clock_ms - (samples.len() - 1 - i) as f64 * ms_per_sample;
            if rms >= (self.peak * relative).max(FLOOR_RMS) {
                self.loud.push_back(end);
            }
            if rms >= (self.peak * quiet).max(FLOOR_RMS) {
                self.audible = Some(end);
            }
        }
        // Kept from before these samples too: the model judges their frames after this.
        let first_ms = clock_ms - samples.len() as f64 * ms_per_sample;
        while self.loud.front().is_some_and(|&end| end < first_ms - HISTORY_MS) {
            self.loud.pop_front();
        }
    }

    /// Where the speech that the model heard up to `frame_end_ms` (the end of its last speech
    /// frame) stops: the end of the last loud piece by then, when it is at most
    /// [`MAX_LAG_MS`] earlier; else `frame_end_ms`.
    pub(crate) fn speech_end(&self, frame_end_ms: f64) -> f64 {
        // The model's resampler lags the clock by a fraction of a millisecond.
        const SLACK_MS: f64 = 1.0;
        self.loud
            .iter()
            .rev()
            .find(|&&end| end <= frame_end_ms + SLACK_MS)
            .filter(|&&end| end >= frame_end_ms - MAX_LAG_MS)
            .map_or(frame_end_ms, |&end| end.min(frame_end_ms))
    }

    /// Whether every piece after `ms` (audio clock) was silence ([`QUIET_DB`]): the sound has
    /// stopped since.
    pub(crate) fn quiet_since(&self, ms: f64) -> bool {
        self.audible.is_none_or(|end| end <= ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, amplitude: f32) -> Vec<i16> {
        (0..ms * 24).map(|i| ((i as f32 * 0.07).sin() * amplitude) as i16).collect()
    }

    #[test]
    fn the_sound_ends_where_the_voice_stops_not_where_the_model_stops_hearing_it() {
        let mut sound = SoundEnd::new(24_000);
        let audio = [tone(800, 10_000.0), vec![0; 24 * 300]].concat();
        sound.push(&audio, 24_000, 1_100.0);
        // The voice stopped at 800 ms; a model still hearing it until 900 ms is corrected.
        assert!((sound.speech_end(900.0) - 800.0).abs() < 0.1, "{}", sound.speech_end(900.0));
        assert!(sound.quiet_since(800.0));
        // Too far back: the model's end stands.
        assert_eq!(sound.speech_end(1_000.0), 1_000.0);
        // Sound after the frame is not counted before the model heard it.
        assert!((sound.speech_end(500.0) - 500.0).abs() < 0.1);
    }

    #[test]
    fn a_quieter_word_is_still_sound_but_a_faint_hiss_is_not() {
        let mut sound = SoundEnd::new(16_000);
        let at16 = |ms: usize, amplitude: f32| -> Vec<i16> {
            (0..ms * 16).map(|i| ((i as f32 * 0.1).sin() * amplitude) as i16).collect()
        };
        // Loud, then 20 dB quieter (sound), then 40 dB quieter (not sound, nor silence), then
        // silence.
        let audio = [at16(500, 20_000.0), at16(200, 2_000.0), at16(200, 200.0), vec![0; 16 * 100]].concat();
        sound.push(&audio, 16_000, 1_000.0);
        assert!((sound.speech_end(850.0) - 700.0).abs() < 0.1, "{}", sound.speech_end(850.0));
        assert!(!sound.quiet_since(600.0));
        // The soft consonant is no pause yet.
        assert!(!sound.quiet_since(700.0));
        assert!(sound.quiet_since(900.0));
    }

    #[test]
    fn pieces_span_the_appends_that_fill_them() {
        let mut sound = SoundEnd::new(24_000);
        let audio = [tone(400, 10_000.0), vec![0; 24 * 200]].concat();
        let mut clock = 0.0;
        for chunk in audio.chunks(100) {
            clock += chunk.len() as f64 / 24.0;
            sound.push(chunk, 24_000, clock);
        }
        assert!((sound.speech_end(500.0) - 400.0).abs() < 0.1, "{}", sound.speech_end(500.0));
    }
}
