//! The official Voice Live avatar sample's own backend protocol (`../shared/reference/SEED_APPS.md`
//! §1), so its unmodified static page (`index.html`, `app.js`, `style.css`, served from `web_root`)
//! runs against brazen alone: `GET /api/config`, and the page's JSON WebSocket `/ws/{clientId}`.
//!
//! One socket is one page. `start_session` starts an ordinary Voice Live session of the runtime
//! (its `config` mapped as the sample's Python backend maps it upstream: voice, turn detection,
//! transcription, the avatar with its character, style and photo scene); the page's messages
//! (`audio_chunk`, `send_text`, `avatar_sdp_offer`, `update_scene`, `interrupt`,
//! `stop_session`) become protocol events, and the session's events become the page's messages
//! (`ice_servers`, `session_started`, `avatar_sdp_answer`, `response_created`,
//! `transcript_delta`, `transcript_done`, `audio_data`, `video_data`, `speech_started`, …).
//! The page may start a new session on the same socket after `stop_session`.

use crate::app::AppState;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use brazen_protocol::Dialect;
use brazen_runtime::connection::{self, ClientFrame, ConnectionOptions, ServerFrame};
use futures_util::{SinkExt, StreamExt, sink, stream};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The model the page is told about (its `<select>` has this option).
const MODEL: &str = "gpt-4o-realtime";
/// The voice the page is told about (an option of its `<select>`).
const VOICE: &str = "en-US-AvaMultilingualNeural";
/// The most a page message may hold (a 100 ms audio chunk is 6.4 kB; an SDP offer a few kB).
const MAX_MESSAGE: usize = 1 << 20;

/// `GET /api/config`: what the page pre-fills. `endpoint` is this server (the page refuses to
/// connect with an empty one); the key field is the page's own and brazen ignores it.
pub async fn config(headers: HeaderMap) -> Response {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    axum::Json(json!({"model": MODEL, "voice": VOICE, "endpoint": format!("http://{host}"), "hasApiKey": false}))
        .into_response()
}

/// `GET /ws/{clientId}`: the page's socket.
pub async fn socket(
    State(state): State<Arc<AppState>>,
    Path(client_id): Path<String>,
    crate::app::Peer(peer): crate::app::Peer,
    uri: axum::http::Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(message) = crate::origin::check_origin(&state.config, &headers) {
        return crate::app::json_error(axum::http::StatusCode::FORBIDDEN, "origin_not_allowed", &message);
    }
    if !state.may_use_sessions(&headers, uri.query()) {
        return crate::app::json_error(
            axum::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "This server has an API key: give it as ?api-key=… on the page's socket URL.",
        );
    }
    if let Err(refused) = state.admit_connection(peer, state.key_tag_of(&headers, uri.query()).as_deref()) {
        return refused;
    }
    upgrade.max_message_size(MAX_MESSAGE).on_upgrade(move |socket| serve(socket, state, client_id))
}

/// A running session of the page: its events in, and what the page asked for.
struct Running {
    to_session: mpsc::Sender<ClientFrame<String>>,
    from_session: mpsc::Receiver<ServerFrame>,
    /// The avatar streams by WebRTC (the voice then travels in its audio track, not as
    /// `audio_data`).
    webrtc_avatar: bool,
    /// Greet once the avatar is connected (or at once without a WebRTC avatar).
    greet: bool,
}

