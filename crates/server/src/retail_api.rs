//! The retail sample's own backend API (`../shared/reference/SEED_APPS.md` §2), so its React
//! frontend runs against brazen alone: `POST /sessions`, `/sessions/{id}/avatar-offer` (a plain
//! SDP offer in, a plain answer out), `/sessions/{id}/text`, `/sessions/{id}/commit-audio`, and
//! the page's socket `WS /ws/sessions/{id}` (float32 or PCM16 microphone chunks in; the
//! sample's `session_ready`, `assistant_audio_delta`, transcript, `function_call_completed`,
//! `error` and `event` messages out).
//!
//! Each session is an ordinary Voice Live session of the runtime, driven over channels: the
//! page's messages become protocol events and the session's events become the page's messages
//! (a pump task reads them, answers a waiting avatar offer, and forwards the rest to the page's
//! socket when one is attached). The session lives until the server stops, or until no page has
//! been attached to it for [`IDLE`] (a dev page makes two sessions and uses one).

use crate::app::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use brazen_protocol::Dialect;
use brazen_runtime::connection::{self, ClientFrame, ConnectionOptions, ServerFrame};
use futures_util::{SinkExt, StreamExt, sink, stream};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a session may go without a page attached before it is closed.
pub const IDLE: Duration = Duration::from_secs(15 * 60);
/// How long an avatar offer waits for its answer (the sample's own limit).
const OFFER_WAIT: Duration = Duration::from_secs(20);
/// Messages kept for a page while none is attached (older ones are dropped).
const DETACHED_BACKLOG: usize = 64;
/// The close code the sample uses for an unknown session.
const UNKNOWN_SESSION: u16 = 4404;
/// Largest text a page may send (`/text`, `user_text`).
const MAX_TEXT: usize = 4_000;

/// The sessions of the retail API, by id.
#[derive(Default)]
pub struct RetailSessions {
    sessions: Mutex<HashMap<String, Arc<Shared>>>,
    ids: AtomicU64,
}

/// Where the avatar's plain SDP answer (or the reason there is none) goes.
type AnswerWaiter = oneshot::Sender<Result<String, String>>;

/// What the routes, the page's socket and the pump share about one session.
struct Shared {
    id: String,
    /// Protocol events into the session.
    to_session: mpsc::Sender<ClientFrame<String>>,
    page: Mutex<Page>,
    /// The avatar offer waiting for its answer: the connect event's id and the waiter.
    offer: Mutex<Option<(String, AnswerWaiter)>>,
    /// The session object of the last `session.created` / `session.updated`.
    session: Mutex<Option<Value>>,
    /// `call_id` → tool name, for `function_call_completed`.
    calls: Mutex<HashMap<String, String>>,
}

/// The page's end: its socket's message queue when attached, else a short backlog.
struct Page {
    tx: Option<mpsc::UnboundedSender<String>>,
    backlog: Vec<String>,
    /// When the last page left (or the session started).
    detached_since: Option<Instant>,
}

impl RetailSessions {
    fn get(&self, id: &str) -> Option<Arc<Shared>> {
        self.sessions.lock().ok()?.get(id).cloned()
    }

    /// Closes sessions no page has been attached to for [`IDLE`].
    pub fn sweep(&self) {
        let Ok(mut sessions) = self.sessions.lock() else { return };
        sessions.retain(|_, s| {
            let idle = s.page.lock().map(|p| p.detached_since.is_some_and(|t| t.elapsed() > IDLE)).unwrap_or(true);
            if idle {
                tracing::info!(session = %s.id, "retail API session closed: no page for {} min", IDLE.as_secs() / 60);
            }
            !idle
        });
    }
}

/// `{"detail": …}` with `status`, the sample's error shape.
fn detail(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(Detail { detail: message.to_owned() })).into_response()
}

fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Session not found")
}

