//! Byte ↔ sample conversion for the wire formats.

use crate::g711;

/// How samples are laid out in bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Signed 16-bit little-endian.
    Pcm16,
    /// G.711 µ-law, one byte a sample.
    Ulaw,
    /// G.711 A-law, one byte a sample.
    Alaw,
}

impl SampleFormat {
    /// Bytes per sample.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            SampleFormat::Pcm16 => 2,
            _ => 1,
        }
    }

    /// Decodes bytes into linear samples, appending to `out`. A trailing odd byte of PCM16 is an
    /// error: the caller reports it instead of silently dropping half a sample.
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<i16>) -> Result<(), OddLength> {
        match self {
            SampleFormat::Pcm16 => {
                if !bytes.len().is_multiple_of(2) {
                    return Err(OddLength(bytes.len()));
                }
                out.extend(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])));
            }
            SampleFormat::Ulaw => out.extend(bytes.iter().map(|&b| g711::ulaw_decode(b))),
            SampleFormat::Alaw => out.extend(bytes.iter().map(|&b| g711::alaw_decode(b))),
        }
        Ok(())
    }

    /// Encodes linear samples into bytes.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            SampleFormat::Pcm16 => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
            SampleFormat::Ulaw => samples.iter().map(|&s| g711::ulaw_encode(s)).collect(),
            SampleFormat::Alaw => samples.iter().map(|&s| g711::alaw_encode(s)).collect(),
        }
    }
}

/// PCM16 audio whose byte length is odd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OddLength(pub usize);

impl std::fmt::Display for OddLength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes is not a whole number of 16-bit samples", self.0)
    }
}

impl std::error::Error for OddLength {}

/// Converts a sample to a float in [-1, 1).
pub fn to_f32(s: i16) -> f32 {
    s as f32 / 32_768.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm16_round_trip_and_odd_length() {
        let samples = [0i16, 1, -1, i16::MAX, i16::MIN, 12_345];
        let bytes = SampleFormat::Pcm16.encode(&samples);
        let mut back = Vec::new();
        SampleFormat::Pcm16.decode_into(&bytes, &mut back).unwrap();
        assert_eq!(back, samples);
        assert_eq!(SampleFormat::Pcm16.decode_into(&bytes[..3], &mut back), Err(OddLength(3)));
    }
}
