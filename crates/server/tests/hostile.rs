//! Hostile clients (issue 15): each defect an attacker found, reproduced through the public
//! surface (the socket, HTTP, the command line), and the kinds of bad input tried: JSON, audio,
//! SDP, URLs, pictures, UDP and HTTP. Each test failed before its fix.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::SinkExt;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::{Server, Ws, connect, expect_error, next_event, next_within, send, until};

/// A 1×1 RGB PNG.
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";
/// A real 8192×8192 grey PNG in 64 KiB: 256 MiB once decoded to RGBA.
const PNG_BOMB: &[u8] = include_bytes!("data/bomb-8192.png");

async fn voice_live(port: u16) -> Ws {
    let (mut ws, _) = connect(port, "/voice-live/realtime", &[]).await.unwrap();
    assert_eq!(next_event(&mut ws).await["type"], "session.created");
    ws
}

/// Speaks `words` words of unpunctuated text as a pre-generated message; reads until `audio_ms`
/// of audio came; returns (transcript deltas, ms of audio received, time to the first audio).
async fn speak_wall_of_words(ws: &mut Ws, chars: usize, audio_ms: f64, wait: Duration) -> (Vec<String>, f64, Duration) {
    let text = "hello ".repeat(chars / 6);
    send(ws, json!({"type": "session.update", "session": {"turn_detection": null}})).await;
    assert_eq!(until(ws, "session.updated").await.last().unwrap()["type"], "session.updated");
    let asked = Instant::now();
    send(ws, json!({"type": "response.create", "response": {"pre_generated_assistant_message": text}})).await;
    let (mut deltas, mut heard_ms, mut first) = (Vec::new(), 0.0, None);
    while heard_ms < audio_ms {
        let e = next_within(ws, wait).await.expect("the reply keeps coming");
        let kind = e["type"].as_str().unwrap();
        assert_ne!(kind, "error", "{e}");
        if kind.ends_with("audio_transcript.delta") {
            deltas.push(e["delta"].as_str().unwrap().to_owned());
        } else if kind.ends_with("audio.delta") {
            first.get_or_insert_with(|| asked.elapsed());
            heard_ms += B64.decode(e["delta"].as_str().unwrap()).unwrap().len() as f64 / 48.0; // 24 kHz PCM16
        } else if kind == "response.done" {
            panic!("the reply ended early: {e}");
        }
    }
    (deltas, heard_ms, first.unwrap())
}

/// Defect 1 (tone voice, fast): 100,000 characters with no punctuation were one phrase,
/// synthesised whole into memory (here: over an hour of tone). Now phrases are cut at word
/// boundaries and synthesised only a few seconds ahead of what has been sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_of_unpunctuated_text_is_spoken_in_bounded_phrases() {
    let server = Server::start(&[]);
    let mut ws = voice_live(server.port).await;
    let (before, _) = server.memory_mb();
    let (deltas, heard, _) = speak_wall_of_words(&mut ws, 100_000, 3_000.0, Duration::from_secs(10)).await;
    assert!(heard >= 3_000.0);
    assert!(!deltas.is_empty());
    for d in &deltas {
        assert!(d.trim().chars().count() <= 240, "a phrase of {} characters", d.trim().chars().count());
        assert!(d.split_whitespace().all(|w| w == "hello"), "words stay whole: {d:?}");
    }
    let (during, _) = server.memory_mb();
    send(&mut ws, json!({"type": "response.cancel"})).await;
    let done = until(&mut ws, "response.done").await;
    assert_eq!(done.last().unwrap()["response"]["status"], "cancelled");
    assert!(during - before < 100.0, "memory grew {:.0} MB while speaking", during - before);
}

