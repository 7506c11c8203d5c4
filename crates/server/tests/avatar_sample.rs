//! The official Voice Live avatar sample's backend protocol (SEED_APPS.md §1), spoken by a client
//! of our own message for message, as its page does: the page's files from `web_root`,
//! `/api/config`, and `/ws/{clientId}` with `start_session`, `send_text`, `audio_chunk`,
//! `avatar_sdp_offer` (a real WebRTC offer, base64 JSON both ways), `stop_session` and a second
//! `start_session` on the same socket; bad messages get `error` and the page goes on.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_testkit::viewer::Viewer;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

mod common;
use common::{Server, Ws, send};

/// The page's messages until one of `kind`.
async fn until(ws: &mut Ws, kind: &str) -> Vec<Value> {
    common::until(ws, kind).await
}

fn config(avatar: bool, proactive: bool) -> Value {
    json!({"mode": "model", "endpoint": "http://127.0.0.1", "apiKey": "anything", "model": "gpt-4o-realtime",
        "instructions": "", "temperature": 0.9, "enableProactive": proactive, "voiceType": "standard",
        "voiceName": "en-US-AvaMultilingualNeural", "voiceSpeed": 1, "avatarEnabled": avatar,
        "avatarOutputMode": "webrtc", "isPhotoAvatar": false, "isCustomAvatar": false,
        "avatarName": "Lisa-casual-sitting", "useNS": false, "useEC": false, "turnDetectionType": "server_vad",
        "removeFillerWords": false, "srModel": "azure-speech", "recognitionLanguage": "auto", "eouDetectionType": "none"})
}

