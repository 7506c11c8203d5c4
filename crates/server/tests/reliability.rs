//! Limits, client secrets and shutdown, from outside: sessions that end at their length or when
//! idle, new sessions limited per address and per key, short-lived secrets that start one
//! session each, and a SIGTERM that lets the answer in progress finish, tells the client, keeps
//! the conversation and exits 0.

mod common;

use common::{Server, Ws, connect, next_event, send, until};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Reads until the server closes the socket (at most `within`): the events before, and the
/// close code.
async fn until_closed(ws: &mut Ws, within: Duration) -> (Vec<Value>, Option<u16>) {
    let (events, close) = until_closed_or(ws, within).await;
    (events, close.expect("closed in time"))
}

fn codes(events: &[Value], kind: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .map(|e| e[kind]["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn sessions_end_at_their_maximum_length_and_when_idle() {
    // Idle: warned (Voice Live's `warning`), then told and closed.
    let idle = Server::start_with_config("idle_timeout_seconds = 1.5\n", &["--agent", "none"]);
    let (mut ws, _) = connect(idle.port, "/voice-live/realtime", &[]).await.unwrap();
    let opened = Instant::now();
    let (events, close) = until_closed(&mut ws, Duration::from_secs(10)).await;
    let waited = opened.elapsed();
    assert_eq!(codes(&events, "warning"), ["session_idle"], "{events:?}");
    assert_eq!(codes(&events, "error"), ["session_idle_timeout"], "{events:?}");
    assert_eq!(close, Some(1000));
    assert!(waited >= Duration::from_millis(1_400) && waited < Duration::from_secs(5), "{waited:?}");

    // Length: a busy session still ends, with OpenAI's `session_expired`.
    let short = Server::start_with_config("max_session_seconds = 2\nidle_timeout_seconds = 0\n", &["--agent", "none"]);
    let (mut ws, _) = connect(short.port, "/v1/realtime", &[]).await.unwrap();
    let opened = Instant::now();
    until(&mut ws, "session.created").await;
    let mut events = Vec::new();
    let close = loop {
        send(&mut ws, json!({"type": "session.update", "session": {"instructions": "Busy."}})).await;
        let (more, close) = until_closed_or(&mut ws, Duration::from_millis(300)).await;
        events.extend(more);
        if close.is_some() {
            break close;
        }
        assert!(opened.elapsed() < Duration::from_secs(8), "never closed: {events:?}");
    };
    assert_eq!(codes(&events, "error"), ["session_expired"]);
    let message =
        events.iter().find(|e| e["type"] == "error").unwrap()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("2 s"), "{message}");
    assert_eq!(close, Some(Some(1000)));
    assert!(opened.elapsed() >= Duration::from_millis(1_900), "{:?}", opened.elapsed());
}

/// Reads for `wait`: the events, and the close code once the server closed (`Some(None)`: the
/// socket ended without one).
async fn until_closed_or(ws: &mut Ws, wait: Duration) -> (Vec<Value>, Option<Option<u16>>) {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return (events, None),
            Ok(Some(Ok(Message::Text(t)))) => events.push(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(frame)))) => return (events, Some(frame.map(|f| u16::from(f.code)))),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return (events, Some(None)),
        }
    }
}

