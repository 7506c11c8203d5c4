//! Conversation items: messages, function calls and function-call outputs.

use crate::Dialect;
use crate::error::{ProtocolError, code};
use crate::read::{Obj, as_str, bad_value, one_of, wrong_type};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions.
    System,
    /// The person.
    User,
    /// The agent.
    Assistant,
}

impl Role {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One content part of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Text the user or system wrote.
    InputText(String),
    /// Audio the user spoke; `audio` holds the raw bytes in the session's input format when the
    /// client sent them inside the item (they are not echoed in item events).
    InputAudio {
        /// Raw audio bytes, if sent inline.
        audio: Option<Vec<u8>>,
        /// The transcript, once known.
        transcript: Option<String>,
    },
    /// Text the assistant wrote (beta `text`, GA `output_text`).
    Text(String),
    /// Audio the assistant spoke, with its transcript (beta `audio`, GA `output_audio`).
    Audio {
        /// What is said.
        transcript: String,
    },
}

impl Content {
    /// The text of this part, or its transcript.
    pub fn text(&self) -> Option<&str> {
        match self {
            Content::InputText(t) | Content::Text(t) => Some(t),
            Content::InputAudio { transcript, .. } => transcript.as_deref(),
            Content::Audio { transcript } => Some(transcript),
        }
    }

    /// The part as sent in events (`response.content_part.*` uses `part_json`).
    pub fn to_json(&self, dialect: Dialect) -> Value {
        let ga = dialect == Dialect::Ga;
        match self {
            Content::InputText(t) => json!({"type": "input_text", "text": t}),
            Content::InputAudio { transcript, .. } => json!({"type": "input_audio", "transcript": transcript}),
            Content::Text(t) => json!({"type": if ga { "output_text" } else { "text" }, "text": t}),
            Content::Audio { transcript } => {
                json!({"type": if ga { "output_audio" } else { "audio" }, "transcript": transcript})
            }
        }
    }

    /// The part as sent in `response.content_part.added/done` (`audio` / `text` in every dialect).
    pub fn part_json(&self) -> Value {
        match self {
            Content::Audio { transcript } => json!({"type": "audio", "transcript": transcript}),
            other => json!({"type": "text", "text": other.text().unwrap_or_default()}),
        }
    }

    fn read(v: &Value, param: &str, role: Role) -> Result<Content, ProtocolError> {
        let o = Obj::expect(v, param)?;
        let kind = one_of(
            o.required_str("type")?,
            &["input_text", "input_audio", "text", "output_text", "audio", "output_audio"],
            &o.param("type"),
        )?;
        let text = || o.str("text").map(|t| t.value().unwrap_or_default().to_owned());
        let transcript = || o.str("transcript").map(|t| t.value().map(str::to_owned));
        let content = match kind {
            "input_text" => Content::InputText(text()?),
            "input_audio" => {
                let audio = match o.str("audio")?.value() {
                    Some(b64) => Some(decode_base64(b64, &o.param("audio"))?),
                    None => None,
                };
                Content::InputAudio { audio, transcript: transcript()? }
            }
            // An assistant item with `text` / `output_text`, or a user item written that way.
            "text" | "output_text" if role == Role::Assistant => Content::Text(text()?),
            "text" | "output_text" => Content::InputText(text()?),
            _ => Content::Audio { transcript: transcript()?.unwrap_or_default() },
        };
        let input_only = matches!(content, Content::InputText(_) | Content::InputAudio { .. });
        if role == Role::Assistant && input_only || role != Role::Assistant && !input_only {
            return Err(bad_value(
                &o.param("type"),
                format!("Invalid content type '{kind}' for a {} message.", role.name()),
            ));
        }
        Ok(content)
    }
}

/// Decodes standard base64 with a precise error.
pub fn decode_base64(b64: &str, param: &str) -> Result<Vec<u8>, ProtocolError> {
    B64.decode(b64.trim_end_matches(['\n', '\r'])).map_err(|e| {
        ProtocolError::invalid(code::INVALID_AUDIO, format!("Invalid base64 in '{param}': {e}.")).with_param(param)
    })
}

/// Whether an item is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    /// Finished.
    Completed,
    /// Still being produced.
    InProgress,
    /// Cut short (cancelled, truncated, token cap).
    Incomplete,
}

impl ItemStatus {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            ItemStatus::Completed => "completed",
            ItemStatus::InProgress => "in_progress",
            ItemStatus::Incomplete => "incomplete",
        }
    }
}

