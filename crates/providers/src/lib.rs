//! The engines brazen's conversation engine asks for work, as small traits every
//! implementation shares: voice-activity detection ([`Vad`], from `brazen-audio`), the
//! end-of-turn model ([`TurnModel`]), speech recognition ([`Asr`]), the language model ([`Llm`]), speech synthesis ([`Tts`]) and the tools
//! that run inside brazen ([`Tools`]), with their requests and the events they stream back.
//! Cancelling is dropping the stream.
//!
//! This crate sits low in the data flow: the engine (`brazen-engine`) emits `Start*` outputs
//! with these requests and the driver feeds the streamed events back as inputs; each real
//! implementation lives in its engine's crate (`brazen-speech`: Whisper, Piper, Kokoro;
//! `brazen-llm`: the local model), the labelled stand-ins in [`echo`]; the binary picks one of
//! each. Nothing here knows about the conversation, the avatar or a socket.

pub mod echo;
pub mod routing;
pub mod schema;

pub use brazen_audio::Vad;
use brazen_protocol::session::SessionConfig;
use brazen_protocol::{Item, Tool, ToolChoice, Voice};
use futures_core::Stream;
pub use routing::{Routed, Routing, ToolPrior};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A stream of engine events; dropping it cancels the work.
pub type EngineStream<T> = Pin<Box<dyn Stream<Item = T> + Send>>;

/// Transcribe one user utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct AsrRequest {
    /// The user item the audio belongs to.
    pub item_id: String,
    /// Mono 16-bit samples.
    pub samples: Vec<i16>,
    /// Their rate.
    pub sample_rate: u32,
    /// Language hint (BCP-47).
    pub language: Option<String>,
    /// Prompt / vocabulary hint.
    pub prompt: Option<String>,
    /// A preview of a turn still being spoken (the audio so far): answer with `Done` only, or
    /// with an empty `Done` to give no preview.
    pub preview: bool,
    /// Someone waits on these words now: speech held back over the assistant's reply, whose
    /// words decide whether it interrupts, or (semantic turn detection) a pause's words, which
    /// decide whether the turn ends. Recognised before other work; replies being generated on
    /// the same cores pause for it.
    pub urgent: bool,
    /// Worth doing only on a recogniser with nothing else to do (a turn's words so far, for the
    /// language model to compute ahead): an engine may answer `Failed` at once when it is busy,
    /// and give it up halfway for urgent work.
    pub optional: bool,
}

/// What a speech recogniser streams back.
#[derive(Debug, Clone, PartialEq)]
pub enum AsrEvent {
    /// More of the transcript.
    Delta(String),
    /// The final transcript.
    Done(String),
    /// Recognition failed.
    Failed(String),
}

/// Speech recognition.
pub trait Asr: Send + Sync {
    /// Transcribes one utterance.
    fn transcribe(&self, request: AsrRequest) -> EngineStream<AsrEvent>;
}

/// Judge whether the speaker has finished their turn, from its audio up to a pause.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnRequest {
    /// Mono 16-bit samples: the turn so far, the pause included.
    pub samples: Vec<i16>,
    /// Their rate.
    pub sample_rate: u32,
}

/// What an end-of-turn model answers (once).
#[derive(Debug, Clone, PartialEq)]
pub enum TurnVerdict {
    /// The probability (0–1) that the turn is finished.
    Probability(f32),
    /// The model could not say (none installed, or it failed): silence and the transcript
    /// decide alone.
    Failed(String),
}

/// An end-of-turn model: hears in the audio whether a speaker who paused has finished.
pub trait TurnModel: Send + Sync {
    /// Judges one pause.
    fn judge(&self, request: TurnRequest) -> EngineStream<TurnVerdict>;
}

/// No end-of-turn model: every verdict is [`TurnVerdict::Failed`].
#[derive(Debug, Clone, Default)]
pub struct NoTurnModel;

impl TurnModel for NoTurnModel {
    fn judge(&self, _request: TurnRequest) -> EngineStream<TurnVerdict> {
        Box::pin(futures_util::stream::iter([TurnVerdict::Failed("no end-of-turn model is loaded".into())]))
    }
}