/// Refuses a request the server's key or origin rules do not admit.
#[allow(clippy::result_large_err)] // the refusal is the response itself, made once
fn admit(state: &AppState, headers: &HeaderMap, query: Option<&str>) -> Result<(), Response> {
    if let Err(message) = crate::origin::check_origin(&state.config, headers) {
        return Err(detail(StatusCode::FORBIDDEN, &message));
    }
    if !state.may_use_sessions(headers, query) {
        return Err(detail(StatusCode::UNAUTHORIZED, "Missing or invalid API key."));
    }
    Ok(())
}

/// The session `id` for an admitted request; `Err` is the refusal or the sample's 404.
#[allow(clippy::result_large_err)] // the refusal is the response itself, made once
fn session_for(state: &AppState, id: &str, headers: &HeaderMap, query: Option<&str>) -> Result<Arc<Shared>, Response> {
    admit(state, headers, query)?;
    state.retail.get(id).ok_or_else(not_found)
}

/// Reads a JSON object body of type `T` (any content type; empty is `{}`); `Err` is the 422 to
/// send, naming what is wrong.
#[allow(clippy::result_large_err)] // the refusal is the response itself, made once
fn body_of<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => serde_json::from_value(value)
            .map_err(|e| detail(StatusCode::UNPROCESSABLE_ENTITY, &format!("The body is not as expected: {e}"))),
        Ok(_) => Err(detail(StatusCode::UNPROCESSABLE_ENTITY, "The body must be a JSON object.")),
        Err(e) => Err(detail(StatusCode::UNPROCESSABLE_ENTITY, &format!("The body is not valid JSON: {e}"))),
    }
}

/// The body of `POST /sessions` (optional; the sample's variant sends it).
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct CreateBody {
    /// Accepted (a boolean) and not needed: the avatar's video starts only when the page sends
    /// an offer.
    #[serde(default)]
    pub avatar_enabled: Option<bool>,
}

/// `{"session_id"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Created {
    /// The new session (a UUID).
    pub session_id: String,
}

/// An SDP offer or answer, as plain SDP text.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Sdp {
    /// `v=0…`.
    pub sdp: String,
}

/// A typed message.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct Text {
    /// What the customer wrote (1–4,000 characters).
    pub text: String,
}

/// `{"status": "queued" | "committed"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    /// What happened.
    pub status: &'static str,
}

/// The sample's error shape, `{"detail"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Detail {
    /// What went wrong.
    pub detail: String,
}

/// `POST /sessions` (no body, `{}` or `{"avatar_enabled": bool}`) → `{"session_id"}`.
#[utoipa::path(post, path = "/sessions", request_body(content = Option<CreateBody>),
    responses((status = 200, body = Created), (status = 422, body = Detail), (status = 503, body = Detail)))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    crate::app::Peer(peer): crate::app::Peer,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = admit(&state, &headers, uri.query()) {
        return refused;
    }
    if let Err(refused) = state.admit_connection(peer, state.key_tag_of(&headers, uri.query()).as_deref()) {
        return refused;
    }
    let asked = match body_of::<CreateBody>(&body) {
        Ok(b) => b,
        Err(bad) => return bad,
    };
    let Some(slot) = state.runtime.admit_session() else {
        return detail(StatusCode::SERVICE_UNAVAILABLE, "The server is at its session limit; try again later.");
    };
    let sessions = &state.retail;
    let n = sessions.ids.fetch_add(1, Ordering::Relaxed);
    let id = uuid_like(n);
    let (to_session, from_page) = mpsc::channel::<ClientFrame<String>>(256);
    let (to_pump, from_session) = mpsc::channel::<ServerFrame>(256);
    let shared = Arc::new(Shared {
        id: id.clone(),
        to_session,
        page: Mutex::new(Page { tx: None, backlog: Vec::new(), detached_since: Some(Instant::now()) }),
        offer: Mutex::new(None),
        session: Mutex::new(None),
        calls: Mutex::new(HashMap::new()),
    });
    let frames_in = stream::unfold(from_page, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let frames_out = sink::unfold(to_pump, |tx, frame| async move { tx.send(frame).await.map(|()| tx) });
    let options = ConnectionOptions { dialect: Dialect::VoiceLive, model: "brazen".into(), ..Default::default() };
    tokio::spawn(connection::drive(frames_in, frames_out, slot, options));
    tokio::spawn(pump(shared.clone(), from_session, state.clone()));
    // What the sample's backend configures upstream: 24 kHz PCM in, the avatar at 720p (its
    // video starts only when the page sends an offer). The agent sets the rest.
    let setup = json!({"type": "session.update", "session": {
        "input_audio_sampling_rate": 24000,
        "avatar": {"character": "lisa", "customized": false,
            "video": {"resolution": {"width": 1280, "height": 720}, "bitrate": 2000000}},
    }});
    let _ = shared.to_session.send(ClientFrame::Text(setup.to_string())).await;
    if let Ok(mut map) = sessions.sessions.lock() {
        map.insert(id.clone(), shared);
    }
    tracing::info!(session = %id, avatar_enabled = ?asked.avatar_enabled, "retail API session created");
    axum::Json(Created { session_id: id }).into_response()
}

