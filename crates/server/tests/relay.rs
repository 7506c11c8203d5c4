//! `brazen serve --relay`: brazen as the server-side proxy in front of Voice Live, against a
//! stand-in Voice Live (a WebSocket that wants a bearer token) and a stand-in Entra ID token
//! endpoint, both written from the published formats. Tokens expire and are refreshed while a
//! session runs on; the upstream's malformed frames, disconnects and 429s reach the client as
//! clear errors; the client's own key never travels upstream.

use axum::extract::ws::{Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::{Server, Ws, send};

/// How long the stand-in accepts a token after issuing it; it says the token lasts 302 s, so
/// brazen (which refreshes 300 s before expiry) takes a new one after 2 s.
const VALID: Duration = Duration::from_millis(2_500);

#[derive(Clone, Default)]
struct Azure {
    issued: Arc<Mutex<HashMap<String, Instant>>>,
    token_requests: Arc<Mutex<Vec<String>>>,
    upstream_queries: Arc<Mutex<Vec<String>>>,
}

async fn token(State(a): State<Azure>, Path(tenant): Path<String>, body: String) -> Response {
    a.token_requests.lock().unwrap().push(body.clone());
    let form: HashMap<String, String> = body
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%2F", "/").replace("%3A", ":")))
        .collect();
    let ok = tenant == "tenant-1"
        && form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some("app-1")
        && form.get("client_secret").map(String::as_str) == Some("s3cret")
        && form.get("scope").is_some_and(|s| s.contains("cognitiveservices.azure.com"));
    if !ok {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client"}))).into_response();
    }
    let mut issued = a.issued.lock().unwrap();
    let value = format!("tok-{}", issued.len() + 1);
    issued.insert(value.clone(), Instant::now());
    axum::Json(json!({"token_type": "Bearer", "expires_in": 302, "access_token": value})).into_response()
}

async fn voice_live(
    State(a): State<Azure>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let query = query.unwrap_or_default();
    a.upstream_queries.lock().unwrap().push(query.clone());
    if query.contains("model=busy") {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "7")], "Too many sessions").into_response();
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let fresh = bearer.is_some_and(|t| a.issued.lock().unwrap().get(t).is_some_and(|at| at.elapsed() < VALID));
    if !fresh {
        return (StatusCode::UNAUTHORIZED, "token missing or expired").into_response();
    }
    ws.on_upgrade(session)
}

/// A Voice Live session in miniature: `session.created`, then an answer to each
/// `response.create`; the user text `MALFORMED` gets a frame that is not JSON, `BYE` a close.
async fn session(mut ws: WebSocket) {
    let created = json!({"type": "session.created", "event_id": "e0", "session": {"id": "sess_up"}});
    ws.send(AxMessage::Text(created.to_string().into())).await.ok();
    while let Some(Ok(AxMessage::Text(text))) = ws.next().await {
        let event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let said = event["item"]["content"][0]["text"].as_str().unwrap_or_default();
        match (event["type"].as_str().unwrap_or_default(), said) {
            (_, "MALFORMED") => {
                ws.send(AxMessage::Text("this is { not json".into())).await.ok();
            }
            (_, "BYE") => {
                let close = axum::extract::ws::CloseFrame { code: 1011, reason: "upstream went away".into() };
                ws.send(AxMessage::Close(Some(close))).await.ok();
                return;
            }
            ("response.create", _) => {
                for kind in ["response.created", "response.done"] {
                    let e = json!({"type": kind, "response": {"id": "resp_1", "status": "completed"}});
                    ws.send(AxMessage::Text(e.to_string().into())).await.ok();
                }
            }
            _ => {}
        }
    }
}

