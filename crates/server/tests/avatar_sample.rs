//! The official Voice Live avatar sample's backend protocol (SEED_APPS.md §1), spoken by a client
//! of our own message for message, as its page does: the page's files from `web_root`,
//! `/api/config`, and `/ws/{clientId}` with `start_session`, `send_text`, `audio_chunk`,
//! `avatar_sdp_offer` (a real WebRTC offer, base64 JSON both ways), `stop_session` and a second
//! `start_session` on the same socket; bad messages get `error` and the page goes on. And a
//! photo avatar, from a portrait in the characters folder, moved live by `update_scene` as the
//! page's sliders send it.

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
    assert_eq!(server.get("/%2e%2e/%2e%2e/etc/passwd").0, 404);
    assert_eq!(server.get("/%ff.js").0, 404);
    std::fs::write(root.join("my page.css"), "body {}").unwrap();
    let (status, headers, css) = server.get_with_headers("/my%20page.css");
    assert!(
        status == 200 && headers.contains("text/css") && css == "body {}",
        "a name with a space: {status} {headers}"
    );
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

/// A portrait as a PNG: a skin-coloured face (with darker eyes and mouth) on white.
fn portrait_png(size: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((size * size * 3) as usize);
    let c = size as f64 / 2.0;
    for y in 0..size {
        for x in 0..size {
            let (dx, dy) = ((x as f64 - c) / (0.36 * size as f64), (y as f64 - c) / (0.46 * size as f64));
            let eye =
                [0.38, 0.62].iter().any(|ex| (x as f64 / size as f64 - ex).hypot(y as f64 / size as f64 - 0.42) < 0.04);
            let mouth = ((x as f64 / size as f64) - 0.5).abs() < 0.08 && ((y as f64 / size as f64) - 0.66).abs() < 0.02;
            let pixel = if eye || mouth {
                [0x40, 0x20, 0x20]
            } else if dx * dx + dy * dy < 1.0 {
                [0xe0, 0xb0, 0x90]
            } else {
                [0xff, 0xff, 0xff]
            };
            rgb.extend_from_slice(&pixel);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size, size);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap().write_image_data(&rgb).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_scene_moves_the_photo_avatar_live() {
    let characters = std::env::temp_dir().join(format!("brazen-s1-photo-{}", std::process::id()));
    std::fs::create_dir_all(&characters).unwrap();
    std::fs::write(characters.join("anika.png"), portrait_png(384)).unwrap();
    let server =
        Server::start_with_env(&["--agent", "none"], &[("BRAZEN_CHARACTERS_DIR", characters.to_str().unwrap())]);
    let (mut ws, _) = common::connect(server.port, "/ws/client-photo", &[]).await.unwrap();
    let mut cfg = config(true, false);
    cfg["isPhotoAvatar"] = json!(true);
    cfg["avatarName"] = json!("Anika");
    // The page's units: percent and degrees; amplitude low, so the idle head barely moves.
    cfg["photoScene"] = json!({"zoom": 100, "positionX": 0, "positionY": 0, "rotationX": 0, "rotationY": 0, "rotationZ": 0, "amplitude": 10});
    send(&mut ws, json!({"type": "start_session", "config": cfg})).await;
    let started = until(&mut ws, "session_started").await.pop().unwrap();
    assert_eq!(started["status"], "success", "{started}");

    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (viewer, offer) = Viewer::offer(socket.local_addr().unwrap(), Instant::now()).unwrap();
    send(&mut ws, json!({"type": "avatar_sdp_offer", "clientSdp": B64.encode(json!({"type": "offer", "sdp": offer}).to_string())})).await;
    let answered = until(&mut ws, "avatar_sdp_answer").await.pop().unwrap();
    let answer: Value = serde_json::from_slice(&B64.decode(answered["serverSdp"].as_str().unwrap()).unwrap()).unwrap();
    let viewer = std::sync::Arc::new(std::sync::Mutex::new(viewer));
    viewer.lock().unwrap().accept_answer(answer["sdp"].as_str().unwrap()).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runner = {
        let (viewer, stop) = (viewer.clone(), stop.clone());
        std::thread::spawn(move || brazen_testkit::viewer::run(&viewer, &socket, &stop))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while viewer.lock().unwrap().video.len() < 40 {
        assert!(Instant::now() < deadline, "the photo avatar's video does not arrive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The page's slider: zoomed out to 70 % and moved half a picture to the right (normalised
    // units, as update_scene sends them).
    let moved_at = Instant::now();
    let scene = json!({"zoom": 0.7, "position_x": 0.5, "position_y": 0.0, "rotation_x": 0.0, "rotation_y": 0.0, "rotation_z": 0.0, "amplitude": 0.1});
    send(&mut ws, json!({"type": "update_scene", "avatar": {"type": "photo-avatar", "model": "vasa-1", "character": "anika", "scene": scene}})).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    runner.join().unwrap();
    // No reply to the page but no error either.
    while let Some(m) = common::next_within(&mut ws, Duration::from_millis(200)).await {
        assert!(m["type"] != "error" && m["type"] != "session_error", "{m}");
    }

    let frames = viewer.lock().unwrap().decode((0, 0, 4_096, 4_096)).unwrap();
    let before: Vec<_> = frames.iter().filter(|f| f.arrived < moved_at).collect();
    let after: Vec<_> = frames.iter().filter(|f| f.arrived > moved_at + Duration::from_millis(800)).collect();
    assert!(before.len() > 20 && after.len() > 5, "{} frames before, {} after", before.len(), after.len());
    let (w, h) = before[0].size;
    let changed = |a: &[u8], b: &[u8]| brazen_testkit::viewer::pixels_changed(a, b, 40) as f64 / (w * h) as f64;
    let idle = changed(&before[before.len() - 20].luma, &before[before.len() - 1].luma);
    let moved = changed(&before[before.len() - 1].luma, &after[after.len() - 1].luma);
    assert!(idle < 0.03, "the idle portrait holds still: {:.1} % of the picture changed", idle * 100.0);
    assert!(moved > 0.10, "the scene moved the portrait: {:.1} % of the picture changed", moved * 100.0);
    // Moved to the right: the face's middle (its pixels darker than the white background).
    let face_x = |luma: &[u8]| {
        let xs: Vec<usize> = luma.iter().enumerate().filter(|(_, l)| **l < 200).map(|(i, _)| i % w).collect();
        xs.iter().sum::<usize>() as f64 / xs.len().max(1) as f64
    };
    let (from, to) = (face_x(&before[before.len() - 1].luma), face_x(&after[after.len() - 1].luma));
    assert!(to > from + 0.05 * w as f64, "the face moved right: its middle from x {from:.0} to {to:.0} of {w}");
    std::fs::remove_dir_all(&characters).ok();
}
