//! Audio for brazen: sample formats (PCM16, G.711), resampling, framing, noise suppression and
//! voice-activity detection. Pure computation, no I/O: the engine and the speech engines share it.

pub mod denoise;
pub mod echo;
pub mod g711;
pub mod pcm;
pub mod resample;
pub mod vad;
pub mod wav;

pub use denoise::Denoiser;
pub use echo::EchoCanceller;
pub use pcm::SampleFormat;
pub use resample::Resampler;
pub use vad::{EnergyVad, Vad, VadStream};