/// Defect 1 with the real voice: the reproduction of the issue, 100,000 characters, is spoken
/// (Piper's encoder reads bounded runs) and leaves memory within 100 MB of where it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piper_speaks_100000_unpunctuated_characters_in_bounded_memory() {
    let server = Server::start(&["--tts", "piper"]);
    let mut ws = voice_live(server.port).await;
    // Warm the voice (its first run sizes ONNX Runtime's buffers) on a normal sentence.
    send(
        &mut ws,
        json!({"type": "response.create", "response": {"pre_generated_assistant_message": "Hello there, welcome."}}),
    )
    .await;
    until(&mut ws, "response.done").await;
    let (before, _) = server.memory_mb();
    let (deltas, heard, first) = speak_wall_of_words(&mut ws, 100_000, 4_000.0, Duration::from_secs(60)).await;
    let (during, peak) = server.memory_mb();
    send(&mut ws, json!({"type": "response.cancel"})).await;
    until(&mut ws, "response.done").await;
    drop(ws);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (after, _) = server.memory_mb();
    eprintln!(
        "100,000 characters: first audio after {:.2} s; memory before {before:.0} MB, speaking {during:.0} MB, after {after:.0} MB, peak {peak:.0} MB; {} phrases heard in {heard:.0} ms",
        first.as_secs_f64(),
        deltas.len()
    );
    assert!(deltas.iter().any(|d| d.contains("hello")), "the words are spoken: {deltas:?}");
    assert!(during - before < 100.0, "speaking grew memory by {:.0} MB", during - before);
    assert!(after - before < 100.0, "memory after the reply is {:.0} MB above the start", after - before);
}

/// Defect 2: `--api-key ""` (an unset variable) opened the server on every interface with a key
/// anyone could present; a blank or space-only key was accepted.
#[test]
fn blank_api_keys_are_refused_at_start_and_never_match() {
    for key in ["", "   "] {
        let mut child = Command::new(common::binary())
            .args(["serve", "--host", "0.0.0.0", "--port", "0", "--api-key", key, "--llm", "echo", "--asr", "echo"])
            .args(["--tts", "tone", "--vad", "energy"])
            .env_remove("BRAZEN_API_KEYS")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("brazen serve --host 0.0.0.0 --api-key {key:?} is serving");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "it never listened");
        assert!(stderr.contains("API key is empty") && stderr.contains("--api-key"), "{stderr}");
    }
    let server = Server::start(&["--api-key", "real-key-for-tests"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (path, headers) in [
            ("/v1/realtime", vec![("sec-websocket-protocol", "realtime, openai-insecure-api-key.")]),
            ("/v1/realtime?api-key=+", vec![]),
            ("/v1/realtime?api-key=%20", vec![]),
            ("/v1/realtime", vec![("api-key", " ")]),
            ("/v1/realtime", vec![("authorization", "Bearer  ")]),
        ] {
            let refused = connect(server.port, path, &headers).await.unwrap_err();
            assert!(refused.starts_with("401"), "{path} {headers:?}: {refused}");
        }
        assert!(connect(server.port, "/v1/realtime?api-key=real-key-for-tests", &[]).await.is_ok());
    });
}

/// A one-thread HTTP server on loopback: `/pic.png` is a picture, `/to/<url>` redirects to
/// `<url>`, anything else is a 404. Counts the requests it got.
struct PictureHost {
    port: u16,
    requests: Arc<AtomicUsize>,
}

impl PictureHost {
    fn start() -> PictureHost {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).ok();
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) <= 2 {
                        break;
                    }
                }
                let mut stream = stream;
                let png = B64.decode(PNG_1X1).unwrap();
                let _ = if path == "/pic.png" {
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        png.len()
                    )
                    .and_then(|()| stream.write_all(&png))
                } else if let Some(to) = path.strip_prefix("/to/") {
                    write!(
                        stream,
                        "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                } else {
                    write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                };
            }
        });
        PictureHost { port, requests }
    }
}

/// Sets a WebSocket avatar with `background` as its picture URL; returns the picture's error
/// message, or `None` when none came within 3 s of `session.updated`.
async fn background_error(ws: &mut Ws, url: &str) -> Option<String> {
    let video = json!({"resolution": {"width": 64, "height": 64}, "background": {"image_url": url}});
    let avatar = json!({"character": "lisa", "output_protocol": "websocket", "video": video});
    send(ws, json!({"type": "session.update", "session": {"turn_detection": null, "avatar": avatar}})).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut updated = false;
    while !updated || Instant::now() < deadline {
        let e = next_within(ws, Duration::from_secs(10)).await.expect("events keep coming");
        match e["type"].as_str().unwrap() {
            "session.updated" => updated = true,
            "error" => {
                assert_eq!(e["error"]["param"], "session.avatar.video.background.image_url", "{e}");
                return Some(e["error"]["message"].as_str().unwrap().to_owned());
            }
            _ => {}
        }
    }
    None
}

