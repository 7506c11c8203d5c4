//! Server events (server → client), dialect-neutral, and their encoder.
//!
//! The engine emits one [`ServerEvent`] per protocol event; [`ServerEvent::encode`] writes it with
//! the names and shapes of the connection's [`Dialect`]: `response.audio.delta` for Voice Live and
//! the OpenAI beta, `response.output_audio.delta` for GA, `conversation.item.created` versus
//! `conversation.item.added` + `conversation.item.done`, and so on. Every nested object that strict
//! clients dereference is always written.

use crate::Dialect;
use crate::error::ProtocolError;
use crate::item::{Content, Item};
use crate::response::Response;
use crate::session::SessionConfig;
use serde_json::{Map, Value, json};

/// Where a text, audio or transcript delta belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef {
    /// The response.
    pub response_id: String,
    /// The output item.
    pub item_id: String,
    /// Index of the item in the response's output.
    pub output_index: u32,
    /// Index of the part in the item's content.
    pub content_index: u32,
}

/// One server event, independent of dialect.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// `error`.
    Error(ProtocolError),
    /// `warning` (Voice Live).
    Warning {
        /// Short code.
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// `session.created`.
    SessionCreated(Box<SessionConfig>),
    /// `session.updated`.
    SessionUpdated(Box<SessionConfig>),
    /// `conversation.created`.
    ConversationCreated {
        /// `conv_…`.
        conversation_id: String,
    },
    /// `session.avatar.connecting` (Voice Live).
    AvatarConnecting {
        /// base64 of the JSON answer description.
        server_sdp: String,
    },
    /// `session.avatar.switch_to_speaking` (Voice Live): the avatar's speech started playing.
    AvatarSpeaking {
        /// The response being spoken, when known.
        turn_id: Option<String>,
    },
    /// `session.avatar.switch_to_idle` (Voice Live): the avatar's speech stopped playing.
    AvatarIdle {
        /// The response that was spoken, when known.
        turn_id: Option<String>,
    },
    /// `response.video.delta` (Voice Live, `avatar.output_protocol: "websocket"`): the next bytes
    /// of the avatar's fragmented MP4 stream.
    VideoDelta {
        /// The stream's bytes, base64.
        delta: String,
    },
    /// `input_audio_buffer.committed`.
    InputAudioCommitted {
        /// The item before the new user item.
        previous_item_id: Option<String>,
        /// The new user item.
        item_id: String,
    },
    /// `input_audio_buffer.cleared`.
    InputAudioCleared,
    /// `input_audio_buffer.speech_started`.
    SpeechStarted {
        /// Where speech began, in ms since the session's first audio.
        audio_start_ms: u64,
        /// The user item the speech will become.
        item_id: String,
    },
    /// `input_audio_buffer.speech_stopped`.
    SpeechStopped {
        /// Where speech ended, in ms since the session's first audio.
        audio_end_ms: u64,
        /// The user item.
        item_id: String,
    },
    /// `conversation.item.created` (beta, Voice Live) / `conversation.item.added` (GA).
    ItemCreated {
        /// The item before it.
        previous_item_id: Option<String>,
        /// The item.
        item: Item,
    },
    /// `conversation.item.done` (GA only; dropped in other dialects).
    ItemDone {
        /// The item before it.
        previous_item_id: Option<String>,
        /// The item.
        item: Item,
    },
    /// `conversation.item.retrieved`.
    ItemRetrieved {
        /// The item.
        item: Item,
    },
    /// `conversation.item.truncated`.
    ItemTruncated {
        /// The item.
        item_id: String,
        /// The audio part.
        content_index: u32,
        /// Where it was cut.
        audio_end_ms: u64,
    },
    /// `conversation.item.deleted`.
    ItemDeleted {
        /// The item.
        item_id: String,
    },
    /// `conversation.item.input_audio_transcription.delta`.
    TranscriptionDelta {
        /// The user item.
        item_id: String,
        /// Its audio part.
        content_index: u32,
        /// New text.
        delta: String,
    },
    /// `conversation.item.input_audio_transcription.completed`.
    TranscriptionCompleted {
        /// The user item.
        item_id: String,
        /// Its audio part.
        content_index: u32,
        /// The whole transcript.
        transcript: String,
        /// Seconds of audio transcribed (GA usage).
        audio_seconds: f64,
    },
    /// `conversation.item.input_audio_transcription.failed`.
    TranscriptionFailed {
        /// The user item.
        item_id: String,
        /// Its audio part.
        content_index: u32,
        /// Why.
        error: ProtocolError,
    },
    /// `response.created`.
    ResponseCreated(Box<Response>),
    /// `response.done`.
    ResponseDone(Box<Response>),
    /// `response.output_item.added`.
    OutputItemAdded {
        /// The response.
        response_id: String,
        /// Index in its output.
        output_index: u32,
        /// The item as it starts.
        item: Item,
    },
    /// `response.output_item.done`.
    OutputItemDone {
        /// The response.
        response_id: String,
        /// Index in its output.
        output_index: u32,
        /// The finished item.
        item: Item,
    },
    /// `response.content_part.added`.
    ContentPartAdded {
        /// Where.
        at: PartRef,
        /// The part as it starts.
        part: Content,
    },
    /// `response.content_part.done`.
    ContentPartDone {
        /// Where.
        at: PartRef,
        /// The finished part.
        part: Content,
    },
    /// `response.text.delta` / GA `response.output_text.delta`.
    TextDelta {
        /// Where.
        at: PartRef,
        /// New text.
        delta: String,
    },
    /// `response.text.done` / GA `response.output_text.done`.
    TextDone {
        /// Where.
        at: PartRef,
        /// The whole text.
        text: String,
    },
    /// `response.audio.delta` / GA `response.output_audio.delta`.
    AudioDelta {
        /// Where.
        at: PartRef,
        /// base64 audio in the response's output format.
        delta: String,
    },
    /// `response.audio.done` / GA `response.output_audio.done`.
    AudioDone {
        /// Where.
        at: PartRef,
    },
    /// `response.audio_transcript.delta` / GA `response.output_audio_transcript.delta`.
    AudioTranscriptDelta {
        /// Where.
        at: PartRef,
        /// New text.
        delta: String,
    },
    /// `response.audio_transcript.done` / GA `response.output_audio_transcript.done`.
    AudioTranscriptDone {
        /// Where.
        at: PartRef,
        /// The whole transcript.
        transcript: String,
    },
    /// `response.audio_timestamp.delta` (Voice Live): when a word of the audio is heard.
    AudioTimestampDelta {
        /// Where.
        at: PartRef,
        /// Start of the word in the item's audio, ms.
        audio_offset_ms: u64,
        /// How long it is heard, ms.
        audio_duration_ms: u64,
        /// The word.
        text: String,
    },
    /// `response.audio_timestamp.done` (Voice Live).
    AudioTimestampDone {
        /// Where.
        at: PartRef,
    },
    /// `response.animation_viseme.delta` (Voice Live): a mouth shape from this point of the
    /// item's audio.
    AnimationVisemeDelta {
        /// Where.
        at: PartRef,
        /// Where in the item's audio, ms.
        audio_offset_ms: u64,
        /// Azure viseme id, 0–21.
        viseme_id: u8,
    },
    /// `response.animation_viseme.done` (Voice Live).
    AnimationVisemeDone {
        /// Where.
        at: PartRef,
    },
    /// `response.animation_blendshapes.delta` (Voice Live): face frames at 60 fps.
    AnimationBlendshapesDelta {
        /// Where.
        at: PartRef,
        /// The index of the first frame (frames before it in this item).
        frame_index: usize,
        /// The frames: 55 values each, in Azure's order.
        frames: Vec<Vec<f32>>,
    },
    /// `response.animation_blendshapes.done` (Voice Live; no content index).
    AnimationBlendshapesDone {
        /// Where.
        at: PartRef,
    },
    /// `response.function_call_arguments.delta`.
    FunctionCallArgumentsDelta {
        /// The response.
        response_id: String,
        /// The function-call item.
        item_id: String,
        /// Index in the response's output.
        output_index: u32,
        /// The call.
        call_id: String,
        /// New argument text.
        delta: String,
    },
    /// `response.function_call_arguments.done`.
    FunctionCallArgumentsDone {
        /// The response.
        response_id: String,
        /// The function-call item.
        item_id: String,
        /// Index in the response's output.
        output_index: u32,
        /// The call.
        call_id: String,
        /// The function.
        name: String,
        /// All arguments.
        arguments: String,
    },
    /// `output_audio_buffer.cleared`.
    OutputAudioCleared {
        /// The response whose audio was dropped, if any.
        response_id: Option<String>,
    },
    /// `rate_limits.updated`.
    RateLimitsUpdated {
        /// Responses the session may still start in the current window.
        requests_remaining: u64,
        /// The window's request limit.
        requests_limit: u64,
    },
}

