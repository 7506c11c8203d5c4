//! `brazen serve` over real sockets: endpoints, authentication, dialects, and bad input that
//! must be answered with `error` events while the session keeps working.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Bytes, Message};

mod common;
use common::{Server, Ws, connect, expect_error, next_event, send, until};

/// The audio bytes of the `kind` deltas among `events`.
fn audio_bytes(events: &[Value], kind: &str) -> Vec<u8> {
    events
        .iter()
        .filter(|e| e["type"] == kind)
        .flat_map(|e| B64.decode(e["delta"].as_str().unwrap()).unwrap())
        .collect()
}

async fn text_turn(ws: &mut Ws, text: &str) -> Vec<Value> {
    send(ws, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})).await;
    send(ws, json!({"type": "response.create", "response": {"modalities": ["text"]}})).await;
    until(ws, "response.done").await
}

#[test]
fn health_metrics_and_unknown_paths() {
    let server = Server::start(&[]);
    let (status, body) = server.get("/health");
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["engines"],
        json!({"vad": "energy", "turn": "none", "turn_judge": "none", "asr": "echo", "llm": "echo", "tts": "tone"})
    );
    let (status, body) = server.get("/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("brazen_sessions_active 0"), "{body}");
    let (status, body) = server.get("/nope");
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "not_found");
    let (status, body) = server.get("/v1/realtime");
    assert_eq!(status, 400, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "websocket_required");
}

#[test]
fn the_browser_app_and_its_catalog_are_served() {
    let server = Server::start(&["--api-key", "k"]);
    let (status, head, page) = server.get_with_headers("/");
    if status == 503 {
        // A binary built before `npm run build` in web/: the page says how to get the app.
        assert!(page.contains("npm ci &amp;&amp; npm run build"), "{page}");
        return;
    }
    assert_eq!(status, 200, "{page}");
    assert!(head.contains("content-type: text/html") && head.contains("cache-control: no-cache"), "{head}");
    assert!(page.contains("<div id=\"app\">"), "{page}");
    let script = page.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("the page loads a script");
    assert!(script.starts_with("/assets/"), "{script}");
    let (status, head, js) = server.get_with_headers(script);
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/javascript") && head.contains("immutable"), "{head}");
    assert!(js.contains("voice-live/realtime"), "the bundle is the app's");
    let (status, body) = server.get("/assets/missing.js");
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"], "not_found");

    // The catalog needs no key: it names what a client may choose, nothing secret.
    let (status, body) = server.get("/api/catalog");
    assert_eq!(status, 200, "{body}");
    let catalog: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(catalog["auth"], true);
    assert_eq!(catalog["tts"], "tone");
    let characters = catalog["characters"].as_array().unwrap();
    assert!(
        characters.iter().any(|c| c["name"] == "ava" && c["styles"].as_array().is_some_and(|s| !s.is_empty())),
        "{body}"
    );
    let stun = catalog["ice_servers"][0]["urls"][0].as_str().unwrap();
    assert!(stun.starts_with("stun:127.0.0.1:"), "{body}");
}

#[test]
fn without_keys_only_loopback_is_bound() {
    let server = Server::start(&["--host", "0.0.0.0"]);
    assert!(server.port > 0, "Server::start checked the address is 127.0.0.1");
}

#[tokio::test]
async fn api_keys_are_required_in_any_of_the_four_places() {
    let server = Server::start(&["--api-key", "s3cret", "--api-key", "other"]);
    let port = server.port;
    let refused = connect(port, "/v1/realtime", &[]).await.unwrap_err();
    assert!(refused.starts_with("401") && refused.contains("unauthorized"), "{refused}");
    let wrong = connect(port, "/v1/realtime", &[("api-key", "nope")]).await.unwrap_err();
    assert!(wrong.starts_with("401"), "{wrong}");
    for (path, headers) in [
        ("/voice-live/realtime", vec![("api-key", "s3cret")]),
        ("/v1/realtime", vec![("authorization", "Bearer other")]),
        ("/voice-live/realtime?api-version=2026-07-15&api-key=s3cret", vec![]),
    ] {
        let (mut ws, _) = connect(port, path, &headers).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(next_event(&mut ws).await["type"], "session.created");
    }
    let (mut ws, proto) = connect(
        port,
        "/v1/realtime?model=gpt-realtime",
        &[("sec-websocket-protocol", "realtime, openai-insecure-api-key.s3cret, openai-beta.realtime-v1")],
    )
    .await
    .unwrap();
    assert_eq!(proto.as_deref(), Some("realtime"));
    assert_eq!(next_event(&mut ws).await["session"]["type"], "realtime");
}

