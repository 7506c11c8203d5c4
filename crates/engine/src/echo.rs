//! Server echo cancellation (`input_audio_echo_cancellation: server_echo_cancellation`): a
//! client that plays the assistant through a loudspeaker sends it back in its microphone, and
//! the assistant would interrupt itself. brazen knows every sample of the assistant's voice it
//! sent and when the client plays it, so it removes that voice from the microphone audio before
//! turn detection ([`brazen_audio::EchoCanceller`]).
//!
//! Two clocks meet here, both on the driver's time (`Instant`, an input like any other):
//!
//! - **what plays**: each chunk of the assistant's audio starts playing when it is sent, or when
//!   the chunks before it end ([`crate::playback`]); [`Echo::played`] lays it on a timeline;
//! - **what is heard**: the microphone audio is a stream at its own rate; its start is placed at
//!   the earliest moment its arrival allows (arrival time minus the audio received so far), so
//!   network jitter does not move it.
//!
//! For each piece of microphone audio the timeline gives what was playing when it was captured;
//! the network and the client's buffers add a delay that the canceller finds by itself (up to
//! about 0.6 s).

use brazen_audio::{EchoCanceller, Resampler};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How much played audio before the microphone's present is kept, in seconds (the
/// microphone's start may be found earlier later on).
const KEEP_S: f64 = 1.0;

/// The echo path of one session: what played, and the canceller.
pub(crate) struct Echo {
    canceller: EchoCanceller,
    /// The input (microphone) rate; the timeline is kept at it.
    rate: u32,
    /// What plays from `far_start` on, at the input rate.
    far: VecDeque<i16>,
    far_start: Option<Instant>,
    /// Converts the assistant's audio to the input rate: its rate and the converter.
    to_input: Option<(u32, Resampler)>,
    /// When the microphone's first sample was captured (the earliest estimate).
    mic_start: Option<Instant>,
    /// Microphone samples heard.
    mic_samples: u64,
}

impl Echo {
    /// An echo path for microphone audio at `rate` Hz.
    pub(crate) fn new(rate: u32) -> Self {
        Echo {
            canceller: EchoCanceller::new(rate),
            rate,
            far: VecDeque::new(),
            far_start: None,
            to_input: None,
            mic_start: None,
            mic_samples: 0,
        }
    }

    /// The assistant's audio `samples` at `rate` Hz start playing at `start`.
    pub(crate) fn played(&mut self, start: Instant, samples: &[i16], rate: u32) {
        if self.to_input.as_ref().is_none_or(|(r, _)| *r != rate) {
            self.to_input = Some((rate, Resampler::causal(rate, self.rate)));
        }
        let Some((_, resampler)) = self.to_input.as_mut() else { return };
        let mut converted = Vec::with_capacity(samples.len() * self.rate as usize / rate.max(1) as usize + 1);
        resampler.process_i16(samples, &mut converted);
        let far_start = *self.far_start.get_or_insert(start);
        let end = far_start + seconds(self.far.len() as f64 / self.rate as f64);
        // A pause in the playback is silence on the timeline.
        let gap = start.saturating_duration_since(end).as_secs_f64();
        let gap_samples = (gap * self.rate as f64).round() as usize;
        self.far.extend(std::iter::repeat_n(0, gap_samples));
        self.far.extend(converted);
    }

    /// Removes the assistant's voice from `mic`, which arrived at `now`.
    pub(crate) fn cancel(&mut self, mic: &[i16], now: Instant) -> Vec<i16> {
        self.mic_samples += mic.len() as u64;
        let heard = seconds(self.mic_samples as f64 / self.rate as f64);
        let start_now = now.checked_sub(heard).unwrap_or(now);
        let mic_start = *self.mic_start.get_or_insert(start_now);
        let mic_start = if start_now < mic_start {
            self.mic_start = Some(start_now);
            start_now
        } else {
            mic_start
        };
        // When `mic[0]` was captured, and what was playing from then on.
        let first = mic_start + seconds((self.mic_samples - mic.len() as u64) as f64 / self.rate as f64);
        let reference = self.reference(first, mic.len());
        let mut out = Vec::with_capacity(mic.len());
        self.canceller.process(mic, &reference, &mut out);
        self.forget_before(first);
        out
    }