async fn azure() -> (String, Azure) {
    let state = Azure::default();
    let app = axum::Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/voice-live/realtime", get(voice_live))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

fn relay(url: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--relay", url];
    args.extend_from_slice(extra);
    Server::start_with_env(
        &args,
        &[
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_CLIENT_ID", "app-1"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
            ("AZURE_AUTHORITY_HOST", url),
            ("AZURE_VOICELIVE_API_KEY", ""),
        ],
    )
}

async fn open(port: u16, query: &str, headers: &[(&'static str, &str)]) -> Ws {
    let (mut ws, _) = common::connect(port, &format!("/voice-live/realtime?{query}"), headers).await.unwrap();
    common::until(&mut ws, "session.created").await;
    ws
}

async fn round_trip(ws: &mut Ws) {
    send(ws, json!({"type": "response.create"})).await;
    let events = common::until(ws, "response.done").await;
    assert!(events.iter().any(|e| e["type"] == "response.created"), "{events:?}");
}

fn say(text: &str) -> Value {
    json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": text}]}})
}

#[tokio::test]
async fn sessions_outlive_their_token_and_new_ones_get_a_fresh_one() {
    let (url, az) = azure().await;
    let server = relay(&url, &[]);
    let mut first = open(server.port, "model=gpt-4o", &[]).await;
    round_trip(&mut first).await;
    tokio::time::sleep(VALID + Duration::from_millis(500)).await; // the first token has expired
    round_trip(&mut first).await; // the session it opened goes on
    let mut second = open(server.port, "model=gpt-4o", &[]).await; // a refreshed token
    round_trip(&mut second).await;
    round_trip(&mut first).await;
    // Made-up event types are relayed but make no metric series of their own.
    send(&mut first, json!({"type": format!("evil_{}", "x".repeat(500))})).await;
    round_trip(&mut first).await;
    assert_eq!(az.token_requests.lock().unwrap().len(), 2, "one token, then one refresh");
    let queries = az.upstream_queries.lock().unwrap().clone();
    assert!(queries.iter().all(|q| q.contains("model=gpt-4o") && q.contains("api-version=")), "{queries:?}");
    let (_, metrics) = server.get("/metrics");
    let done = metrics
        .lines()
        .find(|l| l.starts_with("brazen_relay_events_total{direction=\"upstream\",type=\"response.done\"}"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(done.ends_with(" 5"), "{done}");
    assert!(!metrics.contains("evil_"), "a client's made-up type is counted as other");
    assert!(metrics.contains("brazen_relay_events_total{direction=\"client\",type=\"other\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_trouble_reaches_the_client_as_clear_errors() {
    let (url, _) = azure().await;
    let server = relay(&url, &[]);
    let mut ws = open(server.port, "model=gpt-4o", &[]).await;
    send(&mut ws, say("MALFORMED")).await;
    let error = common::until(&mut ws, "error").await.pop().unwrap();
    assert_eq!(error["error"]["code"], "relay_upstream_malformed_event", "{error}");
    round_trip(&mut ws).await; // the session goes on
    send(&mut ws, say("BYE")).await;
    let error = common::until(&mut ws, "error").await.pop().unwrap();
    assert_eq!(error["error"]["code"], "relay_upstream_closed");
    assert!(error["error"]["message"].as_str().unwrap().contains("1011: upstream went away"), "{error}");
    let close = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap();
    match close {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1011),
        other => panic!("a close frame: {other:?}"),
    }

    let busy = common::connect(server.port, "/voice-live/realtime?model=busy", &[]).await.unwrap_err();
    assert!(busy.contains("429") && busy.contains("relay_upstream_rate_limited"), "{busy}");
    // The upstream's Retry-After is passed on.
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        tcp,
        "GET /voice-live/realtime?model=busy HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 512];
    let n = tcp.read(&mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_lowercase();
    assert!(head.starts_with("http/1.1 429") && head.contains("retry-after: 7"), "{head}");
}

#[tokio::test]
async fn brazens_own_key_guards_the_relay_and_never_travels_upstream() {
    let (url, az) = azure().await;
    let server = relay(&url, &["--api-key", "browser-key-1"]);
    let refused = common::connect(server.port, "/voice-live/realtime?model=m", &[]).await.unwrap_err();
    assert!(refused.contains("401"), "{refused}");
    // Nor does a made-up client secret open anything upstream.
    let refused =
        common::connect(server.port, "/voice-live/realtime?model=m&api-key=ek_made_up", &[]).await.unwrap_err();
    assert!(refused.contains("401"), "{refused}");
    assert!(az.upstream_queries.lock().unwrap().is_empty(), "nothing reached Voice Live");
    let mut ws = open(server.port, "model=m&api-key=browser-key-1", &[]).await;
    round_trip(&mut ws).await;
    let queries = az.upstream_queries.lock().unwrap().clone();
    assert!(queries.iter().all(|q| !q.contains("browser-key-1")), "{queries:?}");
}

#[tokio::test]
async fn a_relay_without_a_credential_says_what_to_set() {
    let out = std::process::Command::new(common::binary())
        .args(["serve", "--port", "0", "--relay", "https://example.invalid"])
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_SECRET")
        .env_remove("IDENTITY_ENDPOINT")
        .env("AZURE_VOICELIVE_API_KEY", "")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("AZURE_VOICELIVE_API_KEY") && stderr.contains("AZURE_CLIENT_SECRET"), "{stderr}");
}