/// Defect 3: `image_url` / `photo_url` were fetched from any address (loopback included,
/// through redirects) and the errors told a closed port from a 404 from a non-picture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pictures_come_from_public_addresses_only_and_failures_look_alike() {
    let host = PictureHost::start();
    let p = host.port;
    let server = Server::start(&[]);
    let mut messages = Vec::new();
    for url in [
        format!("http://127.0.0.1:{p}/pic.png"),
        format!("http://127.0.0.1:{p}/missing.png"),
        "http://127.0.0.1:9/closed.png".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://[::ffff:127.0.0.1]:{p}/pic.png"),
        format!("http://localhost:{p}/pic.png"),
    ] {
        let mut ws = voice_live(server.port).await;
        let message = background_error(&mut ws, &url).await.unwrap_or_else(|| panic!("{url} was used"));
        messages.push(message.replace(&url, "URL"));
    }
    assert!(messages.windows(2).all(|w| w[0] == w[1]), "one message for every failure: {messages:#?}");
    assert_eq!(host.requests.load(Ordering::SeqCst), 0, "no request reached the loopback host");

    // Allowed by the fetch_allow setting: fetched. A redirect's target is checked again: the
    // name "localhost" is allowed, the address it redirects to is not.
    let allowing = Server::start_with_config("fetch_allow = [\"localhost\"]", &[]);
    let mut ws = voice_live(allowing.port).await;
    assert_eq!(background_error(&mut ws, &format!("http://localhost:{p}/pic.png")).await, None);
    assert_eq!(host.requests.load(Ordering::SeqCst), 1);
    let mut ws = voice_live(allowing.port).await;
    let bounce = format!("http://localhost:{p}/to/http://127.0.0.1:{p}/pic.png");
    assert!(background_error(&mut ws, &bounce).await.is_some(), "the redirect to 127.0.0.1 is refused");
    assert_eq!(host.requests.load(Ordering::SeqCst), 2, "the first hop only");
}

/// Defect 4: a 64 KiB PNG of 8192×8192 was decoded (256 MB) and kept in a 32-entry cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picture_bombs_are_refused_from_their_header() {
    let server = Server::start(&[]);
    let (before, _) = server.memory_mb();
    for _ in 0..4 {
        let mut ws = voice_live(server.port).await;
        let message = background_error(&mut ws, &format!("data:image/png;base64,{}", B64.encode(PNG_BOMB))).await;
        let message = message.expect("the bomb is refused");
        assert!(message.contains("8192×8192") && message.contains("pixels"), "{message}");
    }
    let (after, peak) = server.memory_mb();
    assert!(after - before < 50.0 && peak - before < 100.0, "memory {before:.0} → {after:.0} MB (peak {peak:.0})");
}

/// Defect 5: 1,000 short items and a `response.create` made the single model worker re-render
/// and re-tokenize the prompt once per dropped message (47.8 s instead of 5.2 s for another
/// session's turn), and went on after the attacker left. Now truncation counts each kept
/// message once and stops when its client goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_items_do_not_stall_another_sessions_turn() {
    // No agent: the bare model, so the turns measure the worker's fairness, not the agent's prompt.
    let server = Server::start(&["--llm", "qwen2.5-coder-1.5b", "--agent", "none"]);
    let port = server.port;
    async fn turn(port: u16) -> Duration {
        let (mut ws, _) = connect(port, "/v1/realtime", &[]).await.unwrap();
        until(&mut ws, "session.created").await;
        let item = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say OK."}]});
        send(&mut ws, json!({"type": "conversation.item.create", "item": item})).await;
        let started = Instant::now();
        send(
            &mut ws,
            json!({"type": "response.create", "response": {"output_modalities": ["text"], "max_output_tokens": 40}}),
        )
        .await;
        let done = until(&mut ws, "response.done").await;
        let status = &done.last().unwrap()["response"]["status"];
        assert!(status == "completed" || status == "incomplete", "{done:?}");
        started.elapsed()
    }
    turn(port).await; // warm
    let quiet = turn(port).await;
    // The attacker: 1,000 items, a response, and gone.
    let (mut attacker, _) = connect(port, "/v1/realtime", &[]).await.unwrap();
    for i in 0..1_000 {
        let item = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("item {i} of many")}]});
        send(&mut attacker, json!({"type": "conversation.item.create", "item": item})).await;
    }
    send(&mut attacker, json!({"type": "response.create"})).await;
    // Its items are in (each answered) before it leaves.
    let mut created = 0;
    while created < 1_000 {
        let e = next_event(&mut attacker).await;
        created += (e["type"] == "conversation.item.added" || e["type"] == "conversation.item.created") as usize;
    }
    drop(attacker);
    let after = turn(port).await;
    eprintln!(
        "another session's turn: {:.2} s quiet, {:.2} s after the attack",
        quiet.as_secs_f64(),
        after.as_secs_f64()
    );
    assert!(
        after < quiet * 3 + Duration::from_secs(3),
        "the turn took {:.1} s after the attack, {:.1} s before",
        after.as_secs_f64(),
        quiet.as_secs_f64()
    );
}

