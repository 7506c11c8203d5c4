//! The protocol `error` payload and the codes brazen uses.
//!
//! Codes follow OpenAI's Realtime API where it has one for the same condition, so clients that
//! branch on `error.code` keep working.

use serde_json::{Value, json};

/// Error codes sent in `error.code`.
pub mod code {
    /// The frame is not valid JSON, or not a JSON object.
    pub const INVALID_JSON: &str = "invalid_json";
    /// The `type` field names no known client event.
    pub const INVALID_EVENT_TYPE: &str = "invalid_event_type";
    /// A required field is missing.
    pub const MISSING_REQUIRED_PARAMETER: &str = "missing_required_parameter";
    /// A field has the wrong JSON type.
    pub const INVALID_TYPE: &str = "invalid_type";
    /// A field has the right type but a value outside what is allowed.
    pub const INVALID_VALUE: &str = "invalid_value";
    /// `audio` is not valid base64, or not a whole number of samples in the session's format.
    pub const INVALID_AUDIO: &str = "invalid_audio";
    /// `input_audio_buffer.commit` with too little audio buffered.
    pub const INPUT_AUDIO_BUFFER_COMMIT_EMPTY: &str = "input_audio_buffer_commit_empty";
    /// `response.create` while a response is already running.
    pub const ACTIVE_RESPONSE: &str = "conversation_already_has_active_response";
    /// An event names an item that is not in the conversation.
    pub const ITEM_NOT_FOUND: &str = "item_not_found";
    /// An item id that is already used in the conversation.
    pub const DUPLICATE_ITEM_ID: &str = "duplicate_item_id";
    /// `conversation.item.truncate` beyond the audio the item holds, or on an item without audio.
    pub const INVALID_TRUNCATE: &str = "invalid_truncate";
    /// `response.cancel` with no response running.
    pub const RESPONSE_CANCEL_NOT_ACTIVE: &str = "response_cancel_not_active";
    /// The frame is larger than the server accepts.
    pub const FRAME_TOO_LARGE: &str = "frame_too_large";
    /// The client sends events faster than the session's limit.
    pub const RATE_LIMIT_EXCEEDED: &str = "rate_limit_exceeded";
    /// A binary WebSocket frame: the protocol is JSON text only.
    pub const UNSUPPORTED_FRAME: &str = "unsupported_frame";
    /// The event is valid but the feature is not available in this build or configuration.
    pub const UNSUPPORTED: &str = "unsupported_feature";
    /// An engine (ASR, LLM, TTS) failed while serving the request.
    pub const ENGINE_ERROR: &str = "engine_error";
    /// The avatar's character or style is not one the server has (Azure's code).
    pub const AVATAR_VERIFICATION_FAILED: &str = "avatar_verification_failed";
    /// `session.avatar.connect` before `session.update` configured an avatar.
    pub const AVATAR_NOT_CONFIGURED: &str = "avatar_not_configured";
    /// `session.avatar.connect` while the avatar is already connected or connecting.
    pub const AVATAR_ALREADY_CONNECTED: &str = "avatar_already_connected";
    /// A text field is longer than the server takes (OpenAI's code for the same).
    pub const STRING_ABOVE_MAX_LENGTH: &str = "string_above_max_length";
    /// The session holds as much as one session may (conversation text, audio waiting to be
    /// transcribed); the client must free some (delete items, wait) first.
    pub const SESSION_MEMORY_EXCEEDED: &str = "session_memory_exceeded";
    /// The session reached its maximum length (OpenAI's code for it); the connection closes.
    pub const SESSION_EXPIRED: &str = "session_expired";
    /// Nothing happened in the session for the idle timeout; the connection closes.
    pub const SESSION_IDLE: &str = "session_idle_timeout";
    /// The server is shutting down; the connection closes once the response in progress ends.
    pub const SERVER_SHUTTING_DOWN: &str = "server_shutting_down";
}

/// One protocol error: what goes into a server `error` event.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolError {
    /// `error.type`: `invalid_request_error` for client mistakes, `server_error` otherwise.
    pub kind: &'static str,
    /// One of [`code`].
    pub code: &'static str,
    /// A sentence a developer can act on.
    pub message: String,
    /// The offending field as a dotted path (`session.turn_detection.threshold`), if any.
    pub param: Option<String>,
    /// The `event_id` of the client event that caused it, if it had one.
    pub event_id: Option<String>,
}

impl ProtocolError {
    /// A client mistake (`invalid_request_error`).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ProtocolError { kind: "invalid_request_error", code, message: message.into(), param: None, event_id: None }
    }

    /// A failure on the server's side (`server_error`).
    pub fn server(code: &'static str, message: impl Into<String>) -> Self {
        ProtocolError { kind: "server_error", ..Self::invalid(code, message) }
    }

    /// Sets the offending field.
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Sets the client event id, keeping one already set.
    pub fn with_event_id(mut self, event_id: Option<&str>) -> Self {
        if self.event_id.is_none() {
            self.event_id = event_id.map(str::to_owned);
        }
        self
    }

    /// The JSON object that goes in the `error` field of the event.
    pub fn to_json(&self) -> Value {
        json!({
            "type": self.kind,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "event_id": self.event_id,
        })
    }
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)?;
        if let Some(p) = &self.param {
            write!(f, " at {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ProtocolError {}
