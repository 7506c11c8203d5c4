//! What every TTS voice offers: speech streamed as its timing first, then audio in chunks, so a
//! caller can send the first words' audio while the rest is still being made.

use crate::{SpeechError, phonemes::Speech};

/// A part of streamed speech, in the order a voice hands them out.
#[derive(Debug)]
pub enum SpeechPart<'a> {
    /// What will be said and when: the IPA and phoneme spans on the sample clock, the sample
    /// rate, and no samples. Handed out once, before any audio.
    Timing(&'a Speech),
    /// The next samples.
    Audio(&'a [i16]),
}

/// A text-to-speech voice.
pub trait Voice: Send + Sync {
    /// Speaks `text` in the voice named `voice` (voices with one speaker ignore it) at `rate`
    /// (1.0 = normal), handing `sink` the timing and then the audio. `sink` returns `false` to
    /// stop early (nobody is listening any more).
    fn speak(
        &self,
        text: &str,
        voice: &str,
        rate: f32,
        sink: &mut dyn FnMut(SpeechPart<'_>) -> bool,
    ) -> Result<(), SpeechError>;

    /// Speaks `text` whole: the timing with all the audio in `samples`.
    fn speak_all(&self, text: &str, voice: &str, rate: f32) -> Result<Speech, SpeechError> {
        let mut speech = None;
        let mut samples = Vec::new();
        self.speak(text, voice, rate, &mut |part| {
            match part {
                SpeechPart::Timing(t) => speech = Some(t.clone()),
                SpeechPart::Audio(chunk) => samples.extend_from_slice(chunk),
            }
            true
        })?;
        let mut speech = speech.ok_or_else(|| SpeechError::Engine("the voice gave no timing".into()))?;
        speech.samples = samples;
        Ok(speech)
    }
}