/// Defect 6: no limit on the texts of `response.create` (instructions, the pre-generated
/// message) or of items, no budget for a session's conversation, and 64 MB frames buffered per
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_conversations_and_frames_have_limits() {
    let server = Server::start(&[]);
    let mut ws = voice_live(server.port).await;
    let big = "x".repeat(300 * 1024);
    send(&mut ws, json!({"type": "response.create", "response": {"instructions": big}})).await;
    let e = expect_error(&mut ws, "string_above_max_length").await;
    assert_eq!(e["error"]["param"], "response.instructions", "{e}");
    send(&mut ws, json!({"type": "response.create", "response": {"pre_generated_assistant_message": big}})).await;
    let e = expect_error(&mut ws, "string_above_max_length").await;
    assert_eq!(e["error"]["param"], "response.pre_generated_assistant_message", "{e}");
    let item = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": big}]});
    send(&mut ws, json!({"type": "conversation.item.create", "item": item})).await;
    assert_eq!(expect_error(&mut ws, "string_above_max_length").await["error"]["param"], "item.content[0].text");
    let output = json!({"type": "function_call_output", "call_id": "c", "output": big});
    send(&mut ws, json!({"type": "conversation.item.create", "item": output})).await;
    assert_eq!(expect_error(&mut ws, "string_above_max_length").await["error"]["param"], "item.output");

    // The conversation holds 16 MiB of text: 250 KB items fill it after 67.
    let text = "y".repeat(250 * 1000);
    let mut added = 0;
    let refused = loop {
        let item = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]});
        send(&mut ws, json!({"type": "conversation.item.create", "item": item})).await;
        let e = next_event(&mut ws).await;
        if e["type"] == "error" {
            break e;
        }
        added += 1;
        assert!(added < 100, "no budget");
    };
    assert_eq!(refused["error"]["code"], "session_memory_exceeded", "{refused}");
    assert_eq!(added, 16 * 1024 * 1024 / 250_000);
    send(&mut ws, json!({"type": "input_audio_buffer.clear"})).await;
    assert_eq!(next_event(&mut ws).await["type"], "input_audio_buffer.cleared", "the session goes on");

    // 20 connections each announcing a 63 MB frame: closed at once with 1009, nothing buffered.
    let (before, _) = server.memory_mb();
    let mut sockets: Vec<TcpStream> = (0..20).map(|_| raw_websocket(server.port)).collect();
    for s in &mut sockets {
        let mut header = vec![0x82, 0xFF];
        header.extend_from_slice(&63_000_000u64.to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        s.write_all(&header).unwrap();
        s.write_all(&vec![0u8; 1 << 20]).ok();
    }
    for s in &mut sockets {
        assert_eq!(close_code(s), Some(1009));
    }
    let (after, _) = server.memory_mb();
    assert!(after - before < 100.0, "memory {before:.0} → {after:.0} MB");
}

/// Opens a WebSocket on a plain TCP stream (to send what a WebSocket library would not) and
/// reads past the `101` response.
fn raw_websocket(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads server frames until a close frame: its status code (`None` if the connection ended
/// without one).
fn close_code(s: &mut TcpStream) -> Option<u16> {
    loop {
        let mut head = [0u8; 2];
        s.read_exact(&mut head).ok()?;
        let mut len = u64::from(head[1] & 0x7F);
        if len == 126 {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).ok()?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).ok()?;
            len = u64::from_be_bytes(b);
        }
        let mut payload = vec![0u8; len as usize];
        s.read_exact(&mut payload).ok()?;
        if head[0] & 0x0F == 0x8 {
            return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        }
    }
}

