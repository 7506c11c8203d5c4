//! Whisper's log-mel features (80 mel bands, 25 ms windows every 10 ms at 16 kHz), as
//! Hugging Face's `WhisperFeatureExtractor` computes them: the input Smart Turn's audio encoder
//! was trained on. The waveform is normalised to zero mean and unit variance, framed with a
//! periodic Hann window over reflect-padded edges, turned into a power spectrum, projected on
//! Slaney-normalised mel filters, and compressed (`log10`, floored 8 below the maximum, scaled
//! to about [-1, 1]).

use realfft::RealFftPlanner;
use std::sync::{Arc, OnceLock};

/// Samples per second.
pub const RATE: usize = 16_000;
/// Window length in samples (25 ms).
const N_FFT: usize = 400;
/// Hop between frames in samples (10 ms).
const HOP: usize = 160;
/// Mel bands.
pub const N_MELS: usize = 80;
const BINS: usize = N_FFT / 2 + 1;

/// The fixed parts: the window, the filter bank and the FFT plan.
struct Tables {
    window: Vec<f64>,
    /// `N_MELS` rows of `BINS` weights.
    filters: Vec<Vec<f64>>,
    fft: Arc<dyn realfft::RealToComplex<f64>>,
}

fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let window = (0..N_FFT).map(|n| 0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / N_FFT as f64).cos()).collect();
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
        Tables { window, filters: filter_bank(), fft }
    })
}

fn hz_to_mel(hz: f64) -> f64 {
    let logstep = 27.0 / 6.4f64.ln();
    if hz >= 1000.0 { 15.0 + (hz / 1000.0).ln() * logstep } else { 3.0 * hz / 200.0 }
}

fn mel_to_hz(mel: f64) -> f64 {
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= 15.0 { 1000.0 * (logstep * (mel - 15.0)).exp() } else { 200.0 * mel / 3.0 }
}

/// Triangular filters evenly spaced on the Slaney mel scale from 0 to 8 kHz, each scaled to
/// unit area.
fn filter_bank() -> Vec<Vec<f64>> {
    let (low, high) = (hz_to_mel(0.0), hz_to_mel(RATE as f64 / 2.0));
    let edges: Vec<f64> =
        (0..N_MELS + 2).map(|i| mel_to_hz(low + (high - low) * i as f64 / (N_MELS + 1) as f64)).collect();
    let bin_hz: Vec<f64> = (0..BINS).map(|k| (RATE / 2) as f64 * k as f64 / (BINS - 1) as f64).collect();
    (0..N_MELS)
        .map(|m| {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
            let norm = 2.0 / (right - left);
            bin_hz
                .iter()
                .map(|&f| {
                    let down = (f - left) / (centre - left);
                    let up = (right - f) / (right - centre);
                    down.min(up).max(0.0) * norm
                })
                .collect()
        })
        .collect()
}

/// The features of `audio` (16 kHz, about [-1, 1]): `N_MELS` rows of `audio.len() / 160`
/// frames, row-major (the layout of an `[N_MELS, frames]` tensor).
pub fn log_mel(audio: &[f32]) -> Vec<f32> {
    let t = tables();
    let n = audio.len();
    let frames = n / HOP;
    if n < N_FFT {
        return vec![0.0; N_MELS * frames];
    }
    // Zero mean, unit variance.
    let mean = audio.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let var = audio.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    let scale = 1.0 / (var + 1e-7).sqrt();
    let x: Vec<f64> = audio.iter().map(|&v| (v as f64 - mean) * scale).collect();
    // Reflect padding by half a window on each side (the edge sample is not repeated).
    let pad = N_FFT / 2;
    let at = |i: isize| -> f64 {
        let i = i - pad as isize;
        let j = if i < 0 {
            -i
        } else if i >= n as isize {
            2 * (n as isize - 1) - i
        } else {
            i
        };
        x[j as usize]
    };
    let mut mel = vec![0.0f64; N_MELS * frames];
    let mut input = t.fft.make_input_vec();
    let mut spectrum = t.fft.make_output_vec();
    let mut power = vec![0.0f64; BINS];
    // Frames 0..frames (the reference drops the last of its frames+1).
    for f in 0..frames {
        let start = (f * HOP) as isize;
        for (k, slot) in input.iter_mut().enumerate() {
            *slot = at(start + k as isize) * t.window[k];
        }
        if t.fft.process(&mut input, &mut spectrum).is_err() {
            continue;
        }
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.norm_sqr();
        }
        for (m, filter) in t.filters.iter().enumerate() {
            let energy: f64 = filter.iter().zip(&power).map(|(w, p)| w * p).sum();
            mel[m * frames + f] = energy.max(1e-10).log10();
        }
    }
    let max = mel.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    mel.iter().map(|&v| ((v.max(max - 8.0) + 4.0) / 4.0) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_lights_its_own_band() {
        // One second of 1 kHz: its energy sits in the band around 1 kHz, in every frame.
        let audio: Vec<f32> =
            (0..RATE).map(|i| (std::f64::consts::TAU * 1000.0 * i as f64 / RATE as f64).sin() as f32 * 0.5).collect();
        let features = log_mel(&audio);
        let frames = RATE / HOP;
        assert_eq!(features.len(), N_MELS * frames);
        let band = |m: usize| features[m * frames + frames / 2];
        let loudest = (0..N_MELS).max_by(|a, b| band(*a).total_cmp(&band(*b))).unwrap();
        let centre_hz = mel_to_hz(hz_to_mel(8000.0) * (loudest + 1) as f64 / (N_MELS + 1) as f64);
        assert!((centre_hz - 1000.0).abs() < 80.0, "band {loudest} at {centre_hz:.0} Hz");
        // Floored 8 (log10) below the loudest, scaled by a quarter: a range of at most 2.
        let (lo, hi) = features.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(features.iter().all(|v| v.is_finite()) && hi - lo <= 2.0 + 1e-6, "{lo}..{hi}");
    }

    #[test]
    fn the_scale_matches_slaney() {
        for hz in [0.0, 440.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        // Each filter's area is normalised: wide high filters are lower.
        let bank = filter_bank();
        let peak = |m: usize| bank[m].iter().copied().fold(0.0, f64::max);
        assert!(peak(5) > peak(70));
    }
}