/// A fresh id in the UUID text form (random, with a counter mixed in).
fn uuid_like(n: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    let a = h.finish();
    let b = std::collections::hash_map::RandomState::new().hash_one(n ^ 0x9e37_79b9_7f4a_7c15);
    let x = (u128::from(a) << 64) | u128::from(b);
    let hex = format!("{x:032x}");
    format!("{}-{}-4{}-a{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

/// `POST /sessions/{id}/avatar-offer` `{"sdp": plain offer}` → `{"sdp": plain answer}`.
#[utoipa::path(post, path = "/sessions/{id}/avatar-offer", params(("id" = String, Path)), request_body = Sdp,
    responses((status = 200, body = Sdp), (status = 400, body = Detail, description = "the offer was refused"),
        (status = 404, body = Detail), (status = 422, body = Detail), (status = 504, body = Detail)))]
pub async fn avatar_offer(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let shared = match session_for(&state, &id, &headers, uri.query()) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let offer = match body_of::<Sdp>(&body) {
        Ok(b) => b,
        Err(bad) => return bad,
    };
    let sdp = offer.sdp.as_str();
    if sdp.trim().is_empty() {
        return detail(StatusCode::UNPROCESSABLE_ENTITY, "'sdp' must be the offer's SDP text.");
    }
    let (tx, rx) = oneshot::channel();
    let event_id = format!("avatar_offer_{}", state.retail.ids.fetch_add(1, Ordering::Relaxed));
    if let Ok(mut offer) = shared.offer.lock() {
        if offer.as_ref().is_some_and(|(_, waiter)| !waiter.is_closed()) {
            return detail(StatusCode::CONFLICT, "An avatar offer of this session is already being answered.");
        }
        *offer = Some((event_id.clone(), tx));
    }
    let connect = json!({"type": "session.avatar.connect", "event_id": event_id, "client_sdp": sdp,
        "rtc_configuration": {"bundle_policy": "max-bundle"}});
    if shared.to_session.send(ClientFrame::Text(connect.to_string())).await.is_err() {
        return not_found();
    }
    match tokio::time::timeout(OFFER_WAIT, rx).await {
        Ok(Ok(Ok(answer))) => axum::Json(Sdp { sdp: answer }).into_response(),
        Ok(Ok(Err(message))) => detail(StatusCode::BAD_REQUEST, &message),
        Ok(Err(_)) => detail(StatusCode::GONE, "The session ended before the avatar answered."),
        Err(_) => detail(StatusCode::GATEWAY_TIMEOUT, "The avatar did not answer within 20 s."),
    }
}

/// `POST /sessions/{id}/text` `{"text"}` → `{"status": "queued"}`: a user message and a reply.
#[utoipa::path(post, path = "/sessions/{id}/text", params(("id" = String, Path)), request_body = Text,
    responses((status = 200, body = Status), (status = 404, body = Detail), (status = 422, body = Detail)))]