#[tokio::test]
async fn new_sessions_are_limited_per_address_and_per_key() {
    let server = Server::start_with_config("connections_per_minute = 3\n", &["--agent", "none"]);
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(connect(server.port, "/v1/realtime", &[]).await.expect("within the limit"));
    }
    let refused = connect(server.port, "/v1/realtime", &[]).await.unwrap_err();
    assert!(refused.starts_with("429 "), "{refused}");
    let body: Value = serde_json::from_str(&refused[4..]).unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains("3 a minute"), "{body}");
    let handshake = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade, close"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];
    let (status, head, _) = server.request("GET", "/v1/realtime", &handshake, "");
    assert_eq!(status, 429);
    assert!(head.contains("retry-after: 20"), "one place comes back every 20 s: {head}");
    // The sessions already open go on.
    let (ws, _) = &mut open[0];
    until(ws, "session.created").await;
    send(ws, json!({"type": "session.update", "session": {"instructions": "Still here."}})).await;
    assert_eq!(until(ws, "session.updated").await.last().unwrap()["session"]["instructions"], "Still here.");

    // Per key, across addresses: the third session of one key is refused, another key's is not.
    let keyed = Server::start_with_config(
        "connections_per_minute = 0\nconnections_per_minute_per_key = 2\napi_keys = [\"key-one-0123456789\", \"key-two-0123456789\"]\n",
        &["--agent", "none"],
    );
    let one = [("api-key", "key-one-0123456789")];
    for _ in 0..2 {
        open.push(connect(keyed.port, "/v1/realtime", &one).await.unwrap());
    }
    let refused = connect(keyed.port, "/v1/realtime", &one).await.unwrap_err();
    assert!(refused.starts_with("429 ") && refused.contains("this API key"), "{refused}");
    let two = [("api-key", "key-two-0123456789")];
    open.push(connect(keyed.port, "/v1/realtime", &two).await.expect("another key"));
    // A client secret's session counts against the key it was minted with; one refused by the
    // limit is not used up.
    let mint = || {
        let (status, _, body) = keyed.request("POST", "/v1/realtime/client_secrets", &two, "");
        assert_eq!(status, 200, "minting starts nothing: {body}");
        let minted: Value = serde_json::from_str(&body).unwrap();
        format!("realtime, openai-insecure-api-key.{}", minted["value"].as_str().unwrap())
    };
    let (first, second) = (mint(), mint());
    open.push(connect(keyed.port, "/v1/realtime", &[("sec-websocket-protocol", first.as_str())]).await.unwrap());
    let refused =
        connect(keyed.port, "/v1/realtime", &[("sec-websocket-protocol", second.as_str())]).await.unwrap_err();
    assert!(refused.starts_with("429 ") && refused.contains("this API key"), "{refused}");
    let refused =
        connect(keyed.port, "/v1/realtime", &[("sec-websocket-protocol", second.as_str())]).await.unwrap_err();
    assert!(refused.starts_with("429 "), "still unused, still over the key's limit: {refused}");
}

#[tokio::test]
async fn a_client_secret_starts_one_session_with_its_configuration() {
    let key = "server-key-0123456789";
    let server = Server::start_with_config(
        &format!("api_keys = [\"{key}\"]\nallowed_origins = [\"https://app.example\"]\n"),
        &["--agent", "none"],
    );
    let mint = |headers: &[(&str, &str)], body: &str| {
        let (status, head, body) = server.request("POST", "/v1/realtime/client_secrets", headers, body);
        (status, head, serde_json::from_str::<Value>(&body).unwrap_or(Value::Null))
    };
    // Minted with the server's key only.
    assert_eq!(mint(&[], "{}").0, 401);
    assert_eq!(mint(&[("Authorization", "Bearer wrong")], "{}").0, 401);
    let bearer = format!("Bearer {key}");
    let auth = [("Authorization", bearer.as_str()), ("Content-Type", "application/json")];
    let (status, _, e) = mint(&auth, r#"{"expires_after": {"seconds": 99999}}"#);
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("invalid_value")), "{e}");
    assert_eq!(mint(&auth, "not json").0, 400);
    let (status, _, e) = mint(&auth, r#"{"session": {"type": "realtime", "temperature": "hot"}}"#);
    assert_eq!(status, 400, "{e}");
    let request = json!({"expires_after": {"anchor": "created_at", "seconds": 60},
        "session": {"type": "realtime", "instructions": "Talk like a pirate."}});
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (status, _, minted) = mint(&auth, &request.to_string());
    assert_eq!(status, 200, "{minted}");
    let secret = minted["value"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ek_"), "{minted}");
    let expires = minted["expires_at"].as_u64().unwrap();
    assert!((before + 59..=before + 61).contains(&expires), "{minted}");
    assert_eq!(minted["session"]["instructions"], "Talk like a pirate.");

    // A browser presents it as the subprotocol key; the session starts as minted.
    let protocols = format!("realtime, openai-insecure-api-key.{secret}");
    let offer = [("sec-websocket-protocol", protocols.as_str()), ("origin", "https://app.example")];
    let (mut ws, chosen) = connect(server.port, "/v1/realtime", &offer).await.expect("the secret starts a session");
    assert_eq!(chosen.as_deref(), Some("realtime"));
    let created = next_event(&mut ws).await;
    assert_eq!(created["session"]["instructions"], "Talk like a pirate.", "{created}");
    assert_eq!(created["session"]["id"], minted["session"]["id"], "the session given out with the secret");
    // Once only.
    let again = connect(server.port, "/v1/realtime", &offer).await.unwrap_err();
    assert!(again.starts_with("401 ") && again.contains("used already"), "{again}");
    // A made-up secret is refused before anything is looked up for it.
    let made_up = connect(server.port, "/v1/realtime?conversation-id=c1", &[("authorization", "Bearer ek_made_up")])
        .await
        .unwrap_err();
    assert!(made_up.starts_with("401 "), "{made_up}");
    // A secret cannot mint another, nor open anything but its one Realtime session.
    let (_, _, fresh) = mint(&auth, "");
    let by_secret = format!("Bearer {}", fresh["value"].as_str().unwrap());
    assert_eq!(mint(&[("Authorization", by_secret.as_str())], "{}").0, 401);
    let (status, _, _) = server.request("POST", "/sessions", &[("Authorization", by_secret.as_str())], "{}");
    assert_eq!(status, 401, "the retail sample's sessions take keys, not secrets");
    let (status, _, _) = server.request("POST", "/api/avatar/connect", &[("Authorization", by_secret.as_str())], "{}");
    assert_eq!(status, 401, "nor does the avatar REST API");
    let fresh_offer = format!("realtime, openai-insecure-api-key.{}", fresh["value"].as_str().unwrap());
    // A connection refused for another reason (no stored conversation to continue here) leaves
    // the secret unused.
    let refused =
        connect(server.port, "/v1/realtime?conversation-id=c1", &[("sec-websocket-protocol", fresh_offer.as_str())])
            .await
            .unwrap_err();
    assert!(refused.starts_with("400 ") && refused.contains("conversation"), "{refused}");
    connect(server.port, "/v1/realtime", &[("sec-websocket-protocol", fresh_offer.as_str())])
        .await
        .expect("the secret still starts its own session");

    // CORS: the allowed origin's preflight is answered, another's refused.
    let preflight = |origin: &str| {
        server.request(
            "OPTIONS",
            "/v1/realtime/client_secrets",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization, content-type"),
            ],
            "",
        )
    };
    let (status, head, _) = preflight("https://app.example");
    assert_eq!(status, 204);
    assert!(head.contains("access-control-allow-origin: https://app.example"), "{head}");
    assert!(head.contains("access-control-allow-headers: authorization, content-type"), "{head}");
    assert_eq!(preflight("https://evil.example").0, 403);
}