/// What kind of item it is.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemBody {
    /// A message.
    Message {
        /// Author.
        role: Role,
        /// Parts.
        content: Vec<Content>,
    },
    /// The model calls a function.
    FunctionCall {
        /// Correlates the call with its output.
        call_id: String,
        /// Function name.
        name: String,
        /// Arguments as a JSON string.
        arguments: String,
    },
    /// The client's answer to a function call.
    FunctionCallOutput {
        /// The call it answers.
        call_id: String,
        /// The result, as the client wrote it.
        output: String,
    },
}

/// One conversation item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// `item_…`, or the client's id.
    pub id: String,
    /// Status.
    pub status: ItemStatus,
    /// Content.
    pub body: ItemBody,
}

impl Item {
    /// A message item.
    pub fn message(id: impl Into<String>, role: Role, content: Vec<Content>, status: ItemStatus) -> Self {
        Item { id: id.into(), status, body: ItemBody::Message { role, content } }
    }

    /// The role, for messages.
    pub fn role(&self) -> Option<Role> {
        match &self.body {
            ItemBody::Message { role, .. } => Some(*role),
            _ => None,
        }
    }

    /// The joined text (or transcripts) of a message.
    pub fn text(&self) -> String {
        match &self.body {
            ItemBody::Message { content, .. } => content.iter().filter_map(Content::text).collect::<Vec<_>>().join(" "),
            ItemBody::FunctionCall { arguments, .. } => arguments.clone(),
            ItemBody::FunctionCallOutput { output, .. } => output.clone(),
        }
    }

    /// The item as sent in events.
    pub fn to_json(&self, dialect: Dialect) -> Value {
        let mut v = match &self.body {
            ItemBody::Message { role, content } => json!({
                "type": "message",
                "role": role.name(),
                "content": content.iter().map(|c| c.to_json(dialect)).collect::<Vec<_>>(),
            }),
            ItemBody::FunctionCall { call_id, name, arguments } => json!({
                "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments,
            }),
            ItemBody::FunctionCallOutput { call_id, output } => json!({
                "type": "function_call_output", "call_id": call_id, "output": output,
            }),
        };
        let m = v.as_object_mut().expect("object literal");
        m.insert("id".into(), json!(self.id));
        m.insert("object".into(), json!("realtime.item"));
        m.insert("status".into(), json!(self.status.name()));
        v
    }

    /// Reads an item from `conversation.item.create`. `id` is `None` when the client gave none.
    pub fn read(v: &Value, param: &str) -> Result<(Option<String>, ItemBody), ProtocolError> {
        let o = Obj::expect(v, param)?;
        let id = o.str("id")?.value().map(str::to_owned);
        if let Some(id) = &id
            && (id.is_empty() || id.len() > 64)
        {
            return Err(bad_value(&o.param("id"), "Invalid item id: use 1 to 64 characters."));
        }
        let kind =
            one_of(o.required_str("type")?, &["message", "function_call", "function_call_output"], &o.param("type"))?;
        let body = match kind {
            "message" => {
                let role = match one_of(o.required_str("role")?, &["system", "user", "assistant"], &o.param("role"))? {
                    "system" => Role::System,
                    "user" => Role::User,
                    _ => Role::Assistant,
                };
                let content_param = o.param("content");
                let arr = match o.raw("content") {
                    Some(Value::Array(a)) => a,
                    Some(Value::Null) | None => return Err(o.missing("content")),
                    Some(other) => return Err(wrong_type(&content_param, "an array", other)),
                };
                let content = arr
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Content::read(c, &format!("{content_param}[{i}]"), role))
                    .collect::<Result<Vec<_>, _>>()?;
                ItemBody::Message { role, content }
            }
            "function_call" => ItemBody::FunctionCall {
                call_id: o.required_str("call_id")?.to_owned(),
                name: o.required_str("name")?.to_owned(),
                arguments: o.str("arguments")?.value().unwrap_or("{}").to_owned(),
            },
            _ => {
                let output = match o.raw("output") {
                    Some(Value::String(s)) => s.clone(),
                    None | Some(Value::Null) => return Err(o.missing("output")),
                    // Some clients send the output as a JSON value; keep its text.
                    Some(other) => other.to_string(),
                };
                ItemBody::FunctionCallOutput {
                    call_id: as_str(o.raw("call_id").unwrap_or(&Value::Null), &o.param("call_id"))
                        .map_err(|_| o.missing("call_id"))?
                        .to_owned(),
                    output,
                }
            }
        };
        Ok((id, body))
    }
}
