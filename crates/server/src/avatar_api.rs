//! The TTS-avatar REST API, for chat apps that already have an LLM and want a talking avatar
//! (the surface of Azure's TTS-avatar guide, served by brazen's own voice and avatar):
//!
//! - `POST /api/avatar/connect` `{sdp, character?, style?, background?, voice?}` with a plain SDP
//!   offer (or the samples' base64 JSON) → `{session_id, sdp}` with the plain answer;
//! - `POST /api/avatar/speak` `{session_id, text}` or `{session_id, ssml}` → 202 `{id}` at once;
//!   the speech is queued and spoken in order, each after the last has been heard;
//! - `POST /api/avatar/stop` `{session_id}`: cuts the speech now and empties the queue;
//! - `POST /api/avatar/disconnect` `{session_id}`: ends the session;
//! - `GET /api/avatar/speech-token`: a short-lived token a browser may hold instead of the
//!   server's key (accepted by brazen's REST routes and sockets until it expires);
//! - `GET /api/avatar/ice-token`: the ICE servers for the avatar's WebRTC connection.
//!
//! Each session is an ordinary Voice Live session of the runtime with its avatar on and turn
//! detection off. A session with no request for [`IDLE`] is closed, and any session after
//! [`MAX_AGE`], as Azure's avatar service does.

use crate::app::{AppState, json_error};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use brazen_protocol::Dialect;
use brazen_runtime::connection::{self, ClientFrame, ConnectionOptions, ServerFrame};
use futures_util::{sink, stream};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// A session with no request for this long is closed.
pub const IDLE: Duration = Duration::from_secs(5 * 60);
/// No session lasts longer.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 60);
/// How long a speech token is accepted.
pub const TOKEN_LIFE: Duration = Duration::from_secs(10 * 60);
/// How long the avatar may take to answer an offer.
const CONNECT_WAIT: Duration = Duration::from_secs(20);
/// The most text one `speak` may carry.
const MAX_SPEAK: usize = 10_000;
/// The most speech waiting in one session's queue.
const MAX_QUEUE: usize = 64;

/// The avatar sessions, and the speech tokens handed out.
#[derive(Default)]
pub struct AvatarSessions {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    ids: AtomicU64,
    tokens: Mutex<HashMap<String, Instant>>,
}

impl AvatarSessions {
    /// Whether `token` is a speech token still in force.
    pub fn token_valid(&self, token: &str) -> bool {
        self.tokens.lock().ok().and_then(|t| t.get(token).copied()).is_some_and(|until| Instant::now() < until)
    }

    /// Closes sessions past [`IDLE`] or [`MAX_AGE`] and forgets expired tokens.
    pub fn sweep(&self) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|id, s| {
                let idle = s.last_request.lock().map(|t| t.elapsed() > IDLE).unwrap_or(true);
                let old = s.created.elapsed() > MAX_AGE;
                if idle || old {
                    tracing::info!(session = %id, "avatar API session closed: {}", if old { "maximum age" } else { "idle" });
                }
                !(idle || old)
            });
        }
        if let Ok(mut tokens) = self.tokens.lock() {
            let now = Instant::now();
            tokens.retain(|_, until| *until > now);
        }
    }

    fn get(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.sessions.lock().ok()?.get(id).cloned()?;
        if let Ok(mut t) = s.last_request.lock() {
            *t = Instant::now();
        }
        Some(s)
    }
}

/// One avatar session.
struct Session {
    to_session: mpsc::Sender<ClientFrame<String>>,
    /// Speech waiting to be spoken: (id, text).
    queue: Mutex<VecDeque<(String, String)>>,
    /// Whether a reply is being spoken now.
    speaking: Mutex<bool>,
    /// The offer waiting for its answer.
    answer: Mutex<Option<oneshot::Sender<Result<String, String>>>>,
    created: Instant,
    last_request: Mutex<Instant>,
}

