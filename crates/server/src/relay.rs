//! `brazen serve --relay https://RESOURCE.services.ai.azure.com`: brazen as the server-side
//! proxy in front of Azure Voice Live. Browsers connect to brazen with brazen's own auth (its API
//! keys, or none on loopback) and never hold an Azure credential; for each session brazen opens
//! the upstream WebSocket with an api-key or an Entra ID token ([`brazen_azure::credential`],
//! refreshed 5 minutes before expiry, so a new session never starts with a stale token and a
//! running one is never dropped for it), then relays every event both ways.
//!
//! On the way it applies brazen's origin checks, keys and session limit (before the upstream is
//! opened), the per-session event rate limit (excess client events are dropped with one
//! `rate_limit_exceeded` error a second), and meters events by direction and type
//! (`brazen_relay_events_total`). The upstream's refusals become HTTP answers to the client's
//! upgrade (its 429 a 429 with its `Retry-After`; a refused credential a 502 that says so); a
//! text frame from upstream that is not a JSON event is replaced by an `error` event; when the
//! upstream closes, the client gets an `error` event saying so and the same close.

use crate::app::json_error;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use brazen_azure::credential::{COGNITIVE_SERVICES_SCOPE, Source, Tokens};
use brazen_engine::flood::{Admit, Flood};
use brazen_runtime::SessionSlot;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Voice Live's `api-version` when the client names none.
pub const API_VERSION: &str = "2025-10-01";

/// How long the upstream may take to accept a session.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The upstream WebSocket.
type Upstream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How brazen proves itself to the upstream.
enum Credential {
    /// An api-key header.
    Key(String),
    /// Entra ID tokens as the bearer.
    Entra(Arc<Tokens>),
}

/// The upstream Voice Live resource and the credential for it.
pub struct Relay {
    /// `wss://host` (from the configured `https://host`).
    base: String,
    credential: Credential,
    limits: brazen_engine::Limits,
}

impl Relay {
    /// The relay `url` names, with `api_key` (else `$AZURE_VOICELIVE_API_KEY`, else an Entra ID
    /// token from the environment's credential: client secret, managed identity, Azure CLI).
    pub fn new(url: &str, api_key: Option<String>, limits: brazen_engine::Limits) -> Result<Relay, String> {
        let parsed = websocket_base(url)?;
        let env_key = std::env::var("AZURE_VOICELIVE_API_KEY").ok().filter(|k| !k.trim().is_empty());
        let credential = match api_key.filter(|k| !k.trim().is_empty()).or(env_key) {
            Some(key) => Credential::Key(key),
            None => {
                let in_azure = std::env::var_os("BRAZEN_RELAY_IMDS").is_some();
                let source = Source::from_env(in_azure).ok_or(
                    "the relay needs a credential for Voice Live: relay_api_key (or AZURE_VOICELIVE_API_KEY), or an Entra ID identity: AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET, a managed identity (IDENTITY_ENDPOINT, or BRAZEN_RELAY_IMDS=1 on an Azure VM), or a signed-in Azure CLI",
                )?;
                tracing::info!("relay credential: {}", source.describe());
                Credential::Entra(Arc::new(Tokens::new(source, COGNITIVE_SERVICES_SCOPE)))
            }
        };
        Ok(Relay { base: parsed, credential, limits })
    }

    /// The upstream URL for a client's `path` and query: the same path, the client's parameters
    /// (`model`, `agent-id`, …) without its credentials, and an `api-version`.
    pub fn upstream_url(&self, path: &str, query: Option<&str>) -> String {
        let mut params: Vec<&str> = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let key = p.split('=').next().unwrap_or_default().to_ascii_lowercase();
                !matches!(key.as_str(), "api-key" | "access_token" | "authorization")
            })
            .collect();
        let version = format!("api-version={API_VERSION}");
        if !params.iter().any(|p| p.starts_with("api-version=")) {
            params.push(&version);
        }
        format!("{}{path}?{}", self.base, params.join("&"))
    }

    /// Opens the upstream session, or the HTTP answer to give the client instead.
    pub async fn connect(&self, path: &str, query: Option<&str>) -> Result<Upstream, Response> {
        let url = self.upstream_url(path, query);
        let mut request = url.as_str().into_client_request().map_err(|e| {
            json_error(StatusCode::BAD_GATEWAY, "relay_bad_url", &format!("The upstream URL {url} is not usable: {e}."))
        })?;
        let header = match &self.credential {
            Credential::Key(key) => ("api-key", key.clone()),
            Credential::Entra(tokens) => {
                let tokens = tokens.clone();
                let token = tokio::task::spawn_blocking(move || tokens.token())
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|t| t)
                    .map_err(|e| {
                        tracing::error!("relay: {e}");
                        json_error(
                            StatusCode::BAD_GATEWAY,
                            "relay_credential",
                            &format!("The relay has no token for Voice Live: {e}."),
                        )
                    })?;
                ("authorization", format!("Bearer {token}"))
            }
        };
        let value = header.1.parse().map_err(|_| {
            json_error(
                StatusCode::BAD_GATEWAY,
                "relay_credential",
                "The relay's credential is not a valid header value.",
            )
        })?;
        request.headers_mut().insert(header.0, value);
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request)).await;
        match connected {
            Err(_) => Err(json_error(
                StatusCode::GATEWAY_TIMEOUT,
                "relay_upstream_timeout",
                &format!("Voice Live did not accept the session within {} s.", CONNECT_TIMEOUT.as_secs()),
            )),
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(tungstenite::Error::Http(answer))) => {
                Err(refused(answer.status().as_u16(), answer.headers(), answer.body()))
            }
            Ok(Err(e)) => Err(json_error(
                StatusCode::BAD_GATEWAY,
                "relay_upstream_unreachable",
                &format!("Cannot reach Voice Live at {}: {e}.", self.base),
            )),
        }
    }
}