fn pcm(loud: bool, ms: usize) -> Vec<u8> {
    (0..ms * 24)
        .flat_map(|i| (if loud { ((i as f64 * 0.07).sin() * 12_000.0) as i16 } else { 0 }).to_le_bytes())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_page_runs_its_whole_protocol_against_brazen() {
    let root = std::env::temp_dir().join(format!("brazen-s1-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "<html><script src=\"app.js\"></script></html>").unwrap();
    std::fs::write(root.join("app.js"), "console.log('sample');").unwrap();
    let server = Server::start(&["--agent", "none", "--web-root", root.to_str().unwrap()]);

    // The page and its configuration.
    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    assert!(page.contains("app.js"), "the user's page, not brazen's app: {page}");
    let (status, headers, script) = server.get_with_headers("/app.js");
    assert!(status == 200 && headers.contains("text/javascript") && script.contains("sample"), "{headers}");
    assert_eq!(server.get("/../../etc/passwd").0, 404);
    let (status, body) = server.get("/api/config");
    let cfg: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status, 200);
    assert!(cfg["endpoint"].as_str().is_some_and(|e| !e.is_empty()), "the page refuses an empty endpoint: {cfg}");
    assert_eq!(
        (cfg["model"].as_str(), cfg["voice"].as_str()),
        (Some("gpt-4o-realtime"), Some("en-US-AvaMultilingualNeural"))
    );

    let (mut ws, _) = common::connect(server.port, "/ws/client-k3j9x2m1q", &[]).await.unwrap();
    // Before a session, and malformed: errors, the socket stays.
    send(&mut ws, json!({"type": "send_text", "text": "too early"})).await;
    assert!(until(&mut ws, "error").await.pop().unwrap()["error"].as_str().unwrap().contains("start_session first"));

    // A session without the avatar, greeting first (enableProactive).
    send(&mut ws, json!({"type": "start_session", "config": config(false, true)})).await;
    let started = until(&mut ws, "session_started").await.pop().unwrap();
    assert_eq!(started["status"], "success");
    assert_eq!(
        started["config"],
        json!({"model": "gpt-4o-realtime", "avatarEnabled": false, "avatarOutputMode": "webrtc"})
    );
    let greeting = until(&mut ws, "response_done").await;
    assert!(greeting.iter().any(|m| m["type"] == "response_created"), "{greeting:?}");

    // Typed text: the reply in the order the page expects, with its voice as audio_data.
    send(&mut ws, json!({"type": "send_text", "text": "Hello there"})).await;
    let reply = until(&mut ws, "response_done").await;
    let kinds: Vec<&str> = reply.iter().map(|m| m["type"].as_str().unwrap()).collect();
    let at = |k: &str| kinds.iter().position(|x| *x == k).unwrap_or_else(|| panic!("no {k}: {kinds:?}"));
    assert!(
        at("response_created") < at("transcript_delta") && at("transcript_delta") < at("transcript_done"),
        "{kinds:?}"
    );
    assert!(at("audio_data") < at("audio_done") && at("audio_done") < at("response_done"), "{kinds:?}");
    let said: String =
        reply.iter().filter(|m| m["type"] == "transcript_delta").filter_map(|m| m["delta"].as_str()).collect();
    assert!(said.contains("Hello there"), "{said}");
    let audio = reply.iter().find(|m| m["type"] == "audio_data").unwrap();
    assert_eq!((audio["format"].as_str(), audio["sampleRate"].as_u64()), (Some("pcm16"), Some(24_000)));

    // Speech in 100 ms chunks of 2400 samples: speech_started → speech_stopped → the user's
    // transcript with the same itemId → a reply.
    for (loud, ms) in [(false, 300), (true, 1_200), (false, 1_500)] {
        for chunk in pcm(loud, ms).chunks(4_800) {
            send(&mut ws, json!({"type": "audio_chunk", "data": B64.encode(chunk)})).await;
        }
    }
    let turn = until(&mut ws, "response_done").await;
    let started = turn.iter().find(|m| m["type"] == "speech_started").unwrap_or_else(|| panic!("{turn:?}"));
    assert!(turn.iter().any(|m| m["type"] == "speech_stopped"));
    let mut turn = turn.clone();
    if !turn.iter().any(|m| m["type"] == "transcript_done" && m["role"] == "user") {
        turn.extend(until(&mut ws, "transcript_done").await);
    }
    let user = turn.iter().find(|m| m["type"] == "transcript_done" && m["role"] == "user").unwrap();
    assert_eq!(user["itemId"], started["itemId"], "the page fills the bubble it drew for this item");

    // Bad messages are named; the session goes on.
    send(&mut ws, json!({"type": "audio_chunk", "data": "%%%"})).await;
    assert!(until(&mut ws, "error").await.pop().unwrap()["error"].as_str().unwrap().contains("base64"));
    send(&mut ws, json!({"type": "teleport"})).await;
    assert!(until(&mut ws, "error").await.pop().unwrap()["error"].as_str().unwrap().contains("teleport"));

    // Stop, then a new session with the WebRTC avatar on the same socket.
    send(&mut ws, json!({"type": "stop_session"})).await;
    send(&mut ws, json!({"type": "start_session", "config": config(true, false)})).await;
    let first = until(&mut ws, "session_started").await;
    let ice = first.iter().find(|m| m["type"] == "ice_servers").expect("ice_servers before session_started");
    let stun = ice["iceServers"][0]["urls"][0].as_str().unwrap();
    assert!(stun.starts_with("stun:127.0.0.1:"), "{ice}");
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (_viewer, offer) = Viewer::offer(socket.local_addr().unwrap(), Instant::now()).unwrap();
    let client_sdp = B64.encode(json!({"type": "offer", "sdp": offer}).to_string());
    send(&mut ws, json!({"type": "avatar_sdp_offer", "clientSdp": client_sdp})).await;
    let answered = until(&mut ws, "avatar_sdp_answer").await.pop().unwrap();
    let answer: Value = serde_json::from_slice(&B64.decode(answered["serverSdp"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(answer["type"], "answer");
    assert!(
        answer["sdp"].as_str().unwrap().starts_with("v=0")
            && answer["sdp"].as_str().unwrap().contains("a=fingerprint:")
    );
    // With the avatar the voice travels in its track: no audio_data.
    send(&mut ws, json!({"type": "send_text", "text": "Show me"})).await;
    let reply = tokio::time::timeout(Duration::from_secs(60), until(&mut ws, "response_done")).await.unwrap();
    assert!(reply.iter().all(|m| m["type"] != "audio_data"), "{reply:?}");
    assert!(reply.iter().any(|m| m["type"] == "transcript_done" && m["role"] == "assistant"));
    std::fs::remove_dir_all(&root).ok();
}