impl Session {
    /// Starts the next queued speech if nothing is being spoken.
    fn next(&self) {
        let Ok(mut speaking) = self.speaking.lock() else { return };
        if *speaking {
            return;
        }
        let Ok(mut queue) = self.queue.lock() else { return };
        let Some((id, text)) = queue.pop_front() else { return };
        let event = json!({"type": "response.create", "event_id": id,
            "response": {"pre_generated_assistant_message": text}});
        if self.to_session.try_send(ClientFrame::Text(event.to_string())).is_ok() {
            *speaking = true;
        } else {
            queue.push_front((id, text)); // the session is busy: tried again on its next event
        }
    }
}

/// Refuses a request the server's key (or a speech token) or origin rules do not admit.
#[allow(clippy::result_large_err)] // the refusal is the response itself, made once
fn admit(state: &AppState, headers: &HeaderMap, uri: &axum::http::Uri) -> Result<(), Response> {
    if let Err(message) = crate::origin::check_origin(&state.config, headers) {
        return Err(json_error(StatusCode::FORBIDDEN, "origin_not_allowed", &message));
    }
    if !state.may_use_sessions(headers, uri.query()) {
        return Err(json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or invalid API key or speech token.",
        ));
    }
    Ok(())
}

/// The JSON object of a request body, or the 400 that says why not.
#[allow(clippy::result_large_err)]
fn object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(json_error(StatusCode::BAD_REQUEST, "invalid_body", "The body must be a JSON object.")),
        Err(e) => {
            Err(json_error(StatusCode::BAD_REQUEST, "invalid_body", &format!("The body is not valid JSON: {e}.")))
        }
    }
}

/// The session a request names, or the 400/404.
#[allow(clippy::result_large_err)]
fn session_of(state: &AppState, body: &serde_json::Map<String, Value>) -> Result<(String, Arc<Session>), Response> {
    let id = body.get("session_id").and_then(Value::as_str).ok_or_else(|| {
        json_error(
            StatusCode::BAD_REQUEST,
            "missing_session_id",
            "The body needs 'session_id' (from /api/avatar/connect).",
        )
    })?;
    let session = state.avatar_api.get(id).ok_or_else(|| {
        json_error(
            StatusCode::NOT_FOUND,
            "session_not_found",
            &format!("There is no avatar session '{id}' (it may have timed out)."),
        )
    })?;
    Ok((id.to_owned(), session))
}

/// A request about a session: its body, the session's id, the session.
type SessionRequest = (serde_json::Map<String, Value>, String, Arc<Session>);