#[tokio::test]
async fn sigterm_lets_the_answer_finish_tells_the_client_and_keeps_the_conversation() {
    let mut server = Server::start_with_config("drain_seconds = 20\n", &[]);
    let (mut ws, _) = connect(server.port, "/v1/realtime", &[]).await.unwrap();
    until(&mut ws, "session.created").await;
    send(&mut ws, json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["audio"], "turn_detection": null}})).await;
    until(&mut ws, "session.updated").await;
    send(&mut ws, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "Please tell me a long story about the sea and the ships on it."}]}}))
    .await;
    send(&mut ws, json!({"type": "response.create"})).await;
    // The answer is being spoken (paced in real time) when the server is told to stop.
    until(&mut ws, "response.output_audio.delta").await;
    Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    // New sessions are not taken any more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = connect(server.port, "/v1/realtime", &[]).await.expect_err("the listener stopped");
    let lower = refused.to_lowercase();
    assert!(lower.contains("refused") || lower.contains("reset"), "not an HTTP answer: {refused}");
    let (events, close) = until_closed(&mut ws, Duration::from_secs(30)).await;
    let done = events.iter().find(|e| e["type"] == "response.done").expect("the answer ends");
    assert_eq!(done["response"]["status"], "completed", "finished, not cut off: {done}");
    assert_eq!(codes(&events, "error"), ["server_shutting_down"]);
    assert_eq!(events.last().unwrap()["type"], "error", "told last, after the answer");
    assert_eq!(close, Some(1001));
    let status = server.wait_exit(Duration::from_secs(15)).expect("the process exits");
    assert!(status.success(), "{status:?}");

    // What was said is in the database: a new server on the same data sees it.
    let data_dir = server.data_dir.to_str().unwrap().to_owned();
    let again = Server::start(&["--data-dir", &data_dir]);
    let (status, body) = again.get("/api/conversations?limit=5");
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let first = list["items"][0]["id"].as_str().unwrap_or_else(|| panic!("a conversation: {list}")).to_owned();
    let (_, body) = again.get(&format!("/api/conversations/{first}"));
    let stored: Value = serde_json::from_str(&body).unwrap();
    assert!(!stored["ended_at"].is_null(), "its end was written before the exit: {stored}");
    let roles: Vec<&str> = stored["entries"].as_array().unwrap().iter().map(|e| e["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant"], "{stored}");
    assert!(body.contains("a long story about the sea"), "{body}");
}
