//! What brazen's tests and benchmarks share, and production code never needs (it reads the
//! wall clock, decodes what the server encodes): [`viewer`], a minimal WebRTC client of an
//! avatar. Only `[dev-dependencies]` and benchmarks depend on this crate.

pub mod viewer;