/// An admitted request's body and the session it names, or the refusal to send.
#[allow(clippy::result_large_err)]
fn session_request(
    state: &AppState,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SessionRequest, Response> {
    admit(state, headers, uri)?;
    let body = object(body)?;
    let (id, session) = session_of(state, &body)?;
    Ok((body, id, session))
}

/// A fresh id with `prefix`.
fn fresh_id(state: &AppState, prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let n = state.avatar_api.ids.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    format!("{prefix}_{:016x}", h.finish())
}

/// `POST /api/avatar/connect`.
pub async fn connect(
    State(state): State<Arc<AppState>>,
    crate::app::Peer(peer): crate::app::Peer,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = admit(&state, &headers, &uri) {
        return refused;
    }
    if let Err(refused) = state.admit_connection(peer, state.key_tag_of(&headers, uri.query()).as_deref()) {
        return refused;
    }
    let body = match object(&body) {
        Ok(b) => b,
        Err(bad) => return bad,
    };
    let Some(offer) = body.get("sdp").and_then(Value::as_str).filter(|s| !s.trim().is_empty()) else {
        return json_error(StatusCode::BAD_REQUEST, "missing_sdp", "The body needs 'sdp': the browser's SDP offer.");
    };
    let client_sdp = if offer.trim_start().starts_with("v=") {
        STANDARD.encode(json!({"type": "offer", "sdp": offer}).to_string())
    } else {
        offer.trim().to_owned() // the samples' base64 JSON
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let mut avatar = json!({"character": text("character").unwrap_or("lisa").to_lowercase(), "customized": false});
    avatar["style"] = json!(text("style").unwrap_or("casual-sitting"));
    match body.get("background") {
        Some(Value::String(b)) if b.starts_with("http://") || b.starts_with("https://") => {
            avatar["video"] = json!({"background": {"image_url": b}});
        }
        Some(Value::String(b)) if !b.trim().is_empty() => avatar["video"] = json!({"background": {"color": b}}),
        Some(Value::Object(o)) => avatar["video"] = json!({"background": o}),
        _ => {}
    }
    let mut update = json!({"type": "session.update", "session": {
        "turn_detection": null, "modalities": ["text", "audio"], "avatar": avatar}});
    if let Some(voice) = text("voice") {
        update["session"]["voice"] = json!(voice);
    }
    let Some(slot) = state.runtime.admit_session() else {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "capacity",
            "The server is at its session limit; try again later.",
        );
    };
    let (to_session, from_api) = mpsc::channel::<ClientFrame<String>>(256);
    let (to_pump, mut from_session) = mpsc::channel::<ServerFrame>(1024);
    let frames_in = stream::unfold(from_api, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let frames_out = sink::unfold(to_pump, |tx, frame| async move { tx.send(frame).await.map(|()| tx) });
    let options =
        ConnectionOptions { dialect: Dialect::VoiceLive, model: "brazen-avatar".into(), ..Default::default() };
    tokio::spawn(connection::drive(frames_in, frames_out, slot, options));
    let _ = to_session.send(ClientFrame::Text(update.to_string())).await;
    // The configuration first: a bad character or background is the caller's error.
    let configured = tokio::time::timeout(CONNECT_WAIT, async {
        loop {
            let Some(ServerFrame::Text(text)) = from_session.recv().await else {
                return Err(json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "session_ended",
                    "The session ended at once.",
                ));
            };
            let event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match event["type"].as_str() {
                Some("session.updated") => return Ok(()),
                Some("error") => {
                    let message = event["error"]["message"].as_str().unwrap_or("The avatar settings were refused.");
                    return Err(json_error(StatusCode::BAD_REQUEST, "invalid_avatar", message));
                }
                _ => {}
            }
        }
    })
    .await;
    match configured {
        Ok(Ok(())) => {}
        Ok(Err(refused)) => return refused,
        Err(_) => {
            return json_error(
                StatusCode::GATEWAY_TIMEOUT,
                "no_answer",
                "The session did not take its settings in time.",
            );
        }
    }
    let (answer_tx, answer_rx) = oneshot::channel();
    let now = Instant::now();
    let session = Arc::new(Session {
        to_session,
        queue: Mutex::new(VecDeque::new()),
        speaking: Mutex::new(false),
        answer: Mutex::new(Some(answer_tx)),
        created: now,
        last_request: Mutex::new(now),
    });
    // The pump holds the session weakly: when the map lets go of it (disconnect, the sweep, a
    // failed connect), its channel closes and the session ends.
    tokio::spawn(pump(Arc::downgrade(&session), from_session));
    let connect = json!({"type": "session.avatar.connect", "client_sdp": client_sdp});
    let _ = session.to_session.send(ClientFrame::Text(connect.to_string())).await;
    let answer = match tokio::time::timeout(CONNECT_WAIT, answer_rx).await {
        Ok(Ok(Ok(sdp))) => sdp,
        Ok(Ok(Err(message))) => return json_error(StatusCode::BAD_REQUEST, "invalid_offer", &message),
        _ => {
            return json_error(
                StatusCode::GATEWAY_TIMEOUT,
                "no_answer",
                "The avatar did not answer the offer in time.",
            );
        }
    };
    let id = fresh_id(&state, "avatar");
    if let Ok(mut sessions) = state.avatar_api.sessions.lock() {
        sessions.insert(id.clone(), session);
    }
    tracing::info!(session = %id, "avatar API session connected");
    axum::Json(json!({"session_id": id, "sdp": answer})).into_response()
}

/// Reads the session's events: the offer's answer, and when each speech ends (then the next).
/// Ends with the session.
async fn pump(session: std::sync::Weak<Session>, mut events: mpsc::Receiver<ServerFrame>) {
    while let Some(ServerFrame::Text(text)) = events.recv().await {
        let Some(session) = session.upgrade() else { return };
        let Ok(event) = serde_json::from_str::<Value>(&text) else { continue };
        tracing::debug!("avatar API event: {}", event["type"]);
        match event["type"].as_str().unwrap_or_default() {
            "session.avatar.connecting" => {
                let answer = event["server_sdp"]
                    .as_str()
                    .map(crate::retail_api::plain_answer)
                    .unwrap_or_else(|| Err("The answer had no SDP.".into()));
                if let Some(waiter) = session.answer.lock().ok().and_then(|mut a| a.take()) {
                    let _ = waiter.send(answer);
                }
            }
            "error" => {
                let message = event["error"]["message"].as_str().unwrap_or("The avatar failed.").to_owned();
                // The configuration was accepted before the offer was sent, so an error while an
                // answer is awaited is the offer's.
                if let Some(waiter) = session.answer.lock().ok().and_then(|mut a| a.take()) {
                    let _ = waiter.send(Err(message));
                    continue;
                }
                tracing::warn!("avatar API session: {message}");
                // A speech the session refused: go on with the next one.
                if event["error"]["event_id"].as_str().is_some_and(|id| id.starts_with("speech_")) {
                    if let Ok(mut speaking) = session.speaking.lock() {
                        *speaking = false;
                    }
                    session.next();
                }
            }
            "response.done" => {
                if let Ok(mut speaking) = session.speaking.lock() {
                    *speaking = false;
                }
                session.next();
            }
            _ => {}
        }
    }
}

/// The words of an SSML document (the markup is not used by brazen's voices; `<break>` and
/// `<s>` / `<p>` ends become pauses).
pub fn ssml_text(ssml: &str) -> Result<String, String> {
    if !ssml.trim_start().starts_with('<') {
        return Err("'ssml' must be an SSML document (<speak …>…</speak>).".into());
    }
    let mut out = String::new();
    let mut rest = ssml;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('>').ok_or("The SSML has an unclosed tag.")? + start;
        let tag = rest[start + 1..end].trim().to_ascii_lowercase();
        if tag.starts_with("break") || tag == "/s" || tag == "/p" {
            out.push(' ');
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    let text = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() { Err("The SSML has no text to speak.".into()) } else { Ok(text) }
}

/// `POST /api/avatar/speak`.
pub async fn speak(
    State(state): State<Arc<AppState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (body, _, session) = match session_request(&state, &uri, &headers, &body) {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let mut notes = Vec::new();
    let text = match (body.get("text").and_then(Value::as_str), body.get("ssml").and_then(Value::as_str)) {
        (Some(t), None) => t.split_whitespace().collect::<Vec<_>>().join(" "),
        (None, Some(ssml)) => match ssml_text(ssml) {
            Ok(t) => {
                notes.push("brazen's voices speak the SSML's text; its voice, prosody and style markup is not used");
                t
            }
            Err(e) => return json_error(StatusCode::BAD_REQUEST, "invalid_ssml", &e),
        },
        (Some(_), Some(_)) => {
            return json_error(StatusCode::BAD_REQUEST, "invalid_body", "Give 'text' or 'ssml', not both.");
        }
        (None, None) => return json_error(StatusCode::BAD_REQUEST, "invalid_body", "The body needs 'text' or 'ssml'."),
    };
    if text.trim().is_empty() {
        return json_error(StatusCode::BAD_REQUEST, "empty_text", "There is nothing to speak.");
    }
    if text.len() > MAX_SPEAK {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text_too_long",
            &format!("One request speaks at most {MAX_SPEAK} bytes of text; send it in parts."),
        );
    }
    let id = fresh_id(&state, "speech");
    {
        let Ok(mut queue) = session.queue.lock() else {
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "The queue is unavailable.");
        };
        if queue.len() >= MAX_QUEUE {
            return json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "queue_full",
                &format!("{MAX_QUEUE} speeches are already waiting; wait or /stop."),
            );
        }
        queue.push_back((id.clone(), text));
    }
    session.next();
    (StatusCode::ACCEPTED, axum::Json(json!({"id": id, "status": "queued", "notes": notes}))).into_response()
}