/// Defect 7: `/api/catalog` handed the TURN relay's credentials to anyone.
#[test]
fn turn_credentials_go_only_to_key_holders() {
    let config = "api_keys = [\"catalog-key\"]\n[[ice_servers]]\nurls = [\"turn:relay.example:3478\"]\nusername = \"u\"\ncredential = \"turn-secret\"\n";
    let server = Server::start_with_config(config, &[]);
    let (status, body) = server.get("/api/catalog");
    assert_eq!(status, 200);
    assert!(!body.contains("turn-secret") && body.contains("turn:relay.example:3478"), "{body}");
    let (status, body) = server.get("/api/catalog?api-key=catalog-key");
    assert_eq!(status, 200);
    let catalog: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(catalog["ice_servers"][1]["credential"], "turn-secret", "{body}");
}

/// Defect 8: any web page could drive a key-less server on 127.0.0.1 (any `Origin`), and
/// through DNS rebinding (any `Host`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_pages_cannot_drive_a_keyless_server() {
    let server = Server::start(&[]);
    let p = server.port;
    let refused = connect(p, "/v1/realtime", &[("origin", "https://evil.example")]).await.unwrap_err();
    assert!(refused.starts_with("403") && refused.contains("origin_not_allowed"), "{refused}");
    let own = format!("http://127.0.0.1:{p}");
    assert!(connect(p, "/v1/realtime", &[("origin", own.as_str())]).await.is_ok());
    assert!(connect(p, "/v1/realtime", &[]).await.is_ok(), "SDKs send no Origin");
    // A rebound name: the browser sends the attacker's name as Host.
    let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
    write!(s, "GET /health HTTP/1.1\r\nHost: rebound.evil.example:{p}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 421") && answer.contains("host_not_allowed"), "{answer}");
    let (status, _) = server.get("/health");
    assert_eq!(status, 200);

    // Listed origins get in; a server with a key takes any origin (the key is the check).
    let listing = Server::start_with_config("allowed_origins = [\"https://app.example\"]", &[]);
    assert!(connect(listing.port, "/v1/realtime", &[("origin", "https://app.example")]).await.is_ok());
    let keyed = Server::start(&["--api-key", "k-origin"]);
    let with_key = [("origin", "https://elsewhere.example"), ("api-key", "k-origin")];
    assert!(connect(keyed.port, "/v1/realtime", &with_key).await.is_ok());
}

/// Defect 9: a 4096×4096 avatar passed validation but no encoder takes it (no video, no error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avatar_larger_than_4k_is_refused() {
    let server = Server::start(&[]);
    let mut ws = voice_live(server.port).await;
    let avatar = json!({"character": "lisa", "video": {"resolution": {"width": 4096, "height": 4096}}});
    send(&mut ws, json!({"type": "session.update", "session": {"avatar": avatar}})).await;
    let e = expect_error(&mut ws, "invalid_value").await;
    assert_eq!(e["error"]["param"], "session.avatar.video.resolution", "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("3840×2160"), "{e}");
}

/// Defect 9: broken frames, frames over the limit and SIGTERM dropped the connection without a
/// close frame; a client that never finished its headers held a connection forever.
#[test]
fn connections_end_with_close_codes_and_slow_headers_are_cut_off() {
    let mut server = Server::start(&[]);
    // Client frames must be masked: an unmasked one is a protocol violation.
    let mut s = raw_websocket(server.port);
    s.write_all(&[0x81, 0x02, b'{', b'}']).unwrap();
    assert_eq!(close_code(&mut s), Some(1002));
    // A frame over 16 MiB.
    let mut s = raw_websocket(server.port);
    let mut header = vec![0x81, 0xFF];
    header.extend_from_slice(&(17u64 << 20).to_be_bytes());
    header.extend_from_slice(&[9, 9, 9, 9]);
    s.write_all(&header).unwrap();
    assert_eq!(close_code(&mut s), Some(1009));

    // Headers never finished, or never begun: the connection is closed after the header
    // timeout (10 s).
    let started = Instant::now();
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut silent = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    for s in [&mut slow, &mut silent] {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(8) && waited < Duration::from_secs(19), "closed after {waited:?}");
    }

    // SIGTERM: open sessions get 1001 and the process exits.
    let mut a = raw_websocket(server.port);
    let mut b = raw_websocket(server.port);
    Command::new("kill").args(["-TERM", &server.pid().to_string()]).status().unwrap();
    assert_eq!(close_code(&mut a), Some(1001));
    assert_eq!(close_code(&mut b), Some(1001));
    assert!(server.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
}

