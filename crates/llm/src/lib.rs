//! brazen's local language model: Qwen2 GGUF weights on candle (CPU), the chat template from the
//! model's metadata, KV-cache reuse across turns and sessions, and tool calls constrained by a
//! grammar built from the tools' JSON Schemas, so a small model always answers with a valid
//! call or a spoken reply. Beside it, [`openai`]: any model behind an OpenAI-compatible Chat
//! Completions API (OpenAI, Azure OpenAI, vLLM, TGI, llama.cpp, Ollama).

pub mod allocator;
mod arguments;
pub mod chat;
pub mod eval;
pub mod gemv;
pub mod grammar;
pub mod judge;
mod local;
pub mod model;
pub mod openai;
pub mod request;
pub mod spoken;
pub mod vocab;
pub mod worker;

pub use local::{Finish, Generation, LocalModel, MAX_TURN_TOKENS, Output, RESPOND, Step, ToolSpec, Turn};

/// A call id unique in the process (`call_` and 16 hex digits), for the calls the local model
/// makes and those a remote server gives no id: ids must not repeat across turns, or a later
/// output would answer an earlier call.
pub(crate) fn new_call_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    format!("call_{:016x}", h.finish())
}

/// What can go wrong loading or running the model.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The model file is missing or not what brazen runs.
    #[error("model {path}: {message}")]
    Model {
        /// Which file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The conversation could not be made into a prompt.
    #[error("prompt: {0}")]
    Prompt(String),
    /// Generation failed.
    #[error("generation: {0}")]
    Generation(String),
}
