//! Avatar media without I/O: pictures to I420 ([`yuv`]) and H.264 Constrained Baseline
//! ([`h264`], OpenH264 built from its bundled source), sound as Opus or AAC-LC
//! ([`audio_codec`]), a character's speech and face on one clock ([`stream`]), the WebRTC
//! connection that carries them to a browser ([`peer`], str0m, and [`link`], the two together in
//! real time), STUN ([`stun`]), and the WebSocket alternative: fragmented MP4 ([`fmp4`]) made in
//! real time ([`ws_video`]).

pub mod audio_codec;
pub mod fmp4;
pub mod h264;
pub mod link;
pub mod peer;
pub mod stream;
pub mod stun;
pub mod ws_video;
pub mod yuv;

pub use audio_codec::AudioCodec;
pub use h264::{EncodedFrame, H264Encoder, VideoSettings};
pub use link::{AvatarLink, LinkOutput};
pub use peer::{OfferError, Peer};
pub use stream::{AvatarStream, Face, StreamSettings};
pub use ws_video::{WsAvatar, WsOutput};
pub use yuv::I420;
