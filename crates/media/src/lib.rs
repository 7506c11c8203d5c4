//! Avatar video without I/O: pictures to I420 ([`yuv`]) and I420 to H.264 Constrained Baseline
//! ([`h264`], OpenH264 built from its bundled source), the codec browsers decode over WebRTC and
//! MediaSource alike.

pub mod h264;
pub mod yuv;

pub use h264::{EncodedFrame, H264Encoder, VideoSettings};
pub use yuv::I420;
