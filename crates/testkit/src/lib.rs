//! What brazen's tests and benchmarks share, and production code never needs (it reads the
//! wall clock, decodes what the server encodes): [`viewer`], a minimal WebRTC client of an
//! avatar, and [`hesitation`], callers who pause mid-sentence. Only `[dev-dependencies]` and
//! benchmarks depend on this crate.

pub mod hesitation;
pub mod viewer;
