//! The avatar's media connection as the session sees it: what the session asks of the driver
//! ([`AvatarCommand`]: start the avatar over WebRTC or over the session's socket, speak this
//! phrase with this audio, stop) and what the driver tells it back ([`AvatarEvent`]), plus
//! reading the client's offer as Voice Live clients send it (`client_sdp`: base64 of the JSON
//! description, the JSON itself, or plain SDP).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use brazen_avatar::character::Look;
use brazen_avatar::{Phone, Scene};

use crate::avatar_photo::PhotoAvatar;
use brazen_protocol::avatar::AvatarVideo;

/// The longest SDP offer accepted (a browser's is 3–8 KB).
pub const MAX_OFFER_BYTES: usize = 64 * 1024;

/// How the avatar's video reaches the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvatarTransport {
    /// WebRTC, answering this SDP offer (`session.avatar.connect`).
    WebRtc {
        /// The offer's SDP text.
        offer_sdp: String,
    },
    /// Fragmented MP4 in `response.video.delta` events on the session's socket
    /// (`output_protocol: "websocket"`).
    WebSocket,
}

/// Who the avatar is.
#[derive(Debug, Clone, PartialEq)]
pub enum AvatarFace {
    /// A built-in character in this look.
    Character(Look),
    /// A photo avatar.
    Photo(PhotoAvatar),
}

/// What the session asks of the avatar's driver.
#[derive(Debug, Clone, PartialEq)]
pub enum AvatarCommand {
    /// Start the avatar's stream; reply with [`AvatarEvent::Answered`] (WebRTC),
    /// [`AvatarEvent::Started`] (WebSocket) or [`AvatarEvent::Refused`].
    Connect {
        /// Where its video goes.
        transport: AvatarTransport,
        /// Who it is.
        face: AvatarFace,
        /// The video settings.
        video: AvatarVideo,
        /// Seeds the avatar's idle motion (blinks, sway).
        seed: u64,
    },
    /// The audio that follows starts a phrase of `duration_ms`, spoken as `phones`.
    Phrase {
        /// How long it lasts (its timings' end).
        duration_ms: f64,
        /// Its phoneme timings (ms from its start).
        phones: Vec<Phone>,
    },
    /// Speech to play, in order.
    Audio {
        /// Mono 16-bit samples.
        samples: Vec<i16>,
        /// Their rate.
        sample_rate: u32,
    },
    /// Drop the speech not yet played (a barge-in or `output_audio_buffer.clear`).
    Clear,
    /// New scene controls for a photo avatar (`session.update` with `avatar.scene`).
    Scene(Scene),
    /// Close the connection (the session no longer has an avatar).
    Close,
}

/// What the avatar's driver tells the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvatarEvent {
    /// The offer was answered with this SDP.
    Answered(String),
    /// The avatar is streaming over the session's socket.
    Started,
    /// The next bytes of the avatar's MP4 stream (WebSocket transport).
    Video(Vec<u8>),
    /// The offer (or the start) was refused.
    Refused {
        /// It cannot be read (`false`), or it lacks what the avatar sends (`true`).
        unsupported: bool,
        /// Why, for the client.
        message: String,
    },
    /// A picture the client named (a background, a portrait) cannot be used; the avatar goes
    /// on without it.
    PictureFailed {
        /// The field that named it (`session.avatar.video.background.image_url`, …).
        param: String,
        /// Why, for the client.
        message: String,
    },
    /// The avatar's speech started playing.
    Speaking,
    /// The avatar's speech stopped playing.
    Idle,
    /// The connection closed (the browser left or stopped answering).
    Closed,
}

/// Where the session's avatar connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Link {
    /// No connection.
    #[default]
    Off,
    /// An offer is being answered, or the stream started.
    Offered,
    /// Answered or started: speech goes to the avatar.
    Live,
}

/// The SDP text of a `client_sdp`: base64 of `{"type": "offer", "sdp": "v=0…"}` (what the
/// Voice Live samples send), that JSON as is, or the SDP itself.
pub fn read_offer(client_sdp: &str) -> Result<String, String> {
    const SHAPE: &str = "'client_sdp' must be base64 of the offer's JSON description ({\"type\": \"offer\", \"sdp\": \"v=0…\"}), that JSON, or the SDP text.";
    if client_sdp.len() > MAX_OFFER_BYTES * 2 {
        return Err(format!("'client_sdp' is {} bytes; an offer is at most {MAX_OFFER_BYTES}.", client_sdp.len()));
    }
    // Leading space is dropped; the SDP's own line ends are kept.
    let text = client_sdp.trim_start();
    let decoded;
    let text = if text.starts_with("v=") || text.starts_with('{') {
        text
    } else {
        let text = text.trim_end();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| SHAPE.to_owned())?;
        decoded = String::from_utf8(bytes).map_err(|_| SHAPE.to_owned())?;
        decoded.trim_start()
    };
    let sdp = if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|_| SHAPE.to_owned())?;
        match value.get("type").and_then(|t| t.as_str()) {
            Some("offer") => {}
            Some(other) => {
                return Err(format!("'client_sdp' is an SDP {other:?}; session.avatar.connect takes an \"offer\"."));
            }
            None => return Err(SHAPE.to_owned()),
        }
        value.get("sdp").and_then(|s| s.as_str()).ok_or_else(|| SHAPE.to_owned())?.to_owned()
    } else {
        text.to_owned()
    };
    if !sdp.starts_with("v=0") {
        return Err(format!("{SHAPE} The SDP does not start with \"v=0\"."));
    }
    if sdp.len() > MAX_OFFER_BYTES {
        return Err(format!("The SDP offer is {} bytes; the limit is {MAX_OFFER_BYTES}.", sdp.len()));
    }
    Ok(sdp)
}

/// `server_sdp` for an answer: base64 of `{"type": "answer", "sdp": …}`.
pub fn encode_answer(sdp: &str) -> String {
    STANDARD.encode(serde_json::json!({"type": "answer", "sdp": sdp}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n";

    #[test]
    fn offers_are_read_in_every_shape_clients_send() {
        let json = serde_json::json!({"type": "offer", "sdp": SDP}).to_string();
        assert_eq!(read_offer(&STANDARD.encode(&json)).unwrap(), SDP);
        assert_eq!(read_offer(STANDARD_NO_PAD.encode(&json).as_str()).unwrap(), SDP);
        assert_eq!(read_offer(&json).unwrap(), SDP);
        assert_eq!(read_offer(SDP).unwrap(), SDP);
        assert_eq!(read_offer(&STANDARD.encode(SDP)).unwrap(), SDP);
    }

    #[test]
    fn anything_else_is_a_clear_error() {
        let answer = serde_json::json!({"type": "answer", "sdp": SDP}).to_string();
        assert!(read_offer(&STANDARD.encode(answer)).unwrap_err().contains("\"answer\""));
        assert!(read_offer("not base64 at all!").unwrap_err().contains("base64"));
        assert!(read_offer(&STANDARD.encode("{\"type\":\"offer\"}")).unwrap_err().contains("client_sdp"));
        assert!(read_offer(&STANDARD.encode("hello")).unwrap_err().contains("v=0"));
        let huge = format!("{SDP}{}", "a=x\r\n".repeat(20_000));
        assert!(read_offer(&huge).unwrap_err().contains("limit"));
    }

    #[test]
    fn answers_are_base64_json() {
        let answer = encode_answer(SDP);
        let json: serde_json::Value = serde_json::from_slice(&STANDARD.decode(answer).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"type": "answer", "sdp": SDP}));
    }
}
