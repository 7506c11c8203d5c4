//! A streaming, band-limited sample-rate converter (polyphase windowed sinc).
//!
//! For rates `from → to` with `g = gcd(from, to)`, output sample `n` sits at input time
//! `n · from / to`; its value is the input convolved with a Blackman-windowed sinc low-pass whose
//! cutoff is 92% of the lower Nyquist frequency (so 24 kHz → 16 kHz removes what would alias
//! above 8 kHz). The filter is tabulated for the `to / g` fractional positions, [`TAPS`] taps
//! each, normalised to unit gain at DC.
//!
//! [`Resampler::new`] is time-aligned with the input (no delay), so each output needs `TAPS / 2`
//! input samples of look-ahead: the last few outputs of a chunk wait for the next chunk, and
//! [`Resampler::flush`] releases them at the end of a stream (treating what follows as silence).
//! [`Resampler::causal`] never waits: every output whose time has come is produced at once, and
//! its content lags by `TAPS / 2` input samples (0.5 ms at 24 kHz) — what a live detector wants,
//! since a decision must not wait for the next chunk. Chunked and whole-buffer conversion give the
//! same samples.

/// Filter taps per output sample.
pub const TAPS: usize = 24;
const HALF: usize = TAPS / 2;
/// Cutoff as a fraction of the lower of the two Nyquist frequencies.
const CUTOFF: f64 = 0.92;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Converts a stream of samples from one rate to another, chunk by chunk.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Input step per output sample, in 1/`up` input samples.
    down: u64,
    /// Fractional positions per input sample.
    up: u64,
    /// `up` phases × `TAPS` coefficients; empty when the rates are equal.
    table: Vec<f32>,
    /// Input not yet fully used, starting at input index `base` (may start with zero padding).
    buffer: Vec<f32>,
    /// Input index of `buffer[0]`, which may be negative at the start (the zero padding).
    base: i64,
    /// Outputs produced so far; output `n` sits at `n · down / up` input samples.
    produced: u64,
    /// Input samples taken so far.
    consumed: u64,
    /// Input samples each output reads ahead of its own time (`HALF`, or 0 when causal).
    lookahead: usize,
}

impl Resampler {
    /// A time-aligned converter from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Self {
        Self::with_lookahead(from, to, HALF)
    }

    /// A converter from `from` Hz to `to` Hz that never holds output back (its content lags by
    /// `TAPS / 2` input samples).
    pub fn causal(from: u32, to: u32) -> Self {
        Self::with_lookahead(from, to, 0)
    }

    fn with_lookahead(from: u32, to: u32, lookahead: usize) -> Self {
        assert!(from > 0 && to > 0, "sample rates must be positive");
        let g = gcd(from as u64, to as u64);
        let (down, up) = (from as u64 / g, to as u64 / g);
        let table = if from == to { Vec::new() } else { design(up, down) };
        let mut r = Resampler { down, up, table, buffer: Vec::new(), base: 0, produced: 0, consumed: 0, lookahead };
        r.reset();
        r
    }

    /// Forgets the stream so far (the next sample starts a new stream).
    pub fn reset(&mut self) {
        let history = TAPS - self.lookahead - 1;
        self.buffer.clear();
        self.buffer.resize(history, 0.0);
        self.base = -(history as i64);
        self.produced = 0;
        self.consumed = 0;
    }

    /// Whether the rates are equal (the converter copies).
    pub fn is_identity(&self) -> bool {
        self.table.is_empty()
    }

    /// Converts one chunk, appending the output samples that are complete to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if self.is_identity() {
            out.extend_from_slice(input);
            return;
        }
        self.buffer.extend_from_slice(input);
        self.consumed += input.len() as u64;
        self.drain(out, None);
    }

    /// Ends the stream: releases the outputs still waiting for look-ahead (up to the input's
    /// length times the ratio) and resets.
    pub fn flush(&mut self, out: &mut Vec<f32>) {
        if self.is_identity() {
            return;
        }
        let total = (self.consumed * self.up).div_ceil(self.down);
        self.buffer.extend(std::iter::repeat_n(0.0, HALF));
        self.drain(out, Some(total));
        self.reset();
    }

    /// Computes every output whose taps are all in the buffer (and, with `limit`, below it).
    fn drain(&mut self, out: &mut Vec<f32>, limit: Option<u64>) {
        let end = self.base + self.buffer.len() as i64; // one past the last buffered input index
        loop {
            if limit.is_some_and(|l| self.produced >= l) {
                break;
            }
            let pos = self.produced * self.down; // in 1/up input samples
            let i = (pos / self.up) as i64;
            let phase = (pos % self.up) as usize;
            let first = i + self.lookahead as i64 - TAPS as i64 + 1;
            if first + TAPS as i64 > end {
                break;
            }
            let start = (first - self.base) as usize;
            let taps = &self.table[phase * TAPS..(phase + 1) * TAPS];
            let window = &self.buffer[start..start + TAPS];
            out.push(window.iter().zip(taps).map(|(x, h)| x * h).sum());
            self.produced += 1;
        }
        // Drop input no later output needs.
        let first_needed = ((self.produced * self.down) / self.up) as i64 + self.lookahead as i64 - TAPS as i64 + 1;
        let drop = (first_needed - self.base).clamp(0, self.buffer.len() as i64) as usize;
        if drop > 0 {
            self.buffer.drain(..drop);
            self.base += drop as i64;
        }
    }

    /// Converts one chunk of 16-bit samples.
    pub fn process_i16(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let floats: Vec<f32> = input.iter().map(|&s| s as f32).collect();
        let mut converted = Vec::with_capacity(floats.len() * self.up as usize / self.down as usize + TAPS);
        self.process(&floats, &mut converted);
        out.extend(converted.iter().map(|&x| to_i16(x)));
    }

    /// Ends a stream of 16-bit samples (see [`Resampler::flush`]).
    pub fn flush_i16(&mut self, out: &mut Vec<i16>) {
        let mut converted = Vec::new();
        self.flush(&mut converted);
        out.extend(converted.iter().map(|&x| to_i16(x)));
    }
}