/// Generate the assistant's next turn.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    /// The system prompt.
    pub instructions: String,
    /// The conversation so far, oldest first (user audio carries its transcript).
    pub items: Vec<Item>,
    /// Functions it may call.
    pub tools: Vec<Tool>,
    /// Tool choice.
    pub tool_choice: ToolChoice,
    /// Sampling temperature.
    pub temperature: f64,
    /// Output token cap.
    pub max_output_tokens: Option<u64>,
    /// Which tools the user's words call for, when the agent routes by meaning ([`Routed`]).
    pub routing: Option<Routing>,
}

impl LlmRequest {
    /// The request a session configured as `config` makes for a turn over `items`.
    pub fn new(config: &SessionConfig, items: Vec<Item>) -> LlmRequest {
        LlmRequest {
            instructions: config.instructions.clone(),
            items,
            tools: config.tools.clone(),
            tool_choice: config.tool_choice.clone(),
            temperature: config.temperature,
            max_output_tokens: config.max_output_tokens,
            routing: None,
        }
    }
}

/// Token counts reported by a language model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LlmUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Prompt tokens served from a cache.
    pub cached_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
}

/// What a language model streams back.
#[derive(Debug, Clone, PartialEq)]
pub enum LlmEvent {
    /// More assistant text.
    TextDelta(String),
    /// A function call begins.
    ToolCallStart {
        /// Its id.
        call_id: String,
        /// The function.
        name: String,
    },
    /// More of a call's JSON arguments.
    ToolCallArguments {
        /// The call.
        call_id: String,
        /// New argument text.
        delta: String,
    },
    /// Generation finished.
    Done {
        /// Token counts.
        usage: LlmUsage,
        /// It stopped at the token cap.
        hit_token_cap: bool,
    },
    /// Generation failed.
    Failed(String),
}

/// A language model.
pub trait Llm: Send + Sync {
    /// Streams the next assistant turn.
    fn generate(&self, request: LlmRequest) -> EngineStream<LlmEvent>;

    /// The next turn will likely start from this conversation: compute its prompt ahead if
    /// that helps (a local model fills its KV cache). Does nothing by default.
    fn prepare(&self, _request: LlmRequest) {}

    /// Whether [`Llm::prepare`] does anything (a local model computes the prompt ahead): a
    /// session then hands it the user's words while they speak, previewed for it. False by
    /// default.
    fn computes_ahead(&self) -> bool {
        false
    }

    /// Judges, from the words, whether the user's last message (the conversation's last item,
    /// what they said up to a pause) is finished: the probability that it ends there. A model
    /// that cannot say answers [`TurnVerdict::Failed`] (the default).
    fn end_of_turn(&self, _request: LlmRequest) -> EngineStream<TurnVerdict> {
        Box::pin(futures_util::stream::iter([TurnVerdict::Failed("this language model does not judge turns".into())]))
    }
}

/// Speak one phrase.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsRequest {
    /// What to say.
    pub text: String,
    /// How.
    pub voice: Voice,
}

/// When a word of a phrase is heard, relative to the start of the phrase's audio.
#[derive(Debug, Clone, PartialEq)]
pub struct WordTiming {
    /// The word as written in the phrase (its whitespace-separated tokens, in order).
    pub text: String,
    /// Start, ms from the phrase's first sample.
    pub start_ms: f64,
    /// Duration, ms.
    pub duration_ms: f64,
}

/// One phoneme as a voice timed it, in ms from the start of its phrase's audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Phone {
    /// The IPA symbol (`^` / `$` the silence before / after, `' '` a word break).
    pub symbol: char,
    /// Where it starts.
    pub start_ms: f64,
    /// How long it lasts.
    pub duration_ms: f64,
}

