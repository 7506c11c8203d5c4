//! What goes into a [`crate::Session`] and what comes out: the driver's whole interface (see
//! the crate doc for the loop).

use crate::avatar_link::{AvatarCommand, AvatarEvent};
use brazen_protocol::{ClientMessage, ProtocolError, ServerEvent};
use brazen_providers::{
    AsrEvent, AsrRequest, LlmEvent, LlmRequest, ToolCall, ToolEvent, TtsEvent, TtsRequest, TurnRequest, TurnVerdict,
};

/// Identifies one piece of engine work (an ASR, LLM, TTS or tool stream) within a session.
pub type JobId = u64;

/// Something that happened to the session.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A parsed client event.
    Client(ClientMessage),
    /// A client frame that could not be parsed; answered with an `error` event.
    Invalid(ProtocolError),
    /// A speech recogniser's event for a job.
    Asr(JobId, AsrEvent),
    /// A verdict on a pause for a job (the end-of-turn model's or the language model's).
    Turn(JobId, TurnVerdict),
    /// A language model's event for a job.
    Llm(JobId, LlmEvent),
    /// A speech synthesiser's event for a job.
    Tts(JobId, TtsEvent),
    /// A server-side tool's result for a job.
    Tool(JobId, ToolEvent),
    /// News from the avatar's connection.
    Avatar(AvatarEvent),
    /// Time has passed (the driver sends it at [`crate::Session::poll_timeout`]).
    Tick,
    /// The server is shutting down: the response in progress may finish until `deadline`, no
    /// other starts, and then the session ends ([`Output::Close`] with
    /// [`SessionEnd::ShuttingDown`]).
    Shutdown {
        /// When the response in progress is cut off if it has not finished.
        deadline: std::time::Instant,
    },
}

/// Something the session asks of its driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this event to the client.
    Event(ServerEvent),
    /// Start transcribing; feed the events back as [`Input::Asr`] with this job id.
    StartAsr(JobId, AsrRequest),
    /// Judge from the audio whether the user finished their turn (semantic turn detection,
    /// the end-of-turn model); feed the verdict back as [`Input::Turn`].
    StartTurnCheck(JobId, TurnRequest),
    /// Judge from the words whether the user finished (the language model's
    /// [`brazen_providers::Llm::end_of_turn`] on the conversation ending with their words so
    /// far); feed the verdict back as [`Input::Turn`].
    StartLlmTurnCheck(JobId, LlmRequest),
    /// Start generating; feed the events back as [`Input::Llm`].
    StartLlm(JobId, LlmRequest),
    /// Start synthesising; feed the events back as [`Input::Tts`].
    StartTts(JobId, TtsRequest),
    /// Run a server-side tool (one of [`crate::SessionOptions::tools`]); feed its result back
    /// as [`Input::Tool`]. Cancelled like every other job.
    StartTool(JobId, ToolCall),
    /// Stop this job and drop its stream; later events for it are ignored.
    Cancel(JobId),
    /// The next response will likely start from this conversation (new instructions or tools,
    /// or what the user is saying so far): the language model may compute its prompt ahead.
    /// Nothing comes back; an engine may ignore it.
    PrepareLlm(LlmRequest),
    /// Work for the avatar's connection; news comes back as [`Input::Avatar`].
    Avatar(AvatarCommand),
    /// The session is over (its `error` event, saying why, came just before): close the
    /// transport. The session takes no more input.
    Close(SessionEnd),
}

/// Why a session ended on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// It reached [`crate::Limits::max_session_ms`].
    MaxLength,
    /// Nothing happened in it for [`crate::Limits::idle_timeout_ms`].
    Idle,
    /// The server is shutting down ([`Input::Shutdown`]).
    ShuttingDown,
}
