//! A streaming sample-rate converter (linear interpolation).
//!
//! Good enough for voice-activity detection and for converting the TTS output to telephone
//! rates; the speech issue replaces it with a band-limited resampler where quality matters.

/// Converts a stream of samples from one rate to another, chunk by chunk, without gaps or
/// repeated samples at chunk boundaries.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u64,
    to: u64,
    /// Position of the next output sample, in 1/`to` input samples, from `prev`'s index.
    phase: u64,
    /// The last input sample of the previous chunk.
    prev: Option<f32>,
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Self {
        assert!(from > 0 && to > 0, "sample rates must be positive");
        Resampler { from: from as u64, to: to as u64, phase: 0, prev: None }
    }

    /// Whether the rates are equal (the converter copies).
    pub fn is_identity(&self) -> bool {
        self.from == self.to
    }

    /// Converts one chunk, appending the output samples to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if input.is_empty() {
            return;
        }
        if self.is_identity() {
            out.extend_from_slice(input);
            return;
        }
        let offset = usize::from(self.prev.is_some());
        let len = input.len() + offset;
        let at = |i: usize| if i < offset { self.prev.unwrap_or(0.0) } else { input[i - offset] };
        while (self.phase / self.to) as usize + 1 < len {
            let idx = (self.phase / self.to) as usize;
            let frac = (self.phase % self.to) as f32 / self.to as f32;
            out.push(at(idx) * (1.0 - frac) + at(idx + 1) * frac);
            self.phase += self.from;
        }
        self.phase -= (len as u64 - 1) * self.to;
        self.prev = input.last().copied();
    }

    /// Converts one chunk of 16-bit samples.
    pub fn process_i16(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let floats: Vec<f32> = input.iter().map(|&s| s as f32).collect();
        let mut converted = Vec::with_capacity(floats.len() * self.to as usize / self.from as usize + 2);
        self.process(&floats, &mut converted);
        out.extend(converted.iter().map(|&x| x.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, n: usize) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * hz * std::f32::consts::TAU / rate as f32).sin()).collect()
    }

    #[test]
    fn chunked_equals_whole_and_length_follows_ratio() {
        let input = sine(24_000, 440.0, 24_000);
        let mut whole = Vec::new();
        Resampler::new(24_000, 16_000).process(&input, &mut whole);
        let mut chunked = Vec::new();
        let mut r = Resampler::new(24_000, 16_000);
        for chunk in input.chunks(333) {
            r.process(chunk, &mut chunked);
        }
        assert_eq!(whole.len(), chunked.len());
        assert!(whole.iter().zip(&chunked).all(|(a, b)| (a - b).abs() < 1e-5));
        assert!((whole.len() as i64 - 16_000).abs() <= 1, "{}", whole.len());
    }

    #[test]
    fn upsampled_sine_stays_a_sine() {
        let input = sine(8_000, 200.0, 8_000);
        let mut out = Vec::new();
        Resampler::new(8_000, 24_000).process(&input, &mut out);
        let expected = sine(24_000, 200.0, out.len());
        let err = out.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(err < 0.02, "max error {err}");
    }
}
