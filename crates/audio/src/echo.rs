//! Acoustic echo cancellation: removes a known reference (what the loudspeaker played) from
//! microphone audio, with WebRTC's AEC3 (the pure-Rust port `aec3`): an adaptive filter that
//! finds the echo's delay and path by itself, then suppresses what it leaves.
//!
//! [`EchoCanceller`] takes the microphone audio with, sample for sample, the reference that was
//! playing when it was captured (or earlier: the echo must not come before its reference, and
//! may come up to about 0.6 s after it), at the same rate, and gives back exactly as many
//! samples, the first 10 ms silence: AEC3 works on 10 ms frames (at 16 kHz inside).
//!
//! AEC3 leaves a residue of the echo, 20–30 dB down, that a voice detector still takes for
//! speech now and then (runs of 200–350 ms measured with Silero on Piper and Kokoro voices). So
//! after it, a frame quieter than [`GATE_DB`] below the loudest reference of the last 600 ms (the
//! echo's reach) is taken for that residue and muted; a user speaking over the assistant is far
//! louder than that and passes.

use aec3::api::{EchoCanceller3Config, EchoControl};
use aec3::audio_processing::aec3::echo_canceller3::EchoCanceller3;
use aec3::audio_processing::audio_buffer::AudioBuffer;
use aec3::audio_processing::stream_config::StreamConfig;
use std::collections::VecDeque;

/// The rate AEC3 runs at.
const AEC_RATE: usize = 16_000;
/// A cleaned frame this far below the loudest recent reference is echo residue, in dB.
pub const GATE_DB: f32 = 15.0;
/// Frames of reference (10 ms) whose loudest counts: as far as an echo reaches.
const GATE_REACH: usize = 60;
/// The gain of a muted frame.
const MUTED: f32 = 0.03;

/// An echo canceller for one microphone.
pub struct EchoCanceller {
    aec: EchoCanceller3,
    render: AudioBuffer,
    capture: AudioBuffer,
    stream: StreamConfig,
    /// Samples in 10 ms at the input rate.
    frame: usize,
    /// The microphone and reference samples of the frame being filled, scaled to ±1.
    mic: Vec<f32>,
    reference: Vec<f32>,
    /// The cleaned frame (kept to avoid an allocation per frame).
    cleaned: Vec<f32>,
    /// Processed audio, waiting to be given back.
    ready: VecDeque<i16>,
    /// The reference's energy (mean square) of the last [`GATE_REACH`] frames.
    reference_energy: VecDeque<f32>,
    /// The gain the last frame ended with (the gate ramps between frames).
    gain: f32,
}

impl EchoCanceller {
    /// A canceller for audio at `rate` Hz (8, 16, 24, 32 or 48 kHz).
    pub fn new(rate: u32) -> Self {
        let rate = rate as usize;
        let buffer = || AudioBuffer::from_sample_rates(rate, 1, AEC_RATE, 1, rate);
        let frame = rate / 100;
        EchoCanceller {
            aec: EchoCanceller3::new(EchoCanceller3Config::default(), AEC_RATE as i32, 1, 1),
            render: buffer(),
            capture: buffer(),
            stream: StreamConfig::new(rate, 1, false),
            frame,
            mic: Vec::with_capacity(frame),
            reference: Vec::with_capacity(frame),
            cleaned: vec![0.0; frame],
            ready: std::iter::repeat_n(0, frame).collect(),
            reference_energy: VecDeque::with_capacity(GATE_REACH),
            gain: 1.0,
        }
    }

    /// Removes the echo of `reference` from `mic`, appending as many samples as `mic` holds to
    /// `out`. `reference[i]` is what played when `mic[i]` was captured; a shorter reference is
    /// silence after its end.
    pub fn process(&mut self, mic: &[i16], reference: &[i16], out: &mut Vec<i16>) {
        for (i, &m) in mic.iter().enumerate() {
            self.mic.push(f32::from(m) / 32_768.0);
            self.reference.push(reference.get(i).map_or(0.0, |&r| f32::from(r) / 32_768.0));
            if self.mic.len() == self.frame {
                self.run_frame();
            }
        }
        let n = mic.len().min(self.ready.len());
        out.extend(self.ready.drain(..n));
        out.extend(std::iter::repeat_n(0, mic.len() - n));
    }