/// `https://host[/…]` (or `wss://`) as `wss://host`; `http://` becomes `ws://` (a local
/// stand-in).
fn websocket_base(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("relay {url:?} is not a URL (https://…)"))?;
    let ws = match scheme {
        "https" | "wss" => "wss",
        "http" | "ws" => "ws",
        _ => return Err(format!("relay {url:?} must start with https://")),
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("relay {url:?} has no host"));
    }
    Ok(format!("{ws}://{host}"))
}

/// The answer to the client when the upstream refused the session with `status`.
fn refused(status: u16, headers: &tungstenite::http::HeaderMap, body: &Option<Vec<u8>>) -> Response {
    let said = body.as_deref().map(String::from_utf8_lossy).unwrap_or_default().chars().take(300).collect::<String>();
    let said = if said.trim().is_empty() { String::new() } else { format!(": {}", said.trim()) };
    match status {
        429 => {
            let mut response = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "relay_upstream_rate_limited",
                &format!("Voice Live is rate limiting new sessions (429){said}; retry later."),
            );
            if let Some(wait) = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()) {
                response.headers_mut().insert("retry-after", wait);
            }
            response
        }
        401 | 403 => json_error(
            StatusCode::BAD_GATEWAY,
            "relay_upstream_refused_credential",
            &format!(
                "Voice Live refused the relay's credential ({status}){said}. The server's operator must fix its key or identity."
            ),
        ),
        _ => json_error(
            StatusCode::BAD_GATEWAY,
            "relay_upstream_refused",
            &format!("Voice Live refused the session ({status}){said}."),
        ),
    }
}