pub async fn text(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let shared = match session_for(&state, &id, &headers, uri.query()) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let Text { text } = match body_of::<Text>(&body) {
        Ok(b) => b,
        Err(bad) => return bad,
    };
    let text = text.as_str();
    if let Err(message) = check_text(text) {
        return detail(StatusCode::UNPROCESSABLE_ENTITY, &message);
    }
    for event in user_text(text) {
        if shared.to_session.send(ClientFrame::Text(event)).await.is_err() {
            return not_found();
        }
    }
    axum::Json(Status { status: "queued" }).into_response()
}

/// `POST /sessions/{id}/commit-audio` → `{"status": "committed"}`.
#[utoipa::path(post, path = "/sessions/{id}/commit-audio", params(("id" = String, Path)),
    responses((status = 200, body = Status), (status = 404, body = Detail)))]
pub async fn commit_audio(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let shared = match session_for(&state, &id, &headers, uri.query()) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let commit = json!({"type": "input_audio_buffer.commit"}).to_string();
    if shared.to_session.send(ClientFrame::Text(commit)).await.is_err() {
        return not_found();
    }
    axum::Json(Status { status: "committed" }).into_response()
}

fn check_text(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("'text' is empty.".into());
    }
    if text.chars().count() > MAX_TEXT {
        return Err(format!("'text' is longer than {MAX_TEXT} characters."));
    }
    Ok(())
}

/// The events for a typed user message and the reply to it.
fn user_text(text: &str) -> [String; 2] {
    [
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]}})
        .to_string(),
        json!({"type": "response.create", "response": {"modalities": ["text", "audio"]}}).to_string(),
    ]
}

/// `WS /ws/sessions/{id}`: the page's socket (a WebSocket upgrade; its messages are in
/// docs/agents.md).
#[utoipa::path(get, path = "/ws/sessions/{id}", params(("id" = String, Path)),
    responses((status = 101, description = "the page's socket; an unknown session is closed with 4404")))]
pub async fn socket(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(refused) = admit(&state, &headers, uri.query()) {
        return refused;
    }
    let shared = state.retail.get(&id);
    let ice = state.runtime.media.as_ref().map(|m| m.ice_servers()).unwrap_or_default();
    upgrade.max_message_size(4 << 20).on_upgrade(move |socket| async move {
        match shared {
            Some(shared) => serve_page(socket, shared, ice).await,
            None => {
                let mut socket = socket;
                let close = CloseFrame { code: UNKNOWN_SESSION, reason: "Session not found".into() };
                let _ = socket.send(Message::Close(Some(close))).await;
                // The closing handshake: wait (briefly) for the page's own close frame.
                let _ = tokio::time::timeout(Duration::from_secs(5), async { while socket.recv().await.is_some() {} })
                    .await;
            }
        }
    })
}