fn to_i16(x: f32) -> i16 {
    x.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16
}

/// The polyphase table: for each of `up` fractional positions, `TAPS` coefficients.
fn design(up: u64, down: u64) -> Vec<f32> {
    // Cutoff in cycles per input sample.
    let fc = 0.5 * CUTOFF * (up as f64 / down as f64).min(1.0);
    let mut table = Vec::with_capacity(up as usize * TAPS);
    for phase in 0..up {
        let frac = phase as f64 / up as f64;
        let row: Vec<f64> = (0..TAPS)
            .map(|k| {
                // Distance from the output's position to input tap k.
                let x = (HALF as f64 - 1.0 - k as f64) + frac;
                let sinc = if x.abs() < 1e-12 {
                    2.0 * fc
                } else {
                    (std::f64::consts::TAU * fc * x).sin() / (std::f64::consts::PI * x)
                };
                // Blackman window over (-HALF, HALF).
                let t = (x + HALF as f64) / TAPS as f64;
                let w = 0.42 - 0.5 * (std::f64::consts::TAU * t).cos() + 0.08 * (2.0 * std::f64::consts::TAU * t).cos();
                sinc * w.max(0.0)
            })
            .collect();
        let sum: f64 = row.iter().sum();
        table.extend(row.iter().map(|h| (h / sum) as f32));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, n: usize) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * hz * std::f32::consts::TAU / rate as f32).sin()).collect()
    }

    fn convert(from: u32, to: u32, input: &[f32]) -> Vec<f32> {
        let mut r = Resampler::new(from, to);
        let mut out = Vec::new();
        r.process(input, &mut out);
        r.flush(&mut out);
        out
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn chunked_equals_whole_and_length_follows_ratio() {
        for (from, to) in [(24_000, 16_000), (8_000, 16_000), (22_050, 24_000), (48_000, 16_000)] {
            let input = sine(from, 440.0, from as usize);
            let whole = convert(from, to, &input);
            let mut chunked = Vec::new();
            let mut r = Resampler::new(from, to);
            for chunk in input.chunks(333) {
                r.process(chunk, &mut chunked);
            }
            r.flush(&mut chunked);
            assert_eq!(whole.len(), to as usize, "{from} → {to}");
            assert_eq!(whole, chunked, "{from} → {to}");
        }
    }

    #[test]
    fn a_tone_in_band_passes_unchanged_and_on_time() {
        for (from, to) in [(8_000, 24_000), (24_000, 16_000), (22_050, 24_000)] {
            let out = convert(from, to, &sine(from, 300.0, from as usize));
            let expected = sine(to, 300.0, out.len());
            // Away from the edges (where the stream starts and stops), sample for sample.
            let inner = TAPS * 4..out.len() - TAPS * 4;
            let err = out[inner.clone()].iter().zip(&expected[inner]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(err < 0.01, "{from} → {to}: max error {err}");
        }
    }

    #[test]
    fn what_would_alias_is_removed() {
        // 11 kHz at 24 kHz cannot be represented at 16 kHz (Nyquist 8 kHz); a linear
        // interpolator folds it to 5 kHz at nearly full level.
        let out = convert(24_000, 16_000, &sine(24_000, 11_000.0, 24_000));
        let level = rms(&out[1000..15_000]);
        assert!(level < 0.01, "aliased level {level}");
        // A 6 kHz tone, inside the band, keeps its level.
        let out = convert(24_000, 16_000, &sine(24_000, 6_000.0, 24_000));
        let level = rms(&out[1000..15_000]);
        assert!((level - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.05, "in-band level {level}");
    }

    #[test]
    fn a_causal_converter_never_waits_and_lags_half_the_filter() {
        let input = sine(24_000, 300.0, 24_000);
        let aligned = convert(24_000, 16_000, &input);
        let mut r = Resampler::causal(24_000, 16_000);
        let mut out = Vec::new();
        for chunk in input.chunks(2_400) {
            let before = out.len();
            r.process(chunk, &mut out);
            assert_eq!(out.len() - before, 1_600, "every 100 ms chunk gives its 100 ms at once");
        }
        // Its content is the aligned output 12 input samples (8 output samples) later.
        let lag = HALF * 16_000 / 24_000;
        let err = (1_000..15_000).map(|n| (out[n] - aligned[n - lag]).abs()).fold(0.0, f32::max);
        assert!(err < 1e-4, "max difference {err}");
    }

    #[test]
    fn equal_rates_copy_and_i16_rounds() {
        assert_eq!(convert(16_000, 16_000, &[0.5, -0.25]), vec![0.5, -0.25]);
        let mut r = Resampler::new(16_000, 8_000);
        let mut out = Vec::new();
        r.process_i16(&vec![1000; 4000], &mut out);
        r.flush_i16(&mut out);
        assert_eq!(out.len(), 2000);
        assert!(out[100..1900].iter().all(|&s| s.abs_diff(1000) <= 1), "DC passes");
    }
}
