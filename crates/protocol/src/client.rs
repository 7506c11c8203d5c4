//! Client events (client → server) and their tolerant parser.
//!
//! [`parse`] accepts what real clients send: keys in any order, `type` last, no `event_id` or a
//! duplicated one (the last wins), explicit `null` for unset fields, numbers written as strings,
//! unknown fields, Voice Live and OpenAI (beta and GA) shapes. Every failure is a
//! [`ProtocolError`] naming the field and carrying the event's `event_id` when it had one.

use crate::error::{ProtocolError, code};
use crate::item::{ItemBody, decode_base64};
use crate::read::{Obj, bad_value};
use crate::response::ResponseOptions;
use crate::session::SessionPatch;
use serde_json::Value;

/// One event from the client.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `session.update`.
    SessionUpdate(Box<SessionPatch>),
    /// `session.avatar.connect`: the client's SDP offer (base64 of the JSON description, or raw).
    AvatarConnect {
        /// As sent.
        client_sdp: String,
    },
    /// `input_audio_buffer.append`: decoded audio bytes in the session's input format.
    InputAudioAppend {
        /// Raw bytes.
        audio: Vec<u8>,
    },
    /// `input_audio_buffer.commit`.
    InputAudioCommit,
    /// `input_audio_buffer.clear`.
    InputAudioClear,
    /// `conversation.item.create`.
    ItemCreate {
        /// Insert after this item; `None` appends; `"root"` inserts first.
        previous_item_id: Option<String>,
        /// The client's id for the item, if it chose one.
        id: Option<String>,
        /// The item.
        body: ItemBody,
    },
    /// `conversation.item.retrieve`.
    ItemRetrieve {
        /// Which item.
        item_id: String,
    },
    /// `conversation.item.truncate`.
    ItemTruncate {
        /// The assistant item.
        item_id: String,
        /// Its audio content part.
        content_index: u64,
        /// Keep audio up to here.
        audio_end_ms: u64,
    },
    /// `conversation.item.delete`.
    ItemDelete {
        /// Which item.
        item_id: String,
    },
    /// `response.create`.
    ResponseCreate(Box<ResponseOptions>),
    /// `response.cancel`.
    ResponseCancel {
        /// Cancel this response only (if given).
        response_id: Option<String>,
    },
    /// `output_audio_buffer.clear`.
    OutputAudioClear,
}

/// A parsed client event with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientMessage {
    /// The client's `event_id`, if any.
    pub event_id: Option<String>,
    /// The event.
    pub event: ClientEvent,
}

/// Every client event type brazen accepts.
pub const CLIENT_EVENT_TYPES: &[&str] = &[
    "session.update",
    "session.avatar.connect",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
];

/// Parses one text frame into a client event.
pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ProtocolError::invalid(code::INVALID_JSON, format!("The event is not valid JSON: {e}.")))?;
    parse_value(&value)
}

/// Parses an already decoded JSON value into a client event.
pub fn parse_value(value: &Value) -> Result<ClientMessage, ProtocolError> {
    let Value::Object(map) = value else {
        return Err(ProtocolError::invalid(code::INVALID_JSON, "The event must be a JSON object."));
    };
    let o = Obj::new(map, "");
    let event_id = match o.raw("event_id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let result = parse_event(o);
    match result {
        Ok(event) => Ok(ClientMessage { event_id, event }),
        Err(e) => Err(e.with_event_id(event_id.as_deref())),
    }
}

fn parse_event(o: Obj<'_>) -> Result<ClientEvent, ProtocolError> {
    let kind = o.required_str("type")?;
    let id = |key: &str| -> Result<String, ProtocolError> {
        let s = o.required_str(key)?;
        if s.is_empty() {
            return Err(bad_value(&o.param(key), format!("Invalid value for '{key}': empty string.")));
        }
        Ok(s.to_owned())
    };
    Ok(match kind {
        "session.update" => {
            let session = o.raw("session").ok_or_else(|| o.missing("session"))?;
            if session.is_null() {
                return Err(o.missing("session"));
            }
            ClientEvent::SessionUpdate(Box::new(SessionPatch::read(Obj::expect(session, "session")?)?))
        }
        "session.avatar.connect" => ClientEvent::AvatarConnect { client_sdp: id("client_sdp")? },
        "input_audio_buffer.append" => {
            let b64 = o.required_str("audio")?;
            ClientEvent::InputAudioAppend { audio: decode_base64(b64, "audio")? }
        }
        "input_audio_buffer.commit" => ClientEvent::InputAudioCommit,
        "input_audio_buffer.clear" => ClientEvent::InputAudioClear,
        "conversation.item.create" => {
            let item = o.raw("item").filter(|v| !v.is_null()).ok_or_else(|| o.missing("item"))?;
            let (id, body) = crate::item::Item::read(item, "item")?;
            ClientEvent::ItemCreate {
                previous_item_id: o.str("previous_item_id")?.value().map(str::to_owned),
                id,
                body,
            }
        }
        "conversation.item.retrieve" => ClientEvent::ItemRetrieve { item_id: id("item_id")? },
        "conversation.item.truncate" => ClientEvent::ItemTruncate {
            item_id: id("item_id")?,
            content_index: o.u64("content_index")?.value().unwrap_or(0),
            audio_end_ms: o.u64("audio_end_ms")?.value().ok_or_else(|| o.missing("audio_end_ms"))?,
        },
        "conversation.item.delete" => ClientEvent::ItemDelete { item_id: id("item_id")? },
        "response.create" => {
            let options = match o.raw("response") {
                None | Some(Value::Null) => ResponseOptions::default(),
                Some(v) => ResponseOptions::read(Obj::expect(v, "response")?)?,
            };
            ClientEvent::ResponseCreate(Box::new(options))
        }
        "response.cancel" => {
            ClientEvent::ResponseCancel { response_id: o.str("response_id")?.value().map(str::to_owned) }
        }
        "output_audio_buffer.clear" => ClientEvent::OutputAudioClear,
        other => {
            return Err(ProtocolError::invalid(
                code::INVALID_EVENT_TYPE,
                format!("Invalid value: '{other}'. Supported values are: {}.", CLIENT_EVENT_TYPES.join(", ")),
            )
            .with_param("type"));
        }
    })
}
