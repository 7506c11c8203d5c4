//! brazen's speech engines: the Silero voice-activity detector, the Smart Turn end-of-turn
//! model, the Piper and Kokoro voices
//! on ONNX Runtime, Whisper speech recognition on whisper.cpp, and ([`engines`]) the Whisper and
//! voice adapters to the `brazen-providers` traits. ONNX Runtime is loaded at run time from the
//! shared library that `brazen models install` places in the model store (`ort` with
//! `load-dynamic`), so the build needs no native library and no download.

pub mod engines;
pub mod fit;
mod kokoro;
pub mod mel;
pub mod normalize;
mod onnx;
mod phonemes;
mod piper;
mod protobuf;
mod silero;
mod smart_turn;
mod voice;
pub mod wer;
pub mod whisper;
mod whisper_pool;

pub use kokoro::KokoroVoice;
pub use onnx::{LIBRARY as ONNX_RUNTIME_LIBRARY, environment};
pub use phonemes::{PhonemeSpan, Speech, WordSpan, ipa};
pub use piper::PiperVoice;
pub use silero::{SileroModel, SileroVad};
pub use smart_turn::{SMART_TURN_FILE, SmartTurnModel};
pub use voice::{SpeechPart, Voice};
pub use whisper::{Decode, Recognizer, Transcript, WhisperModel};
pub use whisper_pool::{Job, Reply, WhisperPool, default_whisper_threads, to_whisper_rate};

/// What can go wrong loading or running a speech engine.
#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    /// ONNX Runtime could not be loaded or failed.
    #[error("ONNX Runtime: {0}")]
    Onnx(String),
    /// The phonemizer (espeak-ng) is missing or failed.
    #[error("phonemizer: {0}")]
    Phonemizer(String),
    /// The engine failed on this input (the message says why).
    #[error("{0}")]
    Engine(String),
    /// An optional job was not done: the engine had other work.
    #[error("the recogniser is busy: an optional preview was not decoded")]
    Busy,
    /// The model file is not what the engine expects.
    #[error("model {path}: {message}")]
    Model {
        /// Which file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl From<ort::Error> for SpeechError {
    fn from(e: ort::Error) -> Self {
        SpeechError::Onnx(e.to_string())
    }
}