/// Serves one attached page until it leaves (a newer page of the same session replaces it).
async fn serve_page(socket: WebSocket, shared: Arc<Shared>, ice_servers: Vec<Value>) {
    let (mut sink, mut messages) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    // Ready first, then the session as it stands with the ICE servers the avatar should use
    // (the sample's page missed the upstream session.updated and fell back to public STUN).
    let _ = tx.send(json!({"type": "session_ready", "session_id": shared.id}).to_string());
    let mut session = shared.session.lock().ok().and_then(|s| s.clone()).unwrap_or_else(|| json!({}));
    if let Some(obj) = session.as_object_mut() {
        let avatar = obj.entry("avatar").or_insert_with(|| json!({}));
        if let Some(avatar) = avatar.as_object_mut()
            && avatar.get("ice_servers").is_none_or(|v| v.as_array().is_none_or(Vec::is_empty))
        {
            avatar.insert("ice_servers".into(), Value::Array(ice_servers));
        }
    }
    let _ = tx.send(json!({"type": "event", "payload": {"type": "session.updated", "session": session}}).to_string());
    if let Ok(mut page) = shared.page.lock() {
        for message in page.backlog.drain(..) {
            let _ = tx.send(message);
        }
        page.tx = Some(tx.clone());
        page.detached_since = None;
    }
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(text) => if sink.send(Message::Text(text.into())).await.is_err() { break },
                None => break, // replaced by a newer page
            },
            message = messages.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    match page_message(&text) {
                        Ok(events) => {
                            for event in events {
                                if shared.to_session.send(ClientFrame::Text(event)).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Err(message) => {
                            let _ = tx.send(json!({"type": "error", "payload": {"message": message}}).to_string());
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let message = "Send JSON text messages (audio_chunk, user_text, commit_audio, clear_audio, request_response).";
                    let _ = tx.send(json!({"type": "error", "payload": {"message": message}}).to_string());
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
        }
    }
    if let Ok(mut page) = shared.page.lock()
        && page.tx.as_ref().is_some_and(|t| t.same_channel(&tx))
    {
        page.tx = None;
        page.detached_since = Some(Instant::now());
    }
}

/// The protocol events for one message of the page; `Err` says what was wrong.
fn page_message(text: &str) -> Result<Vec<String>, String> {
    let message: Value = serde_json::from_str(text).map_err(|e| format!("The message is not valid JSON: {e}"))?;
    let kind = message.get("type").and_then(Value::as_str).ok_or("The message has no 'type'.")?;
    let event = |v: Value| v.to_string();
    Ok(match kind {
        "audio_chunk" => {
            let data = message.get("data").and_then(Value::as_str).ok_or("'audio_chunk' needs 'data' (base64).")?;
            let bytes = STANDARD.decode(data).map_err(|_| "'data' is not valid base64.")?;
            let encoding = message.get("encoding").and_then(Value::as_str).unwrap_or("pcm16");
            let pcm = if encoding == "float32" {
                if bytes.len() % 4 != 0 {
                    return Err(format!(
                        "float32 audio must be a whole number of 4-byte samples; got {} bytes.",
                        bytes.len()
                    ));
                }
                float32_to_pcm16(&bytes)
            } else {
                if bytes.len() % 2 != 0 {
                    return Err(format!(
                        "PCM16 audio must be a whole number of 2-byte samples; got {} bytes.",
                        bytes.len()
                    ));
                }
                bytes
            };
            if pcm.is_empty() {
                return Ok(Vec::new());
            }
            vec![event(json!({"type": "input_audio_buffer.append", "audio": STANDARD.encode(pcm)}))]
        }
        "commit_audio" => vec![event(json!({"type": "input_audio_buffer.commit"}))],
        "clear_audio" => vec![event(json!({"type": "input_audio_buffer.clear"}))],
        "request_response" => vec![event(json!({"type": "response.create"}))],
        "user_text" => {
            let text = message.get("text").and_then(Value::as_str).ok_or("'user_text' needs 'text'.")?;
            check_text(text)?;
            user_text(text).to_vec()
        }
        other => {
            let other: String = other.chars().take(60).collect();
            return Err(format!(
                "Unknown message type '{other}': expected audio_chunk, user_text, commit_audio, clear_audio or request_response."
            ));
        }
    })
}

/// Little-endian float32 samples in [-1, 1] → little-endian PCM16 (clipped; NaN is silence).
fn float32_to_pcm16(bytes: &[u8]) -> Vec<u8> {
    bytes
        .chunks_exact(4)
        .flat_map(|c| {
            let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            let x = if x.is_nan() { 0.0 } else { x.clamp(-1.0, 1.0) };
            ((x * 32_767.0).round() as i16).to_le_bytes()
        })
        .collect()
}

/// Reads the session's events until it ends: answers a waiting avatar offer and sends the
/// page the sample's messages.
async fn pump(shared: Arc<Shared>, mut events: mpsc::Receiver<ServerFrame>, state: Arc<AppState>) {
    while let Some(frame) = events.recv().await {
        let ServerFrame::Text(text) = frame else { break };
        let Ok(event) = serde_json::from_str::<Value>(&text) else { continue };
        for message in page_messages(&shared, event) {
            send_page(&shared, message);
        }
    }
    if let Ok(mut sessions) = state.retail.sessions.lock() {
        sessions.remove(&shared.id);
    }
    if let Ok(mut page) = shared.page.lock() {
        page.tx = None;
    }
}

fn send_page(shared: &Shared, message: Value) {
    let Ok(mut page) = shared.page.lock() else { return };
    let text = message.to_string();
    match &page.tx {
        Some(tx) => {
            let _ = tx.send(text);
        }
        // Audio for no one is not kept: the page would play it late.
        None if message["type"] == "assistant_audio_delta" => {}
        None => {
            if page.backlog.len() == DETACHED_BACKLOG {
                page.backlog.remove(0);
            }
            page.backlog.push(text);
        }
    }
}

/// The page's messages for one session event (and the avatar answer it may carry).
fn page_messages(shared: &Shared, event: Value) -> Vec<Value> {
    let kind = event.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let str_of = |k: &str| event.get(k).cloned().unwrap_or(Value::Null);
    match kind.as_str() {
        "response.audio.delta" => vec![json!({"type": "assistant_audio_delta", "delta": str_of("delta")})],
        "response.audio_transcript.delta" | "response.text.delta" => {
            vec![json!({"type": "assistant_transcript_delta", "delta": str_of("delta"), "item_id": str_of("item_id")})]
        }
        "response.audio_transcript.done" => vec![
            json!({"type": "assistant_transcript_done", "transcript": str_of("transcript"), "item_id": str_of("item_id")}),
        ],
        "response.text.done" => {
            vec![
                json!({"type": "assistant_transcript_done", "transcript": str_of("text"), "item_id": str_of("item_id")}),
            ]
        }
        "conversation.item.input_audio_transcription.completed" => vec![
            json!({"type": "user_transcript_completed", "transcript": str_of("transcript"), "item_id": str_of("item_id")}),
        ],
        "input_audio_buffer.speech_started" => vec![json!({"type": "speech_started"})],
        "input_audio_buffer.speech_stopped" => vec![json!({"type": "speech_stopped"})],
        "input_audio_buffer.committed" => vec![json!({"type": "input_audio_committed", "item_id": str_of("item_id")})],
        "response.audio.done" => vec![json!({"type": "assistant_audio_done"})],
        "response.done" => {
            let status = event.pointer("/response/status").cloned().unwrap_or(Value::Null);
            vec![json!({"type": "response_status", "status": status}), json!({"type": "event", "payload": event})]
        }
        "error" => {
            let event_id = event.pointer("/error/event_id").and_then(Value::as_str);
            if let Some(id) = event_id
                && let Some(waiter) = take_offer(shared, id)
            {
                let message = event.pointer("/error/message").and_then(Value::as_str).unwrap_or("The avatar failed.");
                let _ = waiter.send(Err(message.to_owned()));
            }
            vec![json!({"type": "error", "payload": event})]
        }
        "session.avatar.connecting" => {
            if let Some(waiter) = shared.offer.lock().ok().and_then(|mut o| o.take()).map(|(_, w)| w) {
                let answer = event.get("server_sdp").and_then(Value::as_str).map(plain_answer);
                let _ = waiter.send(answer.unwrap_or_else(|| Err("The avatar's answer had no SDP.".into())));
            }
            vec![json!({"type": "event", "payload": event})]
        }
        "session.created" | "session.updated" => {
            if let Ok(mut session) = shared.session.lock() {
                *session = event.get("session").cloned();
            }
            vec![json!({"type": "event", "payload": event})]
        }
        "conversation.item.created" | "conversation.item.added" => {
            let mut out = Vec::new();
            match event.pointer("/item/type").and_then(Value::as_str) {
                Some("function_call") => {
                    if let (Some(call_id), Some(name)) = (
                        event.pointer("/item/call_id").and_then(Value::as_str),
                        event.pointer("/item/name").and_then(Value::as_str),
                    ) && let Ok(mut calls) = shared.calls.lock()
                    {
                        calls.insert(call_id.to_owned(), name.to_owned());
                    }
                }
                Some("function_call_output") => {
                    let name = event
                        .pointer("/item/call_id")
                        .and_then(Value::as_str)
                        .and_then(|id| shared.calls.lock().ok()?.remove(id));
                    if let Some(name) = name {
                        out.push(json!({"type": "function_call_completed", "name": name}));
                    }
                }
                _ => {}
            }
            out.push(json!({"type": "event", "payload": event}));
            out
        }
        _ => vec![json!({"type": "event", "payload": event})],
    }
}

fn take_offer(shared: &Shared, event_id: &str) -> Option<AnswerWaiter> {
    let mut offer = shared.offer.lock().ok()?;
    if offer.as_ref().is_some_and(|(id, _)| id == event_id) { offer.take().map(|(_, w)| w) } else { None }
}

/// The plain SDP of a `server_sdp` (base64 of `{"type": "answer", "sdp"}`, that JSON, or SDP).
pub(crate) fn plain_answer(server_sdp: &str) -> Result<String, String> {
    let text = if server_sdp.trim_start().starts_with("v=") || server_sdp.trim_start().starts_with('{') {
        server_sdp.to_owned()
    } else {
        let bytes = STANDARD.decode(server_sdp.trim()).map_err(|_| "The avatar's answer is not base64.".to_owned())?;
        String::from_utf8(bytes).map_err(|_| "The avatar's answer is not text.".to_owned())?
    };
    if text.trim_start().starts_with('{') {
        let value: Value = serde_json::from_str(&text).map_err(|e| format!("The avatar's answer is not JSON: {e}"))?;
        return value.get("sdp").and_then(Value::as_str).map(str::to_owned).ok_or("The answer has no 'sdp'.".into());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float32_chunks_become_pcm16_and_bad_chunks_are_named() {
        let samples: Vec<u8> = [0.0f32, 1.0, -1.0, 0.5, 2.0, f32::NAN].iter().flat_map(|x| x.to_le_bytes()).collect();
        let events = page_message(
            &json!({"type": "audio_chunk", "data": STANDARD.encode(&samples), "encoding": "float32"}).to_string(),
        )
        .unwrap();
        let event: Value = serde_json::from_str(&events[0]).unwrap();
        let pcm = STANDARD.decode(event["audio"].as_str().unwrap()).unwrap();
        let values: Vec<i16> = pcm.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect();
        assert_eq!(values, [0, 32_767, -32_767, 16_384, 32_767, 0]);
        let e = page_message(
            &json!({"type": "audio_chunk", "data": STANDARD.encode([0u8; 6]), "encoding": "float32"}).to_string(),
        )
        .unwrap_err();
        assert!(e.contains("4-byte"), "{e}");
        assert!(page_message(r#"{"type":"audio_chunk","data":"!!"}"#).unwrap_err().contains("base64"));
        assert!(page_message(r#"{"type":"dance"}"#).unwrap_err().contains("Unknown message type 'dance'"));
        assert!(page_message("not json").is_err());
        let pcm16 =
            page_message(&json!({"type": "audio_chunk", "data": STANDARD.encode([1u8, 0, 2, 0])}).to_string()).unwrap();
        assert!(pcm16[0].contains("input_audio_buffer.append"));
    }

    #[test]
    fn answers_are_read_in_every_shape() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n";
        let b64 = STANDARD.encode(json!({"type": "answer", "sdp": sdp}).to_string());
        assert_eq!(plain_answer(&b64).unwrap(), sdp);
        assert_eq!(plain_answer(sdp).unwrap(), sdp);
        assert!(plain_answer("%%%").is_err());
    }

    #[test]
    fn ids_look_like_uuids_and_differ() {
        let (a, b) = (uuid_like(1), uuid_like(1));
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
