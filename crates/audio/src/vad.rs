//! Voice-activity detection: the [`Vad`] trait, a simple energy detector, and [`VadStream`],
//! which resamples and frames arbitrary chunks of input for any `Vad`.

use crate::pcm::to_f32;
use crate::resample::Resampler;

/// A voice-activity detector: one speech probability per fixed-size frame.
///
/// Implementations keep their own state between frames (Silero's recurrent state, say) and are
/// driven synchronously: a frame takes microseconds, so no async interface is needed.
pub trait Vad: Send {
    /// The sample rate it expects.
    fn sample_rate(&self) -> u32;
    /// Samples per frame.
    fn frame_len(&self) -> usize;
    /// The probability in [0, 1] that the frame holds speech.
    fn process(&mut self, frame: &[f32]) -> f32;
    /// Forgets all state (a new utterance or a cleared buffer).
    fn reset(&mut self);
}

/// A loudness-based detector: 20 ms frames at 16 kHz, probability rising linearly from 0 at
/// −50 dBFS to 1 at −20 dBFS (0.5 at −35 dBFS). It cannot tell speech from other loud sound;
/// it is the stand-in until a model-based detector is installed.
#[derive(Debug, Clone, Default)]
pub struct EnergyVad;

impl Vad for EnergyVad {
    fn sample_rate(&self) -> u32 {
        16_000
    }

    fn frame_len(&self) -> usize {
        320
    }

    fn process(&mut self, frame: &[f32]) -> f32 {
        if frame.is_empty() {
            return 0.0;
        }
        let mean_square = frame.iter().map(|x| x * x).sum::<f32>() / frame.len() as f32;
        let dbfs = 10.0 * mean_square.max(1e-12).log10();
        ((dbfs + 50.0) / 30.0).clamp(0.0, 1.0)
    }

    fn reset(&mut self) {}
}

/// One VAD decision, placed on the input's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadFrame {
    /// Where the frame ends, in ms since the stream began.
    pub end_ms: f64,
    /// Speech probability.
    pub probability: f32,
}

/// Feeds a [`Vad`] from chunks of 16-bit audio at any rate.
pub struct VadStream {
    vad: Box<dyn Vad>,
    resampler: Resampler,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    frames_done: u64,
}

impl VadStream {
    /// A stream converting from `input_rate` to what `vad` expects.
    pub fn new(vad: Box<dyn Vad>, input_rate: u32) -> Self {
        let resampler = Resampler::causal(input_rate, vad.sample_rate());
        VadStream { vad, resampler, pending: Vec::new(), scratch: Vec::new(), frames_done: 0 }
    }

    /// Pushes samples and returns the decisions for every frame they complete.
    pub fn push(&mut self, samples: &[i16]) -> Vec<VadFrame> {
        self.scratch.clear();
        self.scratch.extend(samples.iter().map(|&s| to_f32(s)));
        let floats = std::mem::take(&mut self.scratch);
        self.resampler.process(&floats, &mut self.pending);
        self.scratch = floats;
        let frame_len = self.vad.frame_len();
        let rate = self.vad.sample_rate() as f64;
        let mut out = Vec::new();
        let mut start = 0;
        while self.pending.len() - start >= frame_len {
            let probability = self.vad.process(&self.pending[start..start + frame_len]);
            start += frame_len;
            self.frames_done += 1;
            let end_ms = (self.frames_done * frame_len as u64) as f64 * 1000.0 / rate;
            out.push(VadFrame { end_ms, probability });
        }
        self.pending.drain(..start);
        out
    }

    /// Switches to another input rate: pending audio is dropped, the detector reset and the
    /// clock restarted ([`VadStream::restart`]).
    pub fn set_input_rate(&mut self, input_rate: u32) {
        self.resampler = Resampler::causal(input_rate, self.vad.sample_rate());
        self.restart();
    }

    /// Starts a new stream: pending audio is dropped, the detector reset, and the next frame's
    /// `end_ms` counts from 0 again.
    pub fn restart(&mut self) {
        self.resampler.reset();
        self.pending.clear();
        self.vad.reset();
        self.frames_done = 0;
    }

    /// Length of one detector frame in ms.
    pub fn frame_ms(&self) -> f64 {
        self.vad.frame_len() as f64 * 1000.0 / self.vad.sample_rate() as f64
    }

    /// Forgets the detector's state; the clock keeps running.
    pub fn reset(&mut self) {
        self.vad.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_vad_separates_silence_from_loud_tone() {
        let mut stream = VadStream::new(Box::new(EnergyVad), 24_000);
        let silence = vec![0i16; 2_400];
        let tone: Vec<i16> = (0..2_400).map(|i| ((i as f32 * 0.1).sin() * 8_000.0) as i16).collect();
        let quiet = stream.push(&silence);
        let loud = stream.push(&tone);
        assert_eq!(quiet.len() + loud.len(), 10, "200 ms is ten 20 ms frames, none held back");
        assert!(quiet.iter().all(|f| f.probability == 0.0));
        assert!(loud.iter().skip(1).all(|f| f.probability > 0.9));
        assert!((loud.last().unwrap().end_ms - 200.0).abs() < 0.01);
    }
}