    /// `n` samples of what played from `at` on (silence where nothing did).
    fn reference(&self, at: Instant, n: usize) -> Vec<i16> {
        let Some(far_start) = self.far_start else { return Vec::new() };
        let offset = if at >= far_start {
            (at.duration_since(far_start).as_secs_f64() * self.rate as f64).round() as i64
        } else {
            -((far_start.duration_since(at).as_secs_f64() * self.rate as f64).round() as i64)
        };
        (0..n as i64)
            .map(|i| usize::try_from(offset + i).ok().and_then(|j| self.far.get(j).copied()).unwrap_or(0))
            .collect()
    }

    /// Drops what played more than [`KEEP_S`] before `at`.
    fn forget_before(&mut self, at: Instant) {
        let Some(far_start) = self.far_start else { return };
        let Some(keep_from) = at.checked_sub(seconds(KEEP_S)) else { return };
        let old = keep_from.saturating_duration_since(far_start).as_secs_f64();
        let n = ((old * self.rate as f64) as usize).min(self.far.len());
        if n > 0 {
            self.far.drain(..n);
            self.far_start = Some(far_start + seconds(n as f64 / self.rate as f64));
        }
    }
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms(s: &[i16]) -> f32 {
        (s.iter().map(|&x| f32::from(x).powi(2)).sum::<f32>() / s.len().max(1) as f32).sqrt()
    }

    /// A voice-like signal at 24 kHz.
    fn voice(n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / 24_000.0;
                let pitch = 130.0 + 30.0 * (t * 1.1).sin();
                let s: f32 = (1..6).map(|h| (t * pitch * h as f32 * std::f32::consts::TAU).sin() / h as f32).sum();
                (s * (0.5 + 0.5 * (t * 2.7).sin().abs()) * 6_000.0) as i16
            })
            .collect()
    }

    #[test]
    fn the_voice_played_is_found_in_the_microphone_on_the_shared_clock() {
        // The assistant's audio goes out in 200 ms chunks, ahead of time; the client plays it
        // and its microphone hears it 150 ms later, sent back in 40 ms chunks that arrive
        // 30 ms after capture (with some jitter).
        let t0 = Instant::now();
        let far = voice(24_000 * 6);
        let mut echo = Echo::new(24_000);
        let mut sent = 0;
        let mut out = Vec::new();
        let mut heard = Vec::new();
        for tick in 0..(6_000 / 40) {
            let now_ms = tick * 40 + 40;
            // The server sends what plays up to 400 ms ahead.
            while sent < far.len() && sent / 24 < now_ms + 400 {
                let chunk = &far[sent..(sent + 4_800).min(far.len())];
                echo.played(t0 + Duration::from_millis((sent / 24) as u64), chunk, 24_000);
                sent += chunk.len();
            }
            let mic: Vec<i16> = (0..960)
                .map(|i| {
                    let at = (tick * 40) * 24 + i;
                    at.checked_sub(24 * 150).map_or(0, |j| far[j] / 2)
                })
                .collect();
            let jitter = [0, 7, 3, 12][tick % 4];
            heard.extend_from_slice(&mic);
            out.extend(echo.cancel(&mic, t0 + Duration::from_millis((now_ms + 30 + jitter) as u64)));
        }
        assert_eq!(out.len(), heard.len());
        let late = 24_000 * 3..;
        assert!(
            rms(&out[late.clone()]) < rms(&heard[late]) / 5.0,
            "{} of {}",
            rms(&out[24_000 * 3..]),
            rms(&heard[24_000 * 3..])
        );
        assert!(echo.far.len() < 24_000 * 2, "old audio is forgotten: {}", echo.far.len());
    }
}