#[tokio::test]
async fn each_path_speaks_its_dialect() {
    let server = Server::start(&[]);
    let cases = [
        ("/some/prefix/voice-live/realtime", vec![], "response.text.delta", "conversation.item.created"),
        ("/v1/realtime", vec![("openai-beta", "realtime=v1")], "response.text.delta", "conversation.item.created"),
        ("/v1/realtime", vec![], "response.output_text.delta", "conversation.item.added"),
        ("/openai/v1/realtime", vec![], "response.output_text.delta", "conversation.item.added"),
        (
            "/openai/realtime?api-version=2025-04-01-preview&deployment=d",
            vec![],
            "response.output_text.delta",
            "conversation.item.added",
        ),
        (
            "/openai/realtime?api-version=2025-04-01-preview",
            vec![("openai-beta", "realtime=v1")],
            "response.text.delta",
            "conversation.item.created",
        ),
    ];
    for (path, headers, delta, created) in cases {
        let (mut ws, _) = connect(server.port, path, &headers).await.unwrap();
        until(&mut ws, "session.created").await;
        let events = text_turn(&mut ws, "hi").await;
        let types: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
        assert!(types.contains(&delta.to_owned()) && types.contains(&created.to_owned()), "{path}: {types:?}");
        let answer: String =
            events.iter().filter(|e| e["type"] == delta).map(|e| e["delta"].as_str().unwrap()).collect();
        assert_eq!(answer, "You said: hi", "{path}");
    }
}

#[tokio::test]
async fn a_ga_session_update_switches_the_connection_to_ga() {
    let server = Server::start(&[]);
    let (mut ws, _) = connect(server.port, "/voice-live/realtime", &[]).await.unwrap();
    until(&mut ws, "session.created").await;
    send(&mut ws, json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}))
        .await;
    let updated = until(&mut ws, "session.updated").await.pop().unwrap();
    assert_eq!(updated["session"]["type"], "realtime");
    let events = text_turn(&mut ws, "x").await;
    assert!(events.iter().any(|e| e["type"] == "response.output_text.done"));
}

#[tokio::test]
async fn a_flat_session_update_switches_a_ga_connection_to_beta() {
    let server = Server::start(&[]);
    let (mut ws, _) = connect(server.port, "/openai/realtime?api-version=2024-10-01-preview", &[]).await.unwrap();
    until(&mut ws, "session.created").await;
    send(&mut ws, json!({"type": "session.update", "session": {"modalities": ["text"], "voice": "alloy"}})).await;
    let updated = until(&mut ws, "session.updated").await.pop().unwrap();
    assert_eq!(updated["session"]["modalities"], json!(["text"]));
    let events = text_turn(&mut ws, "x").await;
    assert!(events.iter().any(|e| e["type"] == "response.text.done"));
}