/// `POST /api/avatar/stop`.
pub async fn stop(
    State(state): State<Arc<AppState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (_, id, session) = match session_request(&state, &uri, &headers, &body) {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let dropped = session.queue.lock().map(|mut q| std::mem::take(&mut *q).len()).unwrap_or(0);
    let _ = session.to_session.send(ClientFrame::Text(json!({"type": "response.cancel"}).to_string())).await;
    axum::Json(json!({"session_id": id, "stopped": true, "dropped": dropped})).into_response()
}

/// `POST /api/avatar/disconnect`.
pub async fn disconnect(
    State(state): State<Arc<AppState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (_, id, _) = match session_request(&state, &uri, &headers, &body) {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    if let Ok(mut sessions) = state.avatar_api.sessions.lock() {
        sessions.remove(&id); // its channel closes, and the session with it
    }
    axum::Json(json!({"session_id": id, "disconnected": true})).into_response()
}

/// `GET /api/avatar/speech-token`.
pub async fn speech_token(State(state): State<Arc<AppState>>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if let Err(refused) = admit(&state, &headers, &uri) {
        return refused;
    }
    // A token is minted with the server's key only, never with another token.
    if !state.authenticated(&headers, uri.query()) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A speech token is given for the server's API key only.",
        );
    }
    let bytes: [u8; 24] = rand::random(); // the thread's ChaCha generator, seeded by the OS
    let token = format!("bzt_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
    if let Ok(mut tokens) = state.avatar_api.tokens.lock() {
        tokens.insert(token.clone(), Instant::now() + TOKEN_LIFE);
    }
    axum::Json(json!({"token": token, "expires_in": TOKEN_LIFE.as_secs()})).into_response()
}

/// `GET /api/avatar/ice-token`: the ICE servers (brazen's STUN, and a configured TURN relay with
/// its credentials), in the shape of Azure's relay token and as `iceServers`.
pub async fn ice_token(State(state): State<Arc<AppState>>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if let Err(refused) = admit(&state, &headers, &uri) {
        return refused;
    }
    let servers = state.runtime.media.as_ref().map(|m| m.ice_servers()).unwrap_or_default();
    let urls: Vec<Value> = servers
        .iter()
        .flat_map(|s| match &s["urls"] {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        })
        .collect();
    let turn = servers.iter().find(|s| s.get("username").is_some());
    axum::Json(json!({
        "Urls": urls,
        "Username": turn.map(|t| t["username"].clone()).unwrap_or(json!("")),
        "Password": turn.map(|t| t["credential"].clone()).unwrap_or(json!("")),
        "iceServers": servers,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssml_gives_its_words() {
        let ssml = "<speak version='1.0' xml:lang='en-US'><voice name='en-US-AvaNeural'><prosody rate='+10%'>Fish &amp; chips.</prosody><break time='300ms'/>Done</voice></speak>";
        assert_eq!(ssml_text(ssml).unwrap(), "Fish & chips. Done");
        assert!(ssml_text("plain text").is_err());
        assert!(ssml_text("<speak><voice name='x'>").unwrap_err().contains("no text"));
        assert!(ssml_text("<speak>hi <unclosed").is_err());
    }
}
