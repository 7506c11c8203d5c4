//! The response object of `response.created` / `response.done`, its status and usage, and the
//! per-response options of `response.create`.

use crate::Dialect;
use crate::error::ProtocolError;
use crate::item::Item;
use crate::read::{Field, Obj, one_of};
use crate::session::{AudioFormat, Modality, SessionPatch, Voice};
use serde_json::{Value, json};

/// Where a response is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseStatus {
    /// Being produced.
    InProgress,
    /// Finished normally.
    Completed,
    /// Stopped by `response.cancel` (`client_cancelled`) or by the user speaking (`turn_detected`).
    Cancelled {
        /// `client_cancelled` or `turn_detected`.
        reason: &'static str,
    },
    /// Stopped early, e.g. `max_output_tokens`.
    Incomplete {
        /// Why.
        reason: &'static str,
    },
    /// An engine failed.
    Failed {
        /// What failed.
        error: ProtocolError,
    },
}

impl ResponseStatus {
    /// The wire name of the status.
    pub fn name(&self) -> &'static str {
        match self {
            ResponseStatus::InProgress => "in_progress",
            ResponseStatus::Completed => "completed",
            ResponseStatus::Cancelled { .. } => "cancelled",
            ResponseStatus::Incomplete { .. } => "incomplete",
            ResponseStatus::Failed { .. } => "failed",
        }
    }

    fn details(&self) -> Value {
        match self {
            ResponseStatus::InProgress | ResponseStatus::Completed => Value::Null,
            ResponseStatus::Cancelled { reason } => json!({"type": "cancelled", "reason": reason}),
            ResponseStatus::Incomplete { reason } => json!({"type": "incomplete", "reason": reason}),
            ResponseStatus::Failed { error } => {
                json!({"type": "failed", "error": {"type": error.kind, "code": error.code, "message": error.message}})
            }
        }
    }
}

/// Token counts of one response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Text tokens read.
    pub input_text_tokens: u64,
    /// Audio tokens read.
    pub input_audio_tokens: u64,
    /// Input tokens served from a cache (e.g. a reused KV cache).
    pub cached_tokens: u64,
    /// Text tokens written.
    pub output_text_tokens: u64,
    /// Audio tokens written.
    pub output_audio_tokens: u64,
}

impl Usage {
    /// The usage object, with every nested object that strict clients dereference.
    pub fn to_json(&self) -> Value {
        let input = self.input_text_tokens + self.input_audio_tokens;
        let output = self.output_text_tokens + self.output_audio_tokens;
        json!({
            "total_tokens": input + output,
            "input_tokens": input,
            "output_tokens": output,
            "input_token_details": {
                "text_tokens": self.input_text_tokens,
                "audio_tokens": self.input_audio_tokens,
                "image_tokens": 0,
                "cached_tokens": self.cached_tokens,
                "cached_tokens_details": {"text_tokens": self.cached_tokens, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": self.output_text_tokens, "audio_tokens": self.output_audio_tokens},
        })
    }
}

/// A response as reported in `response.created` and `response.done`.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// `resp_…`.
    pub id: String,
    /// Status.
    pub status: ResponseStatus,
    /// Items produced.
    pub output: Vec<Item>,
    /// Token counts (on `response.done`).
    pub usage: Option<Usage>,
    /// `conv_…`, or `None` for an out-of-band response (`conversation: "none"`).
    pub conversation_id: Option<String>,
    /// Modalities of this response.
    pub modalities: Vec<Modality>,
    /// Voice of this response.
    pub voice: Voice,
    /// Output audio format of this response.
    pub output_audio_format: AudioFormat,
    /// Temperature of this response.
    pub temperature: f64,
    /// Token cap of this response.
    pub max_output_tokens: Option<u64>,
    /// Client metadata, echoed.
    pub metadata: Option<Value>,
}

impl Response {
    /// The response object in the given dialect.
    pub fn to_json(&self, dialect: Dialect) -> Value {
        let cap = self.max_output_tokens.map_or(json!("inf"), |n| json!(n));
        let mut v = json!({
            "id": self.id,
            "object": "realtime.response",
            "status": self.status.name(),
            "status_details": self.status.details(),
            "output": self.output.iter().map(|i| i.to_json(dialect)).collect::<Vec<_>>(),
            "usage": self.usage.map(|u| u.to_json()),
            "conversation_id": self.conversation_id,
            "metadata": self.metadata,
            "max_output_tokens": cap,
        });
        let m = v.as_object_mut().expect("object literal");
        let audio = self.modalities.contains(&Modality::Audio);
        if dialect == Dialect::Ga {
            m.insert("output_modalities".into(), json!([if audio { "audio" } else { "text" }]));
            m.insert(
                "audio".into(),
                json!({"output": crate::session::ga_audio_output(self.output_audio_format, &self.voice)}),
            );
        } else {
            let modalities: &[&str] = if audio { &["text", "audio"] } else { &["text"] };
            m.insert("modalities".into(), json!(modalities));
            m.insert("voice".into(), json!(self.voice.name));
            m.insert("output_audio_format".into(), json!(self.output_audio_format.output_name()));
            m.insert("temperature".into(), json!(self.temperature));
        }
        v
    }
}

/// Which conversation a response reads from and writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConversationMode {
    /// The session's conversation (default).
    #[default]
    Auto,
    /// Out of band: the output is not added to the conversation.
    None,
}

/// The options of `response.create`: overrides of the session config for this response only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseOptions {
    /// Overrides (modalities, instructions, voice, tools, tool_choice, temperature, token cap,
    /// output format).
    pub overrides: SessionPatch,
    /// `conversation`: `auto` or `none`.
    pub conversation: ConversationMode,
    /// `metadata`, echoed in the response.
    pub metadata: Option<Value>,
    /// Voice Live `pre_generated_assistant_message`: speak this text instead of asking the LLM.
    pub pre_generated_text: Option<String>,
}

impl ResponseOptions {
    /// Reads the `response` object of `response.create` (either dialect).
    pub fn read(o: Obj<'_>) -> Result<ResponseOptions, ProtocolError> {
        let overrides = SessionPatch::read(o)?;
        let conversation = match o.str("conversation")?.value() {
            Some(c) => match one_of(c, &["auto", "none"], &o.param("conversation"))? {
                "none" => ConversationMode::None,
                _ => ConversationMode::Auto,
            },
            None => ConversationMode::Auto,
        };
        let pre_generated_text = match o.field("pre_generated_assistant_message", |v, p| {
            if let Some(s) = v.as_str() {
                return Ok(s.to_owned());
            }
            let m = Obj::expect(v, p)?;
            // `{content: [{type: "text", text}]}` or `{text}`.
            if let Some(t) = m.str("text")?.value() {
                return Ok(t.to_owned());
            }
            let parts = m.raw("content").and_then(Value::as_array).ok_or_else(|| m.missing("content"))?;
            Ok(parts.iter().filter_map(|c| c.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(" "))
        })? {
            Field::Set(t) => Some(t),
            _ => None,
        };
        Ok(ResponseOptions {
            overrides,
            conversation,
            metadata: o.raw("metadata").filter(|v| !v.is_null()).cloned(),
            pre_generated_text,
        })
    }
}