/// Serves one page until it leaves.
async fn serve(socket: WebSocket, state: Arc<AppState>, client_id: String) {
    let (mut sink, mut messages) = socket.split();
    let mut running: Option<Running> = None;
    let send = |v: Value| Message::Text(v.to_string().into());
    loop {
        let event = async {
            match running.as_mut() {
                Some(r) => r.from_session.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = messages.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = sink.send(send(json!({"type": "error", "error": "Send JSON text messages."}))).await;
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                let message: Value = match serde_json::from_str(&text) {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = sink.send(send(json!({"type": "error", "error": format!("The message is not valid JSON: {e}")}))).await;
                        continue;
                    }
                };
                match message["type"].as_str().unwrap_or_default() {
                    "start_session" => {
                        running = None; // a new session replaces the old one
                        match start(&state, &message["config"]).await {
                            Ok((r, replies)) => {
                                for reply in replies {
                                    let _ = sink.send(send(reply)).await;
                                }
                                if r.greet && !r.webrtc_avatar {
                                    let _ = r.to_session.send(ClientFrame::Text(json!({"type": "response.create"}).to_string())).await;
                                }
                                running = Some(r);
                                tracing::info!(client = %client_id, "avatar sample session started");
                            }
                            Err(error) => {
                                let _ = sink.send(send(json!({"type": "session_error", "error": error}))).await;
                            }
                        }
                    }
                    "stop_session" => running = None,
                    kind => {
                        let Some(r) = running.as_ref() else {
                            let error = format!("'{}' needs a session: send start_session first.", kind.chars().take(40).collect::<String>());
                            let _ = sink.send(send(json!({"type": "error", "error": error}))).await;
                            continue;
                        };
                        match page_events(&message) {
                            Ok(events) => {
                                for event in events {
                                    if r.to_session.send(ClientFrame::Text(event.to_string())).await.is_err() {
                                        break;
                                    }
                                }
                            }
                            Err(error) => {
                                let _ = sink.send(send(json!({"type": "error", "error": error}))).await;
                            }
                        }
                    }
                }
            }
            event = event => {
                let Some(ServerFrame::Text(text)) = event else {
                    running = None;
                    let _ = sink.send(send(json!({"type": "session_closed"}))).await;
                    continue;
                };
                let Ok(event) = serde_json::from_str::<Value>(&text) else { continue };
                let Some(r) = running.as_ref() else { continue };
                if event["type"] == "session.avatar.connecting" && r.greet {
                    let _ = r.to_session.send(ClientFrame::Text(json!({"type": "response.create"}).to_string())).await;
                }
                for message in page_messages(&event, r.webrtc_avatar) {
                    if sink.send(send(message)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Starts a session for the page's `config`: the running session and the page's first messages
/// (`ice_servers` for a WebRTC avatar, then `session_started`), or why it cannot start.
async fn start(state: &Arc<AppState>, config: &Value) -> Result<(Running, Vec<Value>), String> {
    if !config.is_object() {
        return Err("start_session needs a 'config' object.".into());
    }
    let update = session_update(config)?;
    let slot = state.runtime.admit_session().ok_or("The server is at its session limit; try again later.")?;
    let (to_session, from_page) = mpsc::channel::<ClientFrame<String>>(256);
    let (to_page, from_session) = mpsc::channel::<ServerFrame>(1024);
    let frames_in = stream::unfold(from_page, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let frames_out = sink::unfold(to_page, |tx, frame| async move { tx.send(frame).await.map(|()| tx) });
    let model = config["model"].as_str().filter(|m| !m.is_empty()).unwrap_or(MODEL).to_owned();
    tokio::spawn(connection::drive(
        frames_in,
        frames_out,
        slot,
        ConnectionOptions { dialect: Dialect::VoiceLive, model: model.clone(), ..Default::default() },
    ));
    to_session.send(ClientFrame::Text(update.to_string())).await.map_err(|_| "The session ended at once.")?;
    let mut from_session = from_session;
    // The session's answer to the configuration: its `session.updated`, or the error.
    let configured = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let Some(ServerFrame::Text(text)) = from_session.recv().await else {
                return Err("The session ended at once.".to_owned());
            };
            let event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match event["type"].as_str() {
                Some("session.updated") => return Ok(()),
                Some("error") => {
                    let message = event["error"]["message"].as_str();
                    return Err(message.unwrap_or("The session refused its configuration.").to_owned());
                }
                _ => {}
            }
        }
    })
    .await;
    configured.map_err(|_| "The session did not take its configuration in time.".to_owned())??;
    let avatar_enabled = config["avatarEnabled"].as_bool().unwrap_or(false);
    let mode = if config["avatarOutputMode"] == "websocket" { "websocket" } else { "webrtc" };
    let webrtc_avatar = avatar_enabled && mode == "webrtc";
    let mut replies = Vec::new();
    if webrtc_avatar {
        let ice = state.runtime.media.as_ref().map(|m| m.ice_servers()).unwrap_or_default();
        replies.push(json!({"type": "ice_servers", "iceServers": ice}));
    }
    replies.push(json!({"type": "session_started", "status": "success", "sessionId": Value::Null,
        "config": {"model": model, "avatarEnabled": avatar_enabled, "avatarOutputMode": mode}}));
    let greet = config["enableProactive"].as_bool().unwrap_or(false);
    Ok((Running { to_session, from_session, webrtc_avatar, greet }, replies))
}

/// The `session.update` the sample's backend makes of the page's `config`.
pub fn session_update(config: &Value) -> Result<Value, String> {
    let text = |k: &str| config[k].as_str().map(str::trim).filter(|s| !s.is_empty());
    let mut session = json!({
        "modalities": ["text", "audio"],
        "input_audio_sampling_rate": 24000,
    });
    if let Some(instructions) = text("instructions") {
        session["instructions"] = json!(instructions);
    }
    if let Some(t) = config["temperature"].as_f64() {
        session["temperature"] = json!(t.clamp(0.6, 1.2));
    }
    // A name with a "-" is an Azure voice, otherwise an OpenAI one.
    let voice_name = text("customVoiceName").or(text("personalVoiceName")).or(text("voiceName")).unwrap_or(VOICE);
    let mut voice =
        json!({"name": voice_name, "type": if voice_name.contains('-') { "azure-standard" } else { "openai" }});
    if let Some(rate) = config["voiceSpeed"].as_f64() {
        voice["rate"] = json!(rate.to_string());
    }
    session["voice"] = voice;
    let turn = match text("turnDetectionType") {
        Some("azure_semantic_vad") => "azure_semantic_vad",
        _ => "server_vad",
    };
    let mut detection = json!({"type": turn, "threshold": 0.3, "prefix_padding_ms": 300, "silence_duration_ms": 500});
    if config["removeFillerWords"].as_bool() == Some(true) {
        detection["remove_filler_words"] = json!(true);
    }
    if let Some(eou) = text("eouDetectionType").filter(|e| *e != "none") {
        detection["end_of_utterance_detection"] = json!({"model": eou});
    }
    session["turn_detection"] = detection;
    let mut transcription = json!({"model": text("srModel").unwrap_or("azure-speech")});
    if let Some(language) = text("recognitionLanguage").filter(|l| *l != "auto") {
        transcription["language"] = json!(language);
    }
    session["input_audio_transcription"] = transcription;
    if config["useNS"].as_bool() == Some(true) {
        session["input_audio_noise_reduction"] = json!({"type": "azure_deep_noise_suppression"});
    }
    if config["useEC"].as_bool() == Some(true) {
        session["input_audio_echo_cancellation"] = json!({"type": "server_echo_cancellation"});
    }
    if config["avatarEnabled"].as_bool() == Some(true) {
        session["avatar"] = avatar(config)?;
    }
    Ok(json!({"type": "session.update", "session": session}))
}

/// The avatar of the page's `config`: the character is the name's part before the first "-"
/// (lower-cased), the style the rest; a photo avatar's scene from percent and degrees.
fn avatar(config: &Value) -> Result<Value, String> {
    let photo = config["isPhotoAvatar"].as_bool() == Some(true);
    let name = config["avatarName"].as_str().map(str::trim).filter(|s| !s.is_empty());
    let name = name.unwrap_or(if photo { "Anika" } else { "Lisa-casual-sitting" });
    let (character, style) = match name.split_once('-') {
        Some((c, s)) => (c.to_lowercase(), Some(s.to_owned())),
        None => (name.to_lowercase(), None),
    };
    let mut avatar = json!({"character": character, "customized": config["isCustomAvatar"].as_bool() == Some(true)});
    if let Some(style) = style.filter(|_| !photo) {
        avatar["style"] = json!(style);
    }
    if photo {
        avatar["type"] = json!("photo-avatar");
        avatar["model"] = json!("vasa-1");
        let scene = &config["photoScene"];
        if scene.is_object() {
            let n = |k: &str, default: f64| scene[k].as_f64().unwrap_or(default);
            let rad = |deg: f64| deg.to_radians();
            avatar["scene"] = json!({
                "zoom": n("zoom", 100.0) / 100.0,
                "position_x": n("positionX", 0.0) / 100.0,
                "position_y": n("positionY", 0.0) / 100.0,
                "rotation_x": rad(n("rotationX", 0.0)),
                "rotation_y": rad(n("rotationY", 0.0)),
                "rotation_z": rad(n("rotationZ", 0.0)),
                "amplitude": n("amplitude", 100.0) / 100.0,
            });
        }
    } else {
        avatar["video"] = json!({"resolution": {"width": 1920, "height": 1080}, "bitrate": 2000000,
            "crop": {"top_left": [560, 0], "bottom_right": [1360, 1080]}});
    }
    if config["avatarOutputMode"] == "websocket" {
        avatar["output_protocol"] = json!("websocket");
    }
    if let Some(url) = config["avatarBackgroundImageUrl"].as_str().filter(|u| !u.trim().is_empty()) {
        avatar["video"]["background"] = json!({"image_url": url});
    }
    Ok(avatar)
}

/// The protocol events for one of the page's messages (other than start and stop).
pub fn page_events(message: &Value) -> Result<Vec<Value>, String> {
    Ok(match message["type"].as_str().unwrap_or_default() {
        "audio_chunk" => {
            let data = message["data"].as_str().ok_or("'audio_chunk' needs 'data' (base64 PCM16).")?;
            let bytes = STANDARD.decode(data).map_err(|_| "'data' is not valid base64.")?;
            if bytes.len() % 2 != 0 {
                return Err(format!(
                    "PCM16 audio must be a whole number of 2-byte samples; got {} bytes.",
                    bytes.len()
                ));
            }
            if bytes.is_empty() {
                return Ok(Vec::new());
            }
            vec![json!({"type": "input_audio_buffer.append", "audio": data})]
        }
        "send_text" => {
            let text =
                message["text"].as_str().map(str::trim).filter(|t| !t.is_empty()).ok_or("'send_text' needs 'text'.")?;
            vec![
                json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": text}]}}),
                json!({"type": "response.create"}),
            ]
        }
        "avatar_sdp_offer" => {
            let sdp = message["clientSdp"].as_str().ok_or("'avatar_sdp_offer' needs 'clientSdp'.")?;
            vec![json!({"type": "session.avatar.connect", "client_sdp": sdp})]
        }
        "update_scene" => {
            let avatar =
                message.get("avatar").filter(|a| a.is_object()).ok_or("'update_scene' needs an 'avatar' object.")?;
            vec![json!({"type": "session.update", "session": {"avatar": avatar}})]
        }
        "interrupt" => vec![json!({"type": "response.cancel"})],
        other => {
            let other: String = other.chars().take(40).collect();
            return Err(format!(
                "Unknown message type '{other}': expected start_session, audio_chunk, send_text, avatar_sdp_offer, update_scene, interrupt or stop_session."
            ));
        }
    })
}

/// The page's messages for one session event.
pub fn page_messages(event: &Value, webrtc_avatar: bool) -> Vec<Value> {
    let field = |k: &str| event.get(k).cloned().unwrap_or(Value::Null);
    match event["type"].as_str().unwrap_or_default() {
        "session.avatar.connecting" => vec![json!({"type": "avatar_sdp_answer", "serverSdp": field("server_sdp")})],
        "response.created" => vec![json!({"type": "response_created", "responseId": event["response"]["id"]})],
        "response.audio_transcript.delta" => {
            vec![json!({"type": "transcript_delta", "role": "assistant", "delta": field("delta")})]
        }
        "response.audio_transcript.done" => vec![json!({"type": "transcript_done", "role": "assistant",
            "transcript": field("transcript"), "itemId": field("item_id")})],
        "response.text.delta" => vec![json!({"type": "text_delta", "delta": field("delta")})],
        "response.text.done" => vec![json!({"type": "text_done", "text": field("text")})],
        // With a WebRTC avatar the voice is in its audio track; the page would play both.
        "response.audio.delta" if webrtc_avatar => Vec::new(),
        "response.audio.delta" => {
            vec![json!({"type": "audio_data", "data": field("delta"), "format": "pcm16", "sampleRate": 24000})]
        }
        "response.audio.done" => vec![json!({"type": "audio_done"})],
        "response.video.delta" => vec![json!({"type": "video_data", "delta": field("delta")})],
        "conversation.item.input_audio_transcription.completed" => {
            vec![json!({"type": "transcript_done", "role": "user",
            "transcript": field("transcript"), "itemId": field("item_id")})]
        }
        "input_audio_buffer.speech_started" => vec![json!({"type": "speech_started", "itemId": field("item_id")})],
        "input_audio_buffer.speech_stopped" => vec![json!({"type": "speech_stopped"})],
        "response.done" => vec![json!({"type": "response_done"})],
        "error" => vec![json!({"type": "error", "error": event["error"]["message"]})],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_config_becomes_the_session_the_sample_asks_upstream() {
        let config = json!({"mode": "model", "model": "gpt-4o-realtime", "instructions": "Be nice.", "temperature": 0.9,
            "voiceName": "en-US-AvaMultilingualNeural", "voiceSpeed": 1.2, "avatarEnabled": true,
            "avatarOutputMode": "webrtc", "isPhotoAvatar": false, "avatarName": "Lisa-casual-sitting",
            "turnDetectionType": "azure_semantic_vad", "removeFillerWords": true, "recognitionLanguage": "en-US",
            "useNS": true, "useEC": false});
        let s = &session_update(&config).unwrap()["session"];
        assert_eq!(s["voice"], json!({"name": "en-US-AvaMultilingualNeural", "type": "azure-standard", "rate": "1.2"}));
        assert_eq!(s["turn_detection"]["type"], "azure_semantic_vad");
        assert_eq!(s["turn_detection"]["remove_filler_words"], true);
        assert_eq!(
            (s["avatar"]["character"].as_str(), s["avatar"]["style"].as_str()),
            (Some("lisa"), Some("casual-sitting"))
        );
        assert_eq!(s["input_audio_transcription"]["language"], "en-US");
        assert_eq!(s["input_audio_noise_reduction"]["type"], "azure_deep_noise_suppression");
        let photo = json!({"avatarEnabled": true, "isPhotoAvatar": true, "avatarName": "Anika",
            "photoScene": {"zoom": 80, "positionX": 10, "positionY": -20, "rotationX": 0, "rotationY": 30, "rotationZ": 0, "amplitude": 50}});
        let a = &session_update(&photo).unwrap()["session"]["avatar"];
        assert_eq!((a["type"].as_str(), a["character"].as_str()), (Some("photo-avatar"), Some("anika")));
        assert_eq!(a["scene"]["zoom"], 0.8);
        assert!((a["scene"]["rotation_y"].as_f64().unwrap() - std::f64::consts::FRAC_PI_6).abs() < 1e-9, "{a}");
    }

    #[test]
    fn page_messages_become_events_and_bad_ones_are_named() {
        let audio = page_events(&json!({"type": "audio_chunk", "data": STANDARD.encode([0u8; 4800])})).unwrap();
        assert_eq!(audio[0]["type"], "input_audio_buffer.append");
        assert!(
            page_events(&json!({"type": "audio_chunk", "data": STANDARD.encode([0u8; 3])}))
                .unwrap_err()
                .contains("2-byte")
        );
        let text = page_events(&json!({"type": "send_text", "text": "hi"})).unwrap();
        assert_eq!(
            (text[0]["type"].as_str(), text[1]["type"].as_str()),
            (Some("conversation.item.create"), Some("response.create"))
        );
        assert!(page_events(&json!({"type": "dance"})).unwrap_err().contains("Unknown message type 'dance'"));
        let answer = page_messages(&json!({"type": "session.avatar.connecting", "server_sdp": "eyJ0"}), true);
        assert_eq!(answer, [json!({"type": "avatar_sdp_answer", "serverSdp": "eyJ0"})]);
        assert!(page_messages(&json!({"type": "response.audio.delta", "delta": "AA=="}), true).is_empty());
        assert_eq!(
            page_messages(&json!({"type": "response.audio.delta", "delta": "AA=="}), false)[0]["type"],
            "audio_data"
        );
    }
}