#[tokio::test]
async fn bad_input_is_answered_and_the_session_survives() {
    let server = Server::start(&[]);
    let (mut ws, _) = connect(server.port, "/v1/realtime", &[("openai-beta", "realtime=v1")]).await.unwrap();
    until(&mut ws, "conversation.created").await;

    ws.send(Message::Text("{not json".into())).await.unwrap();
    expect_error(&mut ws, "invalid_json").await;
    send(&mut ws, json!({"type": "bogus.event", "event_id": "evt_1"})).await;
    assert_eq!(expect_error(&mut ws, "invalid_event_type").await["error"]["event_id"], "evt_1");
    send(&mut ws, json!({"type": "session.update", "session": {"temperature": "hot"}})).await;
    assert_eq!(expect_error(&mut ws, "invalid_value").await["error"]["param"], "session.temperature");
    send(&mut ws, json!({"type": "session.update", "session": {"turn_detection": []}})).await;
    assert_eq!(expect_error(&mut ws, "invalid_type").await["error"]["param"], "session.turn_detection");
    send(&mut ws, json!({"type": "input_audio_buffer.append", "audio": "!!!"})).await;
    expect_error(&mut ws, "invalid_audio").await;
    send(&mut ws, json!({"type": "input_audio_buffer.append", "audio": B64.encode([0u8; 3])})).await;
    expect_error(&mut ws, "invalid_audio").await;
    send(&mut ws, json!({"type": "input_audio_buffer.commit", "event_id": "c"})).await;
    expect_error(&mut ws, "input_audio_buffer_commit_empty").await;
    send(
        &mut ws,
        json!({"type": "conversation.item.truncate", "item_id": "missing", "content_index": 0, "audio_end_ms": 10}),
    )
    .await;
    expect_error(&mut ws, "item_not_found").await;
    ws.send(Message::Binary(Bytes::from_static(&[0xff, 0xfe, 0x00]))).await.unwrap();
    expect_error(&mut ws, "unsupported_frame").await;

    // A response with audio (2 s of it, paced: in progress for 1.5 s), truncated beyond its end,
    // and a second response while it runs.
    send(&mut ws, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello there, how are you today?"}]}})).await;
    send(&mut ws, json!({"type": "response.create"})).await;
    send(&mut ws, json!({"type": "response.create", "event_id": "second"})).await;
    let events = until(&mut ws, "response.done").await;
    let rejected = events.iter().find(|e| e["type"] == "error").expect("the second response.create is refused");
    assert_eq!(rejected["error"]["code"], "conversation_already_has_active_response");
    let item_id = events.iter().find(|e| e["type"] == "response.output_item.done").unwrap()["item"]["id"].clone();
    send(
        &mut ws,
        json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 999_999}),
    )
    .await;
    assert_eq!(expect_error(&mut ws, "invalid_truncate").await["error"]["param"], "audio_end_ms");

    // A frame over 15 MiB.
    let huge = json!({"type": "input_audio_buffer.append", "audio": "A".repeat(15 * 1024 * 1024 + 512 * 1024)});
    send(&mut ws, huge).await;
    expect_error(&mut ws, "frame_too_large").await;

    // A flood: more events than the burst allows are dropped with one rate-limit error.
    for _ in 0..2_500 {
        send(&mut ws, json!({"type": "input_audio_buffer.clear"})).await;
    }
    let mut cleared = 0;
    let mut limited = 0;
    while let Ok(Some(frame)) = tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
        let Message::Text(t) = frame.unwrap() else { continue };
        let e: Value = serde_json::from_str(&t).unwrap();
        match e["type"].as_str().unwrap() {
            "input_audio_buffer.cleared" => cleared += 1,
            "error" => {
                assert_eq!(e["error"]["code"], "rate_limit_exceeded");
                limited += 1;
            }
            other => panic!("{other}"),
        }
    }
    assert!(limited >= 1 && (2_000..2_500).contains(&cleared), "{cleared} cleared, {limited} rate-limit errors");

    // Pings are answered, and the same socket still completes a normal turn.
    ws.send(Message::Ping(Bytes::from_static(b"are you there"))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await; // let the token bucket refill
    let mut pong = false;
    let events = {
        send(&mut ws, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "still there?"}]}})).await;
        send(&mut ws, json!({"type": "response.create", "response": {"modalities": ["text"]}})).await;
        let mut seen = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap() {
                Message::Pong(p) => pong = p.as_ref() == b"are you there",
                Message::Text(t) => {
                    let e: Value = serde_json::from_str(&t).unwrap();
                    let done = e["type"] == "response.done";
                    seen.push(e);
                    if done {
                        break seen;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
    };
    assert!(pong, "the ping was answered");
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(done["response"]["output"][0]["content"][0]["text"], "You said: still there?");
    let (_, metrics) = server.get("/metrics");
    assert!(metrics.contains("brazen_error_events_total{code=\"invalid_json\"} 1"), "{metrics}");
}

#[test]
fn models_cli_lists_the_manifest_and_names_unknown_models() {
    let dir = std::env::temp_dir().join(format!("brazen-models-cli-{}", std::process::id()));
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_brazen")).args(args).output().expect("brazen runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir_arg = dir.to_str().unwrap();
    let (code, stdout, _) = run(&["models", "list", "--dir", dir_arg]);
    assert_eq!(code, Some(0));
    for name in ["silero-vad", "onnxruntime", "whisper-tiny-en", "piper-en-us-joe-medium"] {
        let line = stdout.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} listed: {stdout}"));
        assert!(line.contains("missing"), "{line}");
    }
    let (code, _, stderr) = run(&["models", "install", "--only", "no-such-model", "--dir", dir_arg]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no model named \"no-such-model\""), "{stderr}");
    assert!(!dir.join("no-such-model").exists());
}