    /// One 10 ms frame through AEC3: the reference is analysed, then the capture cleaned.
    fn run_frame(&mut self) {
        self.render.copy_from(&[&self.reference], &self.stream);
        self.render.split_into_frequency_bands();
        self.aec.analyze_render(&mut self.render);
        self.capture.copy_from(&[&self.mic], &self.stream);
        self.aec.analyze_capture(&mut self.capture);
        self.capture.split_into_frequency_bands();
        self.aec.process_capture(&mut self.capture, false);
        self.capture.merge_frequency_bands();
        let cleaned = &mut self.cleaned;
        self.capture.copy_to_stream(&self.stream, &mut [&mut cleaned[..]]);
        // The residue gate, ramped over the frame from the last frame's gain.
        if self.reference_energy.len() == GATE_REACH {
            self.reference_energy.pop_front();
        }
        self.reference_energy.push_back(mean_square(&self.reference));
        let loudest = self.reference_energy.iter().copied().fold(0.0, f32::max);
        let residue = mean_square(cleaned) < loudest * 10f32.powf(-GATE_DB / 10.0);
        let gain = if residue { MUTED } else { 1.0 };
        let n = cleaned.len() as f32;
        for (i, s) in cleaned.iter_mut().enumerate() {
            *s *= self.gain + (gain - self.gain) * (i as f32 + 1.0) / n;
        }
        self.gain = gain;
        self.ready.extend(cleaned.iter().map(|&s| (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16));
        self.mic.clear();
        self.reference.clear();
    }
}

/// The mean square of `frame`.
fn mean_square(frame: &[f32]) -> f32 {
    frame.iter().map(|s| s * s).sum::<f32>() / frame.len().max(1) as f32
}

// SAFETY: `EchoCanceller3` is not `Send` only because it holds its block processor as a
// `Box<dyn BlockProcessorBackend>` whose trait has no `Send` bound. Outside the crate's tests the
// one type behind it is `BlockProcessor`, which is `Send` (checked below at compile time); every
// other field is `Send` (the compiler checks them: removing this impl names only that box). The
// canceller is only ever used from one thread at a time (`&mut self`).
unsafe impl Send for EchoCanceller {}

/// Fails to compile if the processor behind AEC3's box stops being `Send`.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<aec3::audio_processing::aec3::block_processor::BlockProcessor>();
};

impl std::fmt::Debug for EchoCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoCanceller").field("frame", &self.frame).field("ready", &self.ready.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voice-like signal: a few harmonics whose pitch and loudness wander, at 24 kHz.
    fn voice(n: usize, seed: f32) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / 24_000.0;
                let pitch = 120.0 + 40.0 * (t * 1.3 + seed).sin();
                let envelope = 0.5 + 0.5 * (t * 3.1 + seed * 2.0).sin().abs();
                let s: f32 = (1..6).map(|h| (t * pitch * h as f32 * std::f32::consts::TAU).sin() / h as f32).sum();
                (s * envelope * 6_000.0) as i16
            })
            .collect()
    }

    fn rms(s: &[i16]) -> f32 {
        (s.iter().map(|&x| f32::from(x).powi(2)).sum::<f32>() / s.len().max(1) as f32).sqrt()
    }

    /// The reference as a room returns it: 120 ms later, quieter, with two reflections.
    fn echo_of(reference: &[i16]) -> Vec<i16> {
        let d = 24 * 120;
        (0..reference.len())
            .map(|i| {
                let at = |lag: usize, gain: f32| i.checked_sub(lag).map_or(0.0, |j| f32::from(reference[j]) * gain);
                (at(d, 0.5) + at(d + 24 * 7, 0.2) + at(d + 24 * 19, 0.1)) as i16
            })
            .collect()
    }

    #[test]
    fn the_echo_is_removed_and_the_near_voice_kept() {
        let n = 24_000 * 8;
        let far = voice(n, 0.0);
        let echo = echo_of(&far);
        let mut aec = EchoCanceller::new(24_000);
        let mut out = Vec::new();
        for (mic, reference) in echo.chunks(960).zip(far.chunks(960)) {
            let before = out.len();
            aec.process(mic, reference, &mut out);
            assert_eq!(out.len() - before, mic.len(), "as many samples out as in");
        }
        // After 3 s of adaptation the echo is down by more than 14 dB (this steady, harmonic
        // test voice is harder to tell from its echo than speech is).
        let late = 24_000 * 3..n;
        assert!(rms(&out[late.clone()]) < rms(&echo[late]) / 5.0, "{} left", rms(&out[24_000 * 3..]));

        // A near voice over the echo passes.
        let near = voice(24_000 * 2, 1.7);
        let mut mic = echo_of(&far[..24_000 * 2]);
        for (m, v) in mic.iter_mut().zip(&near) {
            *m = m.saturating_add(*v);
        }
        let mut kept = Vec::new();
        aec.process(&mic, &far[..24_000 * 2], &mut kept);
        assert!(rms(&kept[4_800..]) > rms(&near[4_800..]) / 3.0, "{} of {}", rms(&kept), rms(&near));
    }
}
