//! Noise suppression of microphone audio: RNNoise (a recurrent network over 22 frequency bands,
//! run by the pure-Rust `nnnoiseless`, its weights compiled in) on 10 ms frames at 48 kHz.
//!
//! [`Denoiser`] takes audio at the input rate and gives back exactly as many samples, so the
//! session's audio clock is unchanged: the audio is resampled to 48 kHz, denoised a frame at a
//! time and resampled back, and the result lags the input by one frame (10 ms) and the
//! resamplers' filters (about 1 ms); the first 10 ms out are silence.

use crate::Resampler;
use nnnoiseless::DenoiseState;
use std::collections::VecDeque;

/// The rate RNNoise works at.
const RATE: u32 = 48_000;

/// A streaming noise suppressor for one input.
pub struct Denoiser {
    state: Box<DenoiseState<'static>>,
    up: Resampler,
    down: Resampler,
    /// 48 kHz audio waiting for a whole frame.
    pending: Vec<f32>,
    /// Denoised audio at the input rate, waiting to be given back.
    ready: VecDeque<i16>,
    /// One denoised frame at 48 kHz (kept to avoid an allocation per frame).
    frame: Vec<f32>,
    /// One denoised frame at the input rate.
    back: Vec<f32>,
}

impl Denoiser {
    /// A suppressor for audio at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        // One frame, plus the few samples the resamplers' rounding may hold back.
        let lag = (rate as usize * DenoiseState::FRAME_SIZE).div_ceil(RATE as usize) + 4;
        Denoiser {
            state: DenoiseState::new(),
            up: Resampler::causal(rate, RATE),
            down: Resampler::causal(RATE, rate),
            pending: Vec::new(),
            ready: std::iter::repeat_n(0, lag).collect(),
            frame: vec![0.0; DenoiseState::FRAME_SIZE],
            back: Vec::new(),
        }
    }

    /// Denoises `input`, appending as many samples to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let as_f32: Vec<f32> = input.iter().map(|&s| f32::from(s)).collect();
        self.up.process(&as_f32, &mut self.pending);
        let mut whole = 0;
        for chunk in self.pending.chunks_exact(DenoiseState::FRAME_SIZE) {
            self.state.process_frame(&mut self.frame, chunk);
            self.back.clear();
            self.down.process(&self.frame, &mut self.back);
            self.ready.extend(self.back.iter().map(|&s| s.round().clamp(-32_768.0, 32_767.0) as i16));
            whole += chunk.len();
        }
        self.pending.drain(..whole);
        let n = input.len().min(self.ready.len());
        out.extend(self.ready.drain(..n));
        // Never short: the clock must not slip (only if the resamplers' rounding ran ahead).
        out.extend(std::iter::repeat_n(0, input.len() - n));
    }
}

impl std::fmt::Debug for Denoiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Denoiser").field("pending", &self.pending.len()).field("ready", &self.ready.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic white noise at about `rms`.
    fn noise(n: usize, rms: f32, seed: &mut u32) -> Vec<i16> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 17;
                *seed ^= *seed << 5;
                ((*seed as f32 / u32::MAX as f32) * 2.0 - 1.0) * rms * 1.732
            })
            .map(|s| s as i16)
            .collect()
    }

    fn rms(s: &[i16]) -> f32 {
        (s.iter().map(|&x| f32::from(x).powi(2)).sum::<f32>() / s.len().max(1) as f32).sqrt()
    }

    #[test]
    fn steady_noise_is_removed_and_the_clock_kept() {
        for rate in [24_000, 16_000, 8_000] {
            let mut d = Denoiser::new(rate);
            let mut seed = 7;
            let input = noise(rate as usize * 3, 1_000.0, &mut seed);
            let mut out = Vec::new();
            // Odd chunk sizes, as clients send.
            for chunk in input.chunks(rate as usize / 10 + 3) {
                let before = out.len();
                d.process(chunk, &mut out);
                assert_eq!(out.len() - before, chunk.len(), "as many samples out as in");
            }
            let settled = &out[rate as usize..];
            // At 8 kHz (telephone audio) the noise fills only the bands up to 4 kHz, and RNNoise
            // removes less of it.
            let floor = if rate == 8_000 { 0.7 } else { 0.1 };
            assert!(rms(settled) < rms(&input) * floor, "{rate} Hz: {} left of {}", rms(settled), rms(&input));
        }
    }
}