#[tokio::test]
async fn silero_vad_serves_a_spoken_turn() {
    // The models come from the registries into the default store (once).
    let server = Server::start(&["--vad", "silero"]);
    assert_eq!(server.engines()["vad"], "silero");
    let out = Command::new("espeak-ng").args(["-v", "en-us", "--stdout", "Where is my order?"]).output().unwrap();
    let wav = out.stdout;
    let rate = u32::from_le_bytes(wav[24..28].try_into().unwrap());
    let data = wav.windows(4).position(|w| w == b"data").unwrap() + 8;
    let speech: Vec<i16> = wav[data..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    // To 24 kHz by repeating/skipping samples: plenty for a detector.
    let at24: Vec<i16> =
        (0..speech.len() * 24_000 / rate as usize).map(|i| speech[i * rate as usize / 24_000]).collect();
    let audio = [vec![0i16; 12_000], at24, vec![0i16; 36_000]].concat();
    let (mut ws, _) = connect(server.port, "/v1/realtime", &[("openai-beta", "realtime=v1")]).await.unwrap();
    until(&mut ws, "session.created").await;
    for chunk in audio.chunks(2_400) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        send(&mut ws, json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)})).await;
    }
    let events = until(&mut ws, "input_audio_buffer.committed").await;
    let started = events.iter().find(|e| e["type"] == "input_audio_buffer.speech_started").expect("speech detected");
    let start_ms = started["audio_start_ms"].as_u64().unwrap();
    assert!((400..800).contains(&start_ms), "speech starts at 500 ms, detected at {start_ms}");
    assert_eq!(events.iter().filter(|e| e["type"] == "input_audio_buffer.speech_started").count(), 1);
}