/// What a speech synthesiser streams back.
#[derive(Debug, Clone, PartialEq)]
pub enum TtsEvent {
    /// When each word of the phrase is heard (before or with its audio). Without it, the
    /// phrase's transcript is sent whole, just before its audio.
    Words(Vec<WordTiming>),
    /// When each phoneme of the phrase is heard, for lip-sync (before or with its audio).
    Phones(Vec<Phone>),
    /// Audio, in order.
    Audio {
        /// Mono 16-bit samples.
        samples: Vec<i16>,
        /// Their rate.
        sample_rate: u32,
    },
    /// The phrase is fully spoken.
    Done,
    /// Synthesis failed.
    Failed(String),
}

/// Speech synthesis.
pub trait Tts: Send + Sync {
    /// Streams the audio of one phrase.
    fn synthesize(&self, request: TtsRequest) -> EngineStream<TtsEvent>;
}

/// A tool that runs inside brazen (rather than on the client): what the model is told about
/// it, and how long one call may take.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Its name, description and JSON Schema, as the model sees them.
    pub definition: Tool,
    /// How long one call may run before it is stopped and answered with a timeout error.
    pub timeout: std::time::Duration,
}

/// One call of a server-side tool, as the model made it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The call's id (the `function_call` item's `call_id`).
    pub call_id: String,
    /// The tool.
    pub name: String,
    /// Its arguments, the JSON text the model wrote.
    pub arguments: String,
    /// The session (and conversation) it belongs to, so a tool can record it (an order's
    /// conversation); empty when there is none.
    pub session_id: String,
}

/// What a server-side tool streams back: one of these ends the call.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolEvent {
    /// The call's output (usually JSON), given to the model as the `function_call_output`.
    Done(String),
    /// The call failed; the message is given to the model as the call's output, so it can
    /// recover (ask again, apologise).
    Failed(String),
}

/// The tools that run inside brazen (an agent's catalogue, orders, knowledge base, …).
pub trait Tools: Send + Sync {
    /// The tools offered to the model beside the ones a client declares.
    fn specs(&self) -> Vec<ToolSpec>;

    /// Runs one call.
    fn call(&self, call: ToolCall) -> EngineStream<ToolEvent>;
}

/// No server-side tools: every tool call goes to the client.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTools;

impl Tools for NoTools {
    fn specs(&self) -> Vec<ToolSpec> {
        Vec::new()
    }

    fn call(&self, call: ToolCall) -> EngineStream<ToolEvent> {
        let message = format!("There is no server-side tool named '{}'.", call.name);
        Box::pin(futures_util::stream::iter([ToolEvent::Failed(message)]))
    }
}

/// One passage a knowledge base found for a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The document it comes from (its file name within the knowledge folder).
    pub source: String,
    /// The document's title (its first heading, else the file name).
    pub title: String,
    /// The passage's text.
    pub text: String,
    /// Cosine similarity to the query, in [-1, 1].
    pub score: f32,
}

/// Searches an agent's documents (policies, product manuals) by meaning.
pub trait Knowledge: Send + Sync {
    /// The `limit` passages most similar to `query`, best first. Blocking (an embedding runs on
    /// the calling thread): call it from a blocking task.
    fn search(&self, query: &str, limit: usize) -> Result<Vec<Passage>, String>;
}

/// Sets a job's cancel flag when dropped: held by the stream that waits for the job, so
/// dropping the stream (a barge-in, `response.cancel`) tells a worker thread to stop.
pub struct CancelOnDrop(pub Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `work`, turning a panic in it into its message: an engine's worker thread survives a
/// job that panics (it answers that job with the failure and takes the next), and a driver
/// fails one job instead of a session.
pub fn catch_panic<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .map_err(|panic| panic_message(panic.as_ref()).to_owned())
}

/// What a caught panic carried, as text.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_its_message_and_a_value_passes_through() {
        assert_eq!(catch_panic(|| 7), Ok(7));
        assert_eq!(catch_panic(|| -> u8 { panic!("bad {}", "input") }), Err("bad input".to_owned()));
        assert_eq!(catch_panic(|| -> u8 { std::panic::panic_any(3_u32) }), Err("a panic".to_owned()));
    }
}