/// The kinds of bad input tried, each answered precisely with the session (or the server)
/// going on: JSON, audio, SDP, URLs, pictures, UDP and HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_of_every_kind_is_answered_and_survived() {
    let server = Server::start(&[]);
    let mut ws = voice_live(server.port).await;
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(String, &str)> = vec![
        // JSON
        ("not json".into(), "invalid_json"),
        ("[1, 2]".into(), "invalid_json"),
        (nested, "invalid_json"),
        (json!({"type": "session.update", "session": {"temperature": 1e308}}).to_string(), "invalid_value"),
        (json!({"type": "no.such.event"}).to_string(), "invalid_event_type"),
        (json!({"type": "session.update", "session": {"voice": {"name": ["x"]}}}).to_string(), "invalid_type"),
        // Audio
        (json!({"type": "input_audio_buffer.append", "audio": "!!!not base64"}).to_string(), "invalid_audio"),
        (json!({"type": "input_audio_buffer.append", "audio": B64.encode([1u8, 2, 3])}).to_string(), "invalid_audio"),
        (json!({"type": "input_audio_buffer.commit"}).to_string(), "input_audio_buffer_commit_empty"),
        // SDP
        (json!({"type": "session.avatar.connect", "client_sdp": "v=0 garbage"}).to_string(), "avatar_not_configured"),
        // URLs
        (json!({"type": "session.update", "session": {"avatar": {"character": "lisa", "video": {"background": {"image_url": "file:///etc/passwd"}}}}}).to_string(), "invalid_value"),
        (json!({"type": "session.update", "session": {"avatar": {"type": "photo-avatar", "photo_url": "gopher://127.0.0.1:70/"}}}).to_string(), "invalid_value"),
    ];
    for (frame, code) in &cases {
        ws.send(Message::Text(frame.clone().into())).await.unwrap();
        let e = next_event(&mut ws).await;
        let shown: String = frame.chars().take(80).collect();
        assert_eq!(e["type"], "error", "{shown}: {e}");
        assert_eq!(e["error"]["code"], *code, "{shown}: {e}");
    }
    // SDP with an avatar configured: a precise error, then the session goes on.
    let avatar = json!({"character": "lisa"});
    send(&mut ws, json!({"type": "session.update", "session": {"avatar": avatar}})).await;
    until(&mut ws, "session.updated").await;
    send(&mut ws, json!({"type": "session.avatar.connect", "client_sdp": "v=0\r\nnot an offer"})).await;
    let e = until(&mut ws, "error").await.pop().unwrap();
    assert!(e["error"]["message"].as_str().unwrap().to_lowercase().contains("sdp"), "{e}");
    // Pictures: truncated, and not a picture at all.
    for (url, says) in [
        (format!("data:image/png;base64,{}", &PNG_1X1[..40]), "PNG"),
        ("data:image/png;base64,aGVsbG8=".to_owned(), "not a PNG or a JPEG"),
    ] {
        let mut ws = voice_live(server.port).await;
        let message = background_error(&mut ws, &url).await.expect("an error");
        assert!(message.contains(says), "{message}");
    }
    // UDP garbage at the media and STUN ports: the server carries on.
    let health: Value = serde_json::from_str(&server.get("/health").1).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for key in ["address", "stun"] {
        let addr = health["avatar_media"][key].as_str().unwrap().trim_start_matches("udp:").to_owned();
        for n in 0..200u16 {
            let _ = udp.send_to(&vec![(n % 256) as u8; (n as usize * 7) % 1400 + 1], &addr);
        }
    }
    // HTTP garbage: a bad request line, an enormous header.
    for request in [
        b"BLAH\r\n\r\n".to_vec(),
        [b"GET / HTTP/1.1\r\nX: ".to_vec(), vec![b'a'; 1 << 20], b"\r\n\r\n".to_vec()].concat(),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let _ = s.write_all(&request);
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 4"), "{answer}");
    }
    // Still serving, and this session still answers.
    assert_eq!(server.get("/health").0, 200);
    send(&mut ws, json!({"type": "input_audio_buffer.clear"})).await;
    let cleared = until(&mut ws, "input_audio_buffer.cleared").await;
    assert_eq!(cleared.last().unwrap()["type"], "input_audio_buffer.cleared");
}