#[test]
fn without_models_or_registries_serve_says_what_to_run() {
    let dir = std::env::temp_dir().join(format!("brazen-no-models-{}", std::process::id()));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_brazen"))
        .args(["serve", "--port", "0", "--vad", "silero", "--models-dir", dir.to_str().unwrap()])
        .env("BRAZEN_PYPI_URL", format!("http://127.0.0.1:{closed}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("brazen models install --only silero-vad"), "{stderr}");
    assert!(stderr.contains("--vad energy"), "{stderr}");
    assert!(out.stdout.is_empty(), "it never said it was listening");
    assert!(!dir.join("silero-vad").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_turn_judge_is_refused_with_the_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_brazen"))
        .args(["serve", "--port", "0", "--vad", "energy", "--asr", "echo", "--tts", "tone"])
        .args(["--llm", "qwen2.5-coder-1.5b", "--turn-judge", "fastest"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r#"turn_judge = "fastest" is not an option"#), "{stderr}");
    assert!(stderr.contains("smollm2-135m") && stderr.contains(".gguf"), "{stderr}");
    assert!(out.stdout.is_empty(), "it never said it was listening");
}

#[tokio::test]
async fn piper_speaks_the_reply() {
    let server = Server::start(&["--tts", "piper"]);
    assert_eq!(server.engines()["tts"], "piper");
    let (mut ws, _) = connect(server.port, "/v1/realtime", &[]).await.unwrap();
    until(&mut ws, "session.created").await;
    send(&mut ws, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Is my parcel on its way?"}]}})).await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let events = until(&mut ws, "response.done").await;
    let pcm: Vec<i16> = audio_bytes(&events, "response.output_audio.delta")
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let transcript: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_audio_transcript.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(transcript, "You said: Is my parcel on its way?");
    let seconds = pcm.len() as f64 / 24_000.0;
    let tone_seconds = transcript.len() as f64 * 0.040;
    assert!((1.0..5.0).contains(&seconds) && (seconds - tone_seconds).abs() > 0.05, "{seconds} s of audio");
    let rms = (pcm.iter().map(|s| (*s as f64).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt();
    assert!(rms > 500.0, "audible speech, rms {rms}");
    assert_eq!(events.last().unwrap()["response"]["status"], "completed");
}

/// The audio of `text` spoken by the server's voice with `voice` settings (Voice Live).
async fn spoken(port: u16, voice: Value, text: &str) -> Vec<i16> {
    let (mut ws, _) = connect(port, "/voice-live/realtime", &[]).await.unwrap();
    until(&mut ws, "session.created").await;
    send(&mut ws, json!({"type": "session.update", "session": {"voice": voice}})).await;
    until(&mut ws, "session.updated").await;
    send(&mut ws, json!({"type": "response.create", "response": {"pre_generated_assistant_message": text}})).await;
    let events = until(&mut ws, "response.done").await;
    audio_bytes(&events, "response.audio.delta").chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// Sign changes per second of 24 kHz audio: scales with every frequency in it.
fn crossings_per_second(pcm: &[i16]) -> f64 {
    let n = pcm.windows(2).filter(|w| (w[0] >= 0) != (w[1] >= 0)).count();
    n as f64 / (pcm.len() as f64 / 24_000.0)
}

#[tokio::test]
async fn piper_honours_pitch_and_rate() {
    let server = Server::start(&["--tts", "piper"]);
    let text = "Your parcel left our warehouse this morning and arrives tomorrow.";
    let voice = |extra: Value| {
        let mut v = json!({"type": "azure-standard", "name": "en-US-AvaNeural"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    let plain = spoken(server.port, voice(json!({})), text).await;
    let high = spoken(server.port, voice(json!({"pitch": "+25%"})), text).await;
    let fast = spoken(server.port, voice(json!({"rate": 1.5})), text).await;
    let length = high.len() as f64 / plain.len() as f64;
    assert!((0.85..1.15).contains(&length), "pitch keeps the length: ×{length:.2}");
    let rise = crossings_per_second(&high) / crossings_per_second(&plain);
    assert!((1.12..1.4).contains(&rise), "+25% raises every frequency: ×{rise:.2}");
    let shorter = fast.len() as f64 / plain.len() as f64;
    assert!((0.55..0.8).contains(&shorter), "rate 1.5 speaks faster: ×{shorter:.2}");
}

#[tokio::test]
async fn piper_word_timestamps_in_voice_live() {
    let server = Server::start(&["--tts", "piper"]);
    let (mut ws, _) = connect(server.port, "/voice-live/realtime", &[]).await.unwrap();
    until(&mut ws, "session.created").await;
    send(&mut ws, json!({"type": "session.update", "session": {"output_audio_timestamp_types": ["word"]}})).await;
    until(&mut ws, "session.updated").await;
    send(&mut ws, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Track order 5423198 please"}]}})).await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let events = until(&mut ws, "response.done").await;
    let stamps: Vec<&Value> = events.iter().filter(|e| e["type"] == "response.audio_timestamp.delta").collect();
    let words: Vec<&str> = stamps.iter().map(|e| e["text"].as_str().unwrap()).collect();
    assert_eq!(words, ["You", "said:", "Track", "order", "5423198", "please"]);
    let offsets: Vec<u64> = stamps.iter().map(|e| e["audio_offset_ms"].as_u64().unwrap()).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    assert!(stamps.iter().all(|e| e["timestamp_type"] == "word" && e["audio_duration_ms"].as_u64().unwrap() > 0));
    // The number is read digit by digit: it takes longer than the word before it.
    assert!(stamps[4]["audio_duration_ms"].as_u64() > stamps[3]["audio_duration_ms"].as_u64());
    let audio_ms = audio_bytes(&events, "response.audio.delta").len() as u64 / 48;
    let last = stamps.last().unwrap();
    let end = last["audio_offset_ms"].as_u64().unwrap() + last["audio_duration_ms"].as_u64().unwrap();
    assert!(end.abs_diff(audio_ms) <= 20, "words end at {end} ms, audio is {audio_ms} ms");
    assert!(events.iter().any(|e| e["type"] == "response.audio_timestamp.done"));
    let transcript: String = events
        .iter()
        .filter(|e| e["type"] == "response.audio_transcript.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(transcript, "You said: Track order 5423198 please");
}

#[tokio::test]
async fn kokoro_speaks_in_the_sessions_voice() {
    let server = Server::start(&["--tts", "kokoro"]);
    let (mut ws, _) = connect(server.port, "/voice-live/realtime", &[]).await.unwrap();
    until(&mut ws, "session.created").await;
    let mut spoken = Vec::new();
    for voice in ["af_heart", "bm_george"] {
        send(
            &mut ws,
            json!({"type": "session.update", "session": {"voice": {"type": "azure-standard", "name": voice}}}),
        )
        .await;
        until(&mut ws, "session.updated").await;
        send(
            &mut ws,
            json!({"type": "response.create", "response": {"pre_generated_assistant_message": "Your order is ready."}}),
        )
        .await;
        let events = until(&mut ws, "response.done").await;
        let pcm = audio_bytes(&events, "response.audio.delta");
        assert!(pcm.len() > 48_000, "{voice}: {} bytes", pcm.len());
        spoken.push(pcm);
    }
    assert_ne!(spoken[0], spoken[1], "two voices, two sounds");
}

#[tokio::test]
async fn characters_from_the_characters_folder_are_offered() {
    let dir = std::env::temp_dir().join(format!("brazen-characters-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let robot = r##"name = "robo"
description = "A friendly robot."
[styles.chrome]
skin = "#c0c8d0"
hair = "#808890"
hair_style = "shaved"
brows = "#303030"
eyes = "#20a0ff"
lips = "#505860"
top = "#303840"
top_style = "sweater"
"##;
    std::fs::write(dir.join("robo.toml"), robot).unwrap();
    // A portrait: the photo avatar "anika".
    let jpeg = concat!(env!("CARGO_MANIFEST_DIR"), "/../avatar/tests/data/red-blue.jpg");
    std::fs::copy(jpeg, dir.join("Anika.jpg")).unwrap();
    let server = Server::start_with_env(&[], &[("BRAZEN_CHARACTERS_DIR", dir.to_str().unwrap())]);
    let (mut ws, _) = connect(server.port, "/voice-live/realtime", &[]).await.unwrap();
    until(&mut ws, "session.created").await;
    send(&mut ws, json!({"type": "session.update", "session": {"avatar": {"character": "robo", "style": "chrome"}}}))
        .await;
    until(&mut ws, "session.updated").await;
    send(&mut ws, json!({"type": "session.update", "session": {"avatar": {"character": "robot"}}})).await;
    let e = expect_error(&mut ws, "avatar_verification_failed").await;
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("robo") && message.contains("lisa"), "{message}");
    // The installed portrait is a photo avatar by its name; one not installed is an error that
    // names the installed ones.
    let photo =
        json!({"type": "photo-avatar", "character": "anika", "model": "vasa-1", "output_protocol": "websocket"});
    send(&mut ws, json!({"type": "session.update", "session": {"avatar": photo}})).await;
    until(&mut ws, "response.video.delta").await;
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"avatar": {"type": "photo-avatar", "character": "sakura"}}}),
    )
    .await;
    let e = expect_error(&mut ws, "invalid_value").await;
    assert_eq!(e["error"]["param"], "session.avatar.photo_url", "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("anika"), "{e}");
    drop(server);

    // A description that does not parse stops the server with the file named; so does a
    // portrait that is not a picture.
    let refused = |file: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_brazen"))
            .args(["serve", "--port", "0", "--vad", "energy", "--asr", "echo", "--llm", "echo", "--tts", "tone"])
            .env("BRAZEN_CHARACTERS_DIR", &dir)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(file), "{stderr}");
    };
    std::fs::write(dir.join("broken.toml"), "name = \"broken\"\n[styles.x]\nskin = \"pink\"\n").unwrap();
    refused("broken.toml");
    std::fs::remove_file(dir.join("broken.toml")).unwrap();
    std::fs::write(dir.join("broken.png"), b"not a png").unwrap();
    refused("broken.png");
    std::fs::remove_dir_all(&dir).ok();
}
