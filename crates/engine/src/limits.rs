//! The limits that protect the server from one client, and the checks of a client's texts
//! against them.

use brazen_protocol::error::code;
use brazen_protocol::read::Field::Set;
use brazen_protocol::{ItemBody, ProtocolError, SessionPatch};

/// Limits that protect the server from one client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Sustained client events per second.
    pub events_per_second: f64,
    /// Events a client may send in a burst above the sustained rate.
    pub burst: f64,
    /// Most audio the input buffer holds without a commit, in ms.
    pub max_buffer_ms: f64,
    /// Longest text a client may send in one field (`instructions`, a message's text, a function
    /// call's arguments or output, a tool's definition, `pre_generated_assistant_message`), in
    /// bytes.
    pub max_text_bytes: usize,
    /// Most text the conversation's items may hold together, in bytes; an item past it is
    /// refused until the client deletes some.
    pub max_conversation_bytes: usize,
    /// Longest audio delta sent to the client, in ms.
    pub audio_delta_ms: f64,
    /// How far ahead of the client's playback audio is sent, in ms. Audio is paced on the
    /// playback clock, so a response is in progress while it is being spoken and a cancel or a
    /// barge-in cuts audio that was never sent.
    pub audio_lead_ms: f64,
    /// How much synthesised audio may wait unsent, in ms: past it the next phrase is
    /// synthesised only as the audio goes out, so a reply of any length holds bounded memory.
    pub synthesis_ahead_ms: f64,
    /// Longest a session lasts, in ms (infinite: no limit). Voice Live and OpenAI end sessions
    /// after 30 and 60 minutes.
    pub max_session_ms: f64,
    /// How long a session may go without anything happening in it (a client event other than
    /// appended audio, speech, a response, the assistant's audio playing), in ms (infinite: no
    /// limit). Azure's avatar sessions end after 5 minutes idle.
    pub idle_timeout_ms: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            events_per_second: 500.0,
            burst: 2_000.0,
            max_buffer_ms: 15.0 * 60_000.0,
            max_text_bytes: 256 * 1024,
            max_conversation_bytes: 16 * 1024 * 1024,
            audio_delta_ms: 200.0,
            audio_lead_ms: 500.0,
            synthesis_ahead_ms: 8_000.0,
            max_session_ms: 60.0 * 60_000.0,
            idle_timeout_ms: 5.0 * 60_000.0,
        }
    }
}

impl Limits {
    /// Refuses a text longer than [`Limits::max_text_bytes`], naming the field.
    pub(crate) fn check_text(&self, text: &str, param: &str) -> Result<(), ProtocolError> {
        let limit = self.max_text_bytes;
        if text.len() <= limit {
            return Ok(());
        }
        Err(ProtocolError::invalid(
            code::STRING_ABOVE_MAX_LENGTH,
            format!("'{param}' is {} bytes long; the most allowed is {limit} bytes.", text.len()),
        )
        .with_param(param))
    }

    /// Checks the texts of a `session.update`'s session or a `response.create`'s overrides
    /// (`path`): the instructions, the tools' definitions, the transcription prompt, the voice,
    /// the animation settings and the other fields kept as sent. (The avatar is bounded by the
    /// frame limit: its pictures may be `data:` URLs of up to 16 MiB.)
    pub(crate) fn check_patch(&self, patch: &SessionPatch, path: &str) -> Result<(), ProtocolError> {
        if let Set(text) = &patch.instructions {
            self.check_text(text, &format!("{path}.instructions"))?;
        }
        if let Set(t) = &patch.input_audio_transcription
            && let Some(prompt) = &t.prompt
        {
            self.check_text(prompt, &format!("{path}.input_audio_transcription.prompt"))?;
        }
        if let Set(voice) = &patch.voice {
            let extra = serde_json::Value::Object(voice.extra.clone()).to_string();
            self.check_text(&voice.name, &format!("{path}.voice"))?;
            self.check_text(&extra, &format!("{path}.voice"))?;
        }
        if let Set(animation) = &patch.animation {
            self.check_text(&animation.to_string(), &format!("{path}.animation"))?;
        }
        for (key, value) in &patch.extra {
            if let Set(value) = value {
                self.check_text(&value.to_string(), &format!("{path}.{key}"))?;
            }
        }
        if let Set(tools) = &patch.tools {
            let total: usize =
                tools.iter().map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len()).sum();
            if total > self.max_text_bytes {
                return Err(ProtocolError::invalid(
                    code::STRING_ABOVE_MAX_LENGTH,
                    format!(
                        "The tools' definitions are {total} bytes long together; the most allowed is {} bytes.",
                        self.max_text_bytes
                    ),
                )
                .with_param(format!("{path}.tools")));
            }
        }
        Ok(())
    }

    /// Checks an item's texts against [`Limits::max_text_bytes`].
    pub(crate) fn check_item(&self, body: &ItemBody) -> Result<(), ProtocolError> {
        match body {
            ItemBody::Message { content, .. } => {
                for (i, part) in content.iter().enumerate() {
                    if let Some(text) = part.text() {
                        self.check_text(text, &format!("item.content[{i}].text"))?;
                    }
                }
                Ok(())
            }
            ItemBody::FunctionCall { arguments, name, call_id } => {
                self.check_text(name, "item.name")?;
                self.check_text(call_id, "item.call_id")?;
                self.check_text(arguments, "item.arguments")
            }
            ItemBody::FunctionCallOutput { output, call_id } => {
                self.check_text(call_id, "item.call_id")?;
                self.check_text(output, "item.output")
            }
        }
    }

    /// Refuses to add `adding` bytes to a conversation holding `held` when it would then hold
    /// more than [`Limits::max_conversation_bytes`].
    pub(crate) fn check_room(&self, held: usize, adding: usize) -> Result<(), ProtocolError> {
        if held + adding <= self.max_conversation_bytes {
            return Ok(());
        }
        Err(ProtocolError::invalid(
            code::SESSION_MEMORY_EXCEEDED,
            format!(
                "The conversation holds {held} bytes and this would add {adding} more; a session holds at most {} bytes. Delete items (conversation.item.delete) first.",
                self.max_conversation_bytes
            ),
        ))
    }
}
