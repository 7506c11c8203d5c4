//! G.711 µ-law and A-law, per ITU-T G.711.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32_635;

/// Encodes one linear sample as µ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - ((s as u32) << 17).leading_zeros().min(7)) as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one µ-law byte.
pub fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// Encodes one linear sample as A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let mut s = sample as i32 >> 3; // 13-bit magnitude
    let sign = if s >= 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s - 1;
    }
    let byte = if s < 32 {
        (s >> 1) as u8
    } else {
        let mut exponent = 1;
        while s >= 64 && exponent < 7 {
            s >>= 1;
            exponent += 1;
        }
        ((exponent << 4) | ((s >> 1) & 0x0F)) as u8
    };
    (byte | sign) ^ 0x55
}

/// Decodes one A-law byte.
pub fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let sign = a & 0x80;
    let exponent = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0F) as i32;
    let magnitude = if exponent == 0 { (mantissa << 4) + 8 } else { ((mantissa << 4) + 0x108) << (exponent - 1) };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_round_trip_is_close() {
        for s in (-32_768i32..=32_767).step_by(97) {
            let back = ulaw_decode(ulaw_encode(s as i16)) as i32;
            let tolerance = (s.abs() / 16).max(8);
            assert!((back - s).abs() <= tolerance, "{s} -> {back}");
        }
    }

    #[test]
    fn alaw_round_trip_is_close() {
        for s in (-32_768i32..=32_767).step_by(97) {
            let back = alaw_decode(alaw_encode(s as i16)) as i32;
            let tolerance = (s.abs() / 16).max(16);
            assert!((back - s).abs() <= tolerance, "{s} -> {back}");
        }
    }

    #[test]
    fn known_code_points() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_decode(0x00), -32_124);
        assert_eq!(alaw_decode(0xAA), 32_256);
    }
}