impl ServerEvent {
    /// The event's `type` in a dialect, or `None` where the dialect has no such event.
    pub fn wire_type(&self, dialect: Dialect) -> Option<&'static str> {
        let ga = dialect == Dialect::Ga;
        let pick = |beta: &'static str, ga_name: &'static str| Some(if ga { ga_name } else { beta });
        match self {
            ServerEvent::Error(_) => Some("error"),
            ServerEvent::Warning { .. } => (dialect == Dialect::VoiceLive).then_some("warning"),
            ServerEvent::SessionCreated(_) => Some("session.created"),
            ServerEvent::SessionUpdated(_) => Some("session.updated"),
            ServerEvent::ConversationCreated { .. } => {
                (dialect != Dialect::VoiceLive).then_some("conversation.created")
            }
            ServerEvent::AvatarConnecting { .. } => Some("session.avatar.connecting"),
            ServerEvent::AvatarSpeaking { .. } => Some("session.avatar.switch_to_speaking"),
            ServerEvent::AvatarIdle { .. } => Some("session.avatar.switch_to_idle"),
            ServerEvent::VideoDelta { .. } => (dialect == Dialect::VoiceLive).then_some("response.video.delta"),
            ServerEvent::InputAudioCommitted { .. } => Some("input_audio_buffer.committed"),
            ServerEvent::InputAudioCleared => Some("input_audio_buffer.cleared"),
            ServerEvent::SpeechStarted { .. } => Some("input_audio_buffer.speech_started"),
            ServerEvent::SpeechStopped { .. } => Some("input_audio_buffer.speech_stopped"),
            ServerEvent::ItemCreated { .. } => pick("conversation.item.created", "conversation.item.added"),
            ServerEvent::ItemDone { .. } => ga.then_some("conversation.item.done"),
            ServerEvent::ItemRetrieved { .. } => Some("conversation.item.retrieved"),
            ServerEvent::ItemTruncated { .. } => Some("conversation.item.truncated"),
            ServerEvent::ItemDeleted { .. } => Some("conversation.item.deleted"),
            ServerEvent::TranscriptionDelta { .. } => Some("conversation.item.input_audio_transcription.delta"),
            ServerEvent::TranscriptionCompleted { .. } => Some("conversation.item.input_audio_transcription.completed"),
            ServerEvent::TranscriptionFailed { .. } => Some("conversation.item.input_audio_transcription.failed"),
            ServerEvent::ResponseCreated(_) => Some("response.created"),
            ServerEvent::ResponseDone(_) => Some("response.done"),
            ServerEvent::OutputItemAdded { .. } => Some("response.output_item.added"),
            ServerEvent::OutputItemDone { .. } => Some("response.output_item.done"),
            ServerEvent::ContentPartAdded { .. } => Some("response.content_part.added"),
            ServerEvent::ContentPartDone { .. } => Some("response.content_part.done"),
            ServerEvent::TextDelta { .. } => pick("response.text.delta", "response.output_text.delta"),
            ServerEvent::TextDone { .. } => pick("response.text.done", "response.output_text.done"),
            ServerEvent::AudioDelta { .. } => pick("response.audio.delta", "response.output_audio.delta"),
            ServerEvent::AudioDone { .. } => pick("response.audio.done", "response.output_audio.done"),
            ServerEvent::AudioTranscriptDelta { .. } => {
                pick("response.audio_transcript.delta", "response.output_audio_transcript.delta")
            }
            ServerEvent::AudioTranscriptDone { .. } => {
                pick("response.audio_transcript.done", "response.output_audio_transcript.done")
            }
            ServerEvent::AudioTimestampDelta { .. } => {
                (dialect == Dialect::VoiceLive).then_some("response.audio_timestamp.delta")
            }
            ServerEvent::AudioTimestampDone { .. } => {
                (dialect == Dialect::VoiceLive).then_some("response.audio_timestamp.done")
            }
            ServerEvent::AnimationVisemeDelta { .. } => {
                (dialect == Dialect::VoiceLive).then_some("response.animation_viseme.delta")
            }
            ServerEvent::AnimationVisemeDone { .. } => {
                (dialect == Dialect::VoiceLive).then_some("response.animation_viseme.done")
            }
            ServerEvent::AnimationBlendshapesDelta { .. } => {
                (dialect == Dialect::VoiceLive).then_some("response.animation_blendshapes.delta")
            }
            ServerEvent::AnimationBlendshapesDone { .. } => {
                (dialect == Dialect::VoiceLive).then_some("response.animation_blendshapes.done")
            }
            ServerEvent::FunctionCallArgumentsDelta { .. } => Some("response.function_call_arguments.delta"),
            ServerEvent::FunctionCallArgumentsDone { .. } => Some("response.function_call_arguments.done"),
            ServerEvent::OutputAudioCleared { .. } => Some("output_audio_buffer.cleared"),
            ServerEvent::RateLimitsUpdated { .. } => Some("rate_limits.updated"),
        }
    }

    /// The event as a JSON object, or `None` where the dialect has no such event.
    pub fn to_json(&self, dialect: Dialect, event_id: &str) -> Option<Value> {
        let kind = self.wire_type(dialect)?;
        let mut body = self.body(dialect);
        let m = body.as_object_mut().expect("event bodies are objects");
        m.insert("type".into(), json!(kind));
        m.insert("event_id".into(), json!(event_id));
        Some(body)
    }

    /// The event as a JSON text frame, or `None` where the dialect has no such event.
    pub fn encode(&self, dialect: Dialect, event_id: &str) -> Option<String> {
        self.to_json(dialect, event_id).map(|v| v.to_string())
    }

    fn body(&self, dialect: Dialect) -> Value {
        let at_part = |at: &PartRef, extra: Map<String, Value>| {
            let mut m = Map::new();
            m.insert("response_id".into(), json!(at.response_id));
            m.insert("item_id".into(), json!(at.item_id));
            m.insert("output_index".into(), json!(at.output_index));
            m.insert("content_index".into(), json!(at.content_index));
            m.extend(extra);
            Value::Object(m)
        };
        let one = |k: &str, v: Value| {
            let mut m = Map::new();
            m.insert(k.to_owned(), v);
            m
        };
        match self {
            ServerEvent::Error(e) => json!({"error": e.to_json()}),
            ServerEvent::Warning { code, message } => {
                json!({"warning": {"code": code, "message": message, "param": null}})
            }
            ServerEvent::SessionCreated(s) | ServerEvent::SessionUpdated(s) => json!({"session": s.to_json(dialect)}),
            ServerEvent::ConversationCreated { conversation_id } => {
                json!({"conversation": {"id": conversation_id, "object": "realtime.conversation"}})
            }
            ServerEvent::AvatarConnecting { server_sdp } => json!({"server_sdp": server_sdp}),
            ServerEvent::AvatarSpeaking { turn_id } | ServerEvent::AvatarIdle { turn_id } => match turn_id {
                Some(id) => json!({"turn_id": id}),
                None => json!({}),
            },
            ServerEvent::VideoDelta { delta } => json!({"output_index": 0, "codec": "h264", "delta": delta}),
            ServerEvent::InputAudioCommitted { previous_item_id, item_id } => {
                json!({"previous_item_id": previous_item_id, "item_id": item_id})
            }
            ServerEvent::InputAudioCleared => json!({}),
            ServerEvent::SpeechStarted { audio_start_ms, item_id } => {
                json!({"audio_start_ms": audio_start_ms, "item_id": item_id})
            }
            ServerEvent::SpeechStopped { audio_end_ms, item_id } => {
                json!({"audio_end_ms": audio_end_ms, "item_id": item_id})
            }
            ServerEvent::ItemCreated { previous_item_id, item } | ServerEvent::ItemDone { previous_item_id, item } => {
                json!({"previous_item_id": previous_item_id, "item": item.to_json(dialect)})
            }
            ServerEvent::ItemRetrieved { item } => json!({"item": item.to_json(dialect)}),
            ServerEvent::ItemTruncated { item_id, content_index, audio_end_ms } => {
                json!({"item_id": item_id, "content_index": content_index, "audio_end_ms": audio_end_ms})
            }
            ServerEvent::ItemDeleted { item_id } => json!({"item_id": item_id}),
            ServerEvent::TranscriptionDelta { item_id, content_index, delta } => {
                json!({"item_id": item_id, "content_index": content_index, "delta": delta})
            }
            ServerEvent::TranscriptionCompleted { item_id, content_index, transcript, audio_seconds } => json!({
                "item_id": item_id,
                "content_index": content_index,
                "transcript": transcript,
                "usage": {"type": "duration", "seconds": audio_seconds},
            }),
            ServerEvent::TranscriptionFailed { item_id, content_index, error } => {
                json!({"item_id": item_id, "content_index": content_index, "error": error.to_json()})
            }
            ServerEvent::ResponseCreated(r) | ServerEvent::ResponseDone(r) => json!({"response": r.to_json(dialect)}),
            ServerEvent::OutputItemAdded { response_id, output_index, item }
            | ServerEvent::OutputItemDone { response_id, output_index, item } => {
                json!({"response_id": response_id, "output_index": output_index, "item": item.to_json(dialect)})
            }
            ServerEvent::ContentPartAdded { at, part } | ServerEvent::ContentPartDone { at, part } => {
                at_part(at, one("part", part.part_json()))
            }
            ServerEvent::TextDelta { at, delta }
            | ServerEvent::AudioDelta { at, delta }
            | ServerEvent::AudioTranscriptDelta { at, delta } => at_part(at, one("delta", json!(delta))),
            ServerEvent::TextDone { at, text } => at_part(at, one("text", json!(text))),
            ServerEvent::AudioDone { at } => at_part(at, Map::new()),
            ServerEvent::AudioTranscriptDone { at, transcript } => at_part(at, one("transcript", json!(transcript))),
            ServerEvent::AudioTimestampDelta { at, audio_offset_ms, audio_duration_ms, text } => {
                let mut fields = one("audio_offset_ms", json!(audio_offset_ms));
                fields.insert("audio_duration_ms".into(), json!(audio_duration_ms));
                fields.insert("text".into(), json!(text));
                fields.insert("timestamp_type".into(), json!("word"));
                at_part(at, fields)
            }
            ServerEvent::AudioTimestampDone { at } => at_part(at, Map::new()),
            ServerEvent::AnimationVisemeDelta { at, audio_offset_ms, viseme_id } => {
                let mut fields = one("audio_offset_ms", json!(audio_offset_ms));
                fields.insert("viseme_id".into(), json!(viseme_id));
                at_part(at, fields)
            }
            ServerEvent::AnimationVisemeDone { at } => at_part(at, Map::new()),
            ServerEvent::AnimationBlendshapesDelta { at, frame_index, frames } => {
                // Three decimals are finer than any face can show, and keep the events small.
                let frames: Vec<Vec<f64>> = frames
                    .iter()
                    .map(|f| f.iter().map(|v| (f64::from(*v) * 1000.0).round() / 1000.0).collect())
                    .collect();
                let mut fields = one("frame_index", json!(frame_index));
                fields.insert("frames".into(), json!(frames));
                at_part(at, fields)
            }
            ServerEvent::AnimationBlendshapesDone { at } => json!({
                "response_id": at.response_id, "item_id": at.item_id, "output_index": at.output_index,
            }),
            ServerEvent::FunctionCallArgumentsDelta { response_id, item_id, output_index, call_id, delta } => json!({
                "response_id": response_id, "item_id": item_id, "output_index": output_index,
                "call_id": call_id, "delta": delta,
            }),
            ServerEvent::FunctionCallArgumentsDone { response_id, item_id, output_index, call_id, name, arguments } => {
                json!({
                    "response_id": response_id, "item_id": item_id, "output_index": output_index,
                    "call_id": call_id, "name": name, "arguments": arguments,
                })
            }
            ServerEvent::OutputAudioCleared { response_id } => json!({"response_id": response_id}),
            ServerEvent::RateLimitsUpdated { requests_remaining, requests_limit } => json!({
                "rate_limits": [
                    {"name": "requests", "limit": requests_limit, "remaining": requests_remaining, "reset_seconds": 60.0},
                ],
            }),
        }
    }
}
