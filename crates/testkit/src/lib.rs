//! What brazen's tests and benchmarks share, and production code never needs (it reads the
//! wall clock, decodes what the server encodes): [`viewer`], a minimal WebRTC client of an
//! avatar, [`hesitation`], callers who pause mid-sentence, and [`room`], a client that plays
//! the assistant aloud into its own microphone. Only `[dev-dependencies]` and benchmarks depend
//! on this crate.

pub mod hesitation;
pub mod room;
pub mod viewer;