/// Accepts the client's upgrade and relays between it and `upstream`.
pub fn upgrade(
    upgrade: WebSocketUpgrade,
    slot: SessionSlot,
    upstream: Upstream,
    relay: Arc<Relay>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Response {
    upgrade
        .max_message_size(brazen_runtime::connection::HARD_FRAME_LIMIT)
        .on_upgrade(move |client| pump(client, upstream, slot, relay, metrics))
        .into_response()
}

/// The `type` of an event, if it is a JSON event.
fn event_type(text: &str) -> Option<String> {
    serde_json::from_str::<Value>(text).ok()?.get("type")?.as_str().map(str::to_owned)
}

/// Voice Live client events brazen itself does not take but relays (its own are
/// [`brazen_protocol::client::CLIENT_EVENT_TYPES`]). Only these and brazen's name a metric
/// series; any other client type is counted as `other`, so a client cannot make series without
/// end.
const RELAY_ONLY_CLIENT_EVENTS: &[&str] = &["transcription_session.update", "mcp_approval_response"];

/// The most distinct upstream event types given a metric series of their own.
const MAX_UPSTREAM_TYPES: usize = 128;

/// The metric label of an event type: itself when known (client) or short, plain and among the
/// first [`MAX_UPSTREAM_TYPES`] seen (upstream), else `other`.
fn label(direction: &str, kind: &str) -> String {
    static SEEN: std::sync::Mutex<Option<std::collections::HashSet<String>>> = std::sync::Mutex::new(None);
    if direction == "client" {
        let known =
            brazen_protocol::client::CLIENT_EVENT_TYPES.contains(&kind) || RELAY_ONLY_CLIENT_EVENTS.contains(&kind);
        return if known { kind.to_owned() } else { "other".to_owned() };
    }
    let plain =
        kind.len() <= 64 && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_');
    let Ok(mut seen) = SEEN.lock() else { return "other".to_owned() };
    let seen = seen.get_or_insert_with(Default::default);
    if plain && (seen.contains(kind) || seen.len() < MAX_UPSTREAM_TYPES) {
        seen.insert(kind.to_owned());
        kind.to_owned()
    } else {
        "other".to_owned()
    }
}

/// An `error` event from the relay itself.
fn relay_error(code: &str, message: &str) -> Message {
    Message::Text(json!({"type": "error", "event_id": format!("event_relay_{}", next_event_number()), "error": {"type": "server_error", "code": code, "message": message}}).to_string().into())
}

/// A number for the relay's own event ids.
fn next_event_number() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

async fn pump(
    client: WebSocket,
    upstream: Upstream,
    slot: SessionSlot,
    relay: Arc<Relay>,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut closing = std::pin::pin!(slot.runtime().closing());
    let _slot = slot;
    let started = Instant::now();
    let (mut client_tx, mut client_rx) = client.split();
    let (mut up_tx, mut up_rx) = upstream.split();
    let mut flood = Flood::new(&relay.limits, Instant::now());
    let (mut sent, mut received) = (0u64, 0u64);
    let count = |direction: &str, kind: &str| {
        metrics.relay_events_total.with_label_values(&[direction, &label(direction, kind)]).inc();
    };
    loop {
        tokio::select! {
            // The process shuts down: the client is told, both sockets are closed.
            () = &mut closing => {
                client_tx.send(relay_error("server_shutting_down", "The relay is shutting down; reconnect to continue.")).await.ok();
                client_tx.send(Message::Close(Some(CloseFrame { code: 1001, reason: "The server is shutting down.".into() }))).await.ok();
                up_tx.send(tungstenite::Message::Close(None)).await.ok();
                break;
            }
            from_client = client_rx.next() => {
                let message = match from_client {
                    Some(Ok(m)) => m,
                    Some(Err(_)) | None => { up_tx.send(tungstenite::Message::Close(None)).await.ok(); break; }
                };
                let out = match message {
                    Message::Text(text) => {
                        match flood.admit(Instant::now()) {
                            Admit::Yes => {}
                            Admit::Drop => continue,
                            Admit::DropWithError(e) => {
                                let event = json!({"type": "error", "error": e.to_json()});
                                client_tx.send(Message::Text(event.to_string().into())).await.ok();
                                continue;
                            }
                        }
                        count("client", event_type(&text).as_deref().unwrap_or("other"));
                        sent += 1;
                        tungstenite::Message::Text(text.as_str().into())
                    }
                    Message::Binary(b) => {
                        if flood.admit(Instant::now()) != Admit::Yes {
                            continue;
                        }
                        count("client", "binary");
                        tungstenite::Message::Binary(b)
                    }
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Close(frame) => {
                        let close = frame.map(|f| tungstenite::protocol::CloseFrame { code: f.code.into(), reason: f.reason.as_str().into() });
                        up_tx.send(tungstenite::Message::Close(close)).await.ok();
                        break;
                    }
                };
                if up_tx.send(out).await.is_err() {
                    client_tx.send(relay_error("relay_upstream_closed", "The connection to Voice Live broke.")).await.ok();
                    client_tx.send(Message::Close(Some(CloseFrame { code: 1011, reason: "upstream gone".into() }))).await.ok();
                    break;
                }
            }
            from_upstream = up_rx.next() => {
                let message = match from_upstream {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        tracing::warn!("relay: the upstream connection failed: {e}");
                        client_tx.send(relay_error("relay_upstream_closed", &format!("The connection to Voice Live failed: {e}."))).await.ok();
                        client_tx.send(Message::Close(Some(CloseFrame { code: 1011, reason: "upstream failed".into() }))).await.ok();
                        break;
                    }
                    None => {
                        client_tx.send(relay_error("relay_upstream_closed", "Voice Live closed the connection.")).await.ok();
                        client_tx.send(Message::Close(Some(CloseFrame { code: 1011, reason: "upstream closed".into() }))).await.ok();
                        break;
                    }
                };
                let out = match message {
                    tungstenite::Message::Text(text) => match event_type(&text) {
                        Some(kind) => {
                            count("upstream", &kind);
                            received += 1;
                            Message::Text(text.as_str().into())
                        }
                        None => {
                            count("upstream", "malformed");
                            let shown: String = text.chars().take(120).collect();
                            tracing::warn!("relay: Voice Live sent a frame that is not a JSON event: {shown:?}");
                            relay_error("relay_upstream_malformed_event", &format!("Voice Live sent a frame that is not a JSON event; it was dropped: {shown:?}"))
                        }
                    },
                    tungstenite::Message::Binary(b) => Message::Binary(b),
                    tungstenite::Message::Close(frame) => {
                        let (code, reason) = frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1000, String::new()));
                        if code != 1000 {
                            let message = format!("Voice Live closed the session ({code}{}).", if reason.is_empty() { String::new() } else { format!(": {reason}") });
                            client_tx.send(relay_error("relay_upstream_closed", &message)).await.ok();
                        }
                        client_tx.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await.ok();
                        break;
                    }
                    _ => continue,
                };
                if client_tx.send(out).await.is_err() {
                    up_tx.send(tungstenite::Message::Close(None)).await.ok();
                    break;
                }
            }
        }
    }
    tracing::info!(
        "relay session ended after {:.1} s: {sent} events up, {received} down",
        started.elapsed().as_secs_f64()
    );
}
