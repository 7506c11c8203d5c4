//! H.264 Constrained Baseline encoding with OpenH264 (built from its bundled source: no system
//! library, no download), one thread per encoder, Annex B output.

use crate::yuv::I420;
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile, RateControlMode, UsageType,
    VuiConfig,
};

/// How a session's video is encoded (Voice Live's `avatar.video`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoSettings {
    /// Frames per second.
    pub fps: f32,
    /// Target bits per second.
    pub bitrate: u32,
    /// Frames from one key frame to the next.
    pub gop: u32,
}

impl Default for VideoSettings {
    /// 25 fps, 1 Mbit/s, a key frame every 10 frames (Voice Live's defaults, but for the
    /// bitrate, which its samples set to 1 Mbit/s for video avatars).
    fn default() -> Self {
        VideoSettings { fps: 25.0, bitrate: 1_000_000, gop: 10 }
    }
}

/// One encoded picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// Annex B NAL units (start codes included); empty when the encoder skipped the picture.
    pub data: Vec<u8>,
    /// It starts a group of pictures (SPS, PPS and an IDR slice).
    pub key: bool,
}

/// An H.264 encoder for one stream.
pub struct H264Encoder {
    encoder: Encoder,
}

impl H264Encoder {
    /// An encoder with these settings (the picture size comes with each picture).
    pub fn new(settings: VideoSettings) -> Result<H264Encoder, String> {
        if !(1.0..=60.0).contains(&settings.fps) {
            return Err(format!("a frame rate of {} is not between 1 and 60", settings.fps));
        }
        if settings.gop == 0 {
            return Err("gop_size must be at least 1".into());
        }
        let config = EncoderConfig::new()
            .profile(Profile::Baseline)
            .usage_type(UsageType::CameraVideoRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(settings.bitrate.clamp(50_000, 20_000_000)))
            .max_frame_rate(FrameRate::from_hz(settings.fps))
            .intra_frame_period(IntraFramePeriod::from_num_frames(settings.gop))
            .skip_frames(false)
            .num_threads(1)
            .vui(VuiConfig::bt601());
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| format!("cannot start the H.264 encoder: {e}"))?;
        Ok(H264Encoder { encoder })
    }

    /// Encodes the next picture.
    pub fn encode(&mut self, picture: &I420) -> Result<EncodedFrame, String> {
        let stream = self.encoder.encode(picture).map_err(|e| format!("H.264 encoding failed: {e}"))?;
        let key = matches!(stream.frame_type(), FrameType::IDR | FrameType::I);
        Ok(EncodedFrame { data: stream.to_vec(), key })
    }

    /// Makes the next picture a key frame (a new viewer, or one that lost packets).
    pub fn force_key_frame(&mut self) {
        self.encoder.force_intra_frame();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_avatar::blendshape::{COUNT, at};
    use brazen_avatar::character::{Catalog, Rgba};
    use brazen_avatar::render::{MOUTH_REGION, Renderer};
    use openh264::decoder::Decoder;
    use openh264::formats::YUVSource;

    /// NAL unit types in an Annex B stream.
    fn nal_types(data: &[u8]) -> Vec<u8> {
        openh264::nal_units(data)
            .map(|n| {
                n.iter().find(|b| **b != 0 && **b != 1).map_or(0, |_| {
                    let start = n.iter().position(|b| *b == 1).unwrap_or(0) + 1;
                    n[start] & 0x1f
                })
            })
            .collect()
    }

    #[test]
    fn a_speaking_face_encodes_and_decodes_back() {
        let look = Catalog::built_in().choose("lisa", Some("casual-sitting")).unwrap().look;
        let mut renderer = Renderer::new(look, 256, 256, Rgba([0, 0, 0, 0])).unwrap();
        let mut encoder = H264Encoder::new(VideoSettings { fps: 25.0, bitrate: 800_000, gop: 10 }).unwrap();
        let mut decoder = Decoder::new().unwrap();
        let mut picture = I420::new(256, 256).unwrap();
        let (mx, my, mw, mh) = renderer.region_px(MOUTH_REGION);
        let mut mouths = Vec::new();
        let mut keys = Vec::new();
        for i in 0..20 {
            let mut frame = [0.0; COUNT];
            frame[at::JAW_OPEN] = if i % 2 == 0 { 0.0 } else { 0.7 };
            picture.fill_from_rgba(renderer.render(&frame), [0, 177, 64]).unwrap();
            let encoded = encoder.encode(&picture).unwrap();
            assert!(!encoded.data.is_empty(), "frame {i} was skipped");
            keys.push(encoded.key);
            if i == 0 {
                let types = nal_types(&encoded.data);
                assert!(types.starts_with(&[7, 8]) && types.contains(&5), "SPS, PPS, IDR: {types:?}");
                let sps = openh264::nal_units(&encoded.data).next().unwrap();
                let at = sps.iter().position(|b| *b == 0x67).unwrap();
                assert_eq!(sps[at + 1], 66, "Baseline profile");
                assert_ne!(sps[at + 2] & 0x40, 0, "constraint_set1: Constrained Baseline");
            }
            let decoded = decoder.decode(&encoded.data).unwrap().expect("a picture");
            assert_eq!(decoded.dimensions(), (256, 256));
            let (stride, _, _) = decoded.strides();
            let mouth: Vec<u8> = (my..my + mh)
                .flat_map(|r| (mx..mx + mw).map(move |c| (r as usize, c as usize)))
                .map(|(r, c)| decoded.y()[r * stride + c])
                .collect();
            mouths.push(mouth);
        }
        assert_eq!(keys.iter().filter(|k| **k).count(), 2, "a key frame every 10: {keys:?}");
        // Decoded, the mouth region changes when the mouth opens and stays when it does not.
        let changed = |a: &[u8], b: &[u8]| a.iter().zip(b).filter(|(x, y)| x.abs_diff(**y) > 24).count();
        for i in 2..mouths.len() {
            let moved = changed(&mouths[i - 1], &mouths[i]);
            let same = changed(&mouths[i - 2], &mouths[i]);
            assert!(moved > 100 && same < moved / 10, "frame {i}: {moved} pixels moved, {same} differ from two back");
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(H264Encoder::new(VideoSettings { fps: 0.0, ..VideoSettings::default() }).is_err());
        assert!(H264Encoder::new(VideoSettings { gop: 0, ..VideoSettings::default() }).is_err());
    }
}
