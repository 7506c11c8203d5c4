//! The WebRTC avatar through `brazen serve`, as the Voice Live samples use it: `session.updated`
//! names brazen's STUN server (which answers), the client's offer goes in as base64 JSON and the
//! answer comes back the same way, then a str0m viewer receives the avatar over loopback UDP.
//! With the Piper voice, the mouth moves in the decoded video while the reply plays and rests
//! after; the audio comes over WebRTC, not the socket; the speaking edges arrive on both.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_avatar::character::{Catalog, Rgba};
use brazen_avatar::render::{MOUTH_REGION, Renderer};
use brazen_testkit::viewer::{Viewer, pixels_changed};
use serde_json::{Value, json};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::{Server, send, until};

/// A STUN Binding request with no USERNAME, as a browser sends its `stun:` server.
fn binding_request() -> Vec<u8> {
    let mut m = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    m.extend([9u8; 12]);
    m
}

/// Seconds in an Azure avatar data-channel offset ("1.230s").
fn offset_ms(text: &str) -> f64 {
    let v: Value = serde_json::from_str(text).unwrap();
    v["event"]["offset"].as_str().unwrap().trim_end_matches('s').parse::<f64>().unwrap() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_live_client_gets_a_speaking_avatar_over_webrtc() {
    let server = Server::start(&["--tts", "piper"]);
    let url = format!("ws://127.0.0.1:{}/voice-live/realtime", server.port);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let video = json!({"codec": "h264", "bitrate": 800_000, "resolution": {"width": 640, "height": 480},
        "crop": {"top_left": [160, 0], "bottom_right": [480, 320]}, "background": {"color": "#00B140FF"}});
    send(
        &mut ws,
        json!({"type": "session.update", "session": {
            "turn_detection": null,
            "avatar": {"character": "lisa", "style": "casual-sitting", "customized": false, "video": video}
        }}),
    )
    .await;
    let updated = until(&mut ws, "session.updated").await.pop().unwrap();
    let ice = &updated["session"]["avatar"]["ice_servers"];
    let stun = ice[0]["urls"][0].as_str().unwrap();
    let media: SocketAddr = stun.strip_prefix("stun:").unwrap().parse().unwrap();
    assert_eq!(media.ip().to_string(), "127.0.0.1", "{ice}");

    // brazen's STUN server answers at once with the address the request came from.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    socket.send_to(&binding_request(), media).unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..2], &[0x01, 0x01], "a Binding success response");
    let xport = u16::from_be_bytes([buf[26], buf[27]]) ^ 0x2112;
    assert!(n >= 32 && xport == local.port(), "XOR-MAPPED-ADDRESS names our port");

    // Bad offers are errors; the session goes on.
    send(&mut ws, json!({"type": "session.avatar.connect", "client_sdp": "not an offer"})).await;
    let e = until(&mut ws, "error").await.pop().unwrap();
    assert_eq!(e["error"]["param"], "client_sdp", "{e}");
    let vp8_only = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n";
    send(&mut ws, json!({"type": "session.avatar.connect", "client_sdp": B64.encode(json!({"type": "offer", "sdp": vp8_only}).to_string())})).await;
    let e = until(&mut ws, "error").await.pop().unwrap();
    assert_eq!(e["error"]["code"], "unsupported_feature", "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("H.264"), "{e}");

    // The offer as the samples send it.
    let (viewer, offer) = Viewer::offer(local, Instant::now()).unwrap();
    let client_sdp = B64.encode(json!({"type": "offer", "sdp": offer}).to_string());
    send(&mut ws, json!({"type": "session.avatar.connect", "client_sdp": client_sdp})).await;
    let connecting = until(&mut ws, "session.avatar.connecting").await.pop().unwrap();
    let answer: Value =
        serde_json::from_slice(&B64.decode(connecting["server_sdp"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(answer["type"], "answer");
    let candidate_port: u16 = answer["sdp"]
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("a=candidate:")?.split_whitespace().nth(5)?.parse().ok())
        .unwrap();
    assert_ne!(candidate_port, media.port(), "Chromium drops ICE answers coming from its STUN server's address");
    let viewer = Arc::new(Mutex::new(viewer));
    viewer.lock().unwrap().accept_answer(answer["sdp"].as_str().unwrap()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let (viewer, stop) = (viewer.clone(), stop.clone());
        std::thread::spawn(move || brazen_testkit::viewer::run(&viewer, &socket, &stop))
    };
    let waited = Instant::now();
    while viewer.lock().unwrap().connected.is_none() {
        assert!(waited.elapsed() < Duration::from_secs(5), "the viewer did not connect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A second connect on the same session is refused.
    send(&mut ws, json!({"type": "session.avatar.connect", "client_sdp": client_sdp})).await;
    let e = until(&mut ws, "error").await.pop().unwrap();
    assert_eq!(e["error"]["code"], "avatar_already_connected", "{e}");

    // Let the idle avatar run a while, then have it speak.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let text = "Your blue jacket ships from Portland on Thursday morning.";
    send(&mut ws, json!({"type": "response.create", "response": {"pre_generated_assistant_message": text}})).await;
    let events = until(&mut ws, "session.avatar.switch_to_idle").await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"session.avatar.switch_to_speaking"), "{kinds:?}");
    assert!(kinds.contains(&"response.audio_transcript.delta"), "{kinds:?}");
    assert!(!kinds.contains(&"response.audio.delta"), "the audio goes over WebRTC: {kinds:?}");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.store(true, Ordering::Relaxed);
    runner.join().unwrap();

    let v = Arc::try_unwrap(viewer).ok().expect("the viewer thread has ended").into_inner().unwrap();
    let speaking_at = v.texts.iter().find(|t| t.contains("EVENT_TYPE_SWITCH_TO_SPEAKING")).map(|t| offset_ms(t));
    let idle_at = v.texts.iter().find(|t| t.contains("EVENT_TYPE_SWITCH_TO_IDLE")).map(|t| offset_ms(t));
    let (Some(from), Some(to)) = (speaking_at, idle_at) else { panic!("data channel: {:?}", v.texts) };
    assert!(to - from > 2_000.0, "the sentence takes seconds to say: {from}–{to} ms");
    assert!(v.audio.len() as f64 > (to + 500.0) / 20.0 * 0.8, "{} audio packets", v.audio.len());
    // Where the mouth is in the 320×320 crop of the 640×480 picture.
    let look = Catalog::built_in().choose("lisa", Some("casual-sitting")).unwrap().look;
    let region = Renderer::cropped(look, (640, 480), ((160, 0), (480, 320)), Rgba([0, 177, 64, 255]))
        .unwrap()
        .region_px(MOUTH_REGION);
    let frames = v.decode(region).unwrap();
    assert!(frames.iter().all(|f| f.size == (320, 320)), "the crop is sent");
    let changes = |a: f64, b: f64| -> Vec<usize> {
        frames
            .windows(2)
            .filter(|w| w[0].at_ms >= a && w[1].at_ms <= b)
            .map(|w| pixels_changed(&w[0].luma, &w[1].luma, 24))
            .collect()
    };
    let speaking = changes(from + 40.0, to - 40.0);
    let idle = [changes(0.0, from - 80.0), changes(to + 300.0, f64::INFINITY)].concat();
    assert!(speaking.len() > 40 && idle.len() > 15, "{} speaking, {} idle frames", speaking.len(), idle.len());
    // A still mouth changes a few pixels as the encoder's quality settles and the head sways;
    // a speaking one, hundreds.
    let moving = speaking.iter().filter(|&&n| n > 40).count();
    assert!(moving * 2 > speaking.len(), "the mouth moves while speaking: {speaking:?}");
    assert!(idle.iter().all(|&n| n <= 40), "and rests while idle: {idle:?}");

    // When the session ends, its peer is cleaned up.
    ws.close(None).await.unwrap();
    let waited = Instant::now();
    loop {
        let (_, body) = server.get("/health");
        let health: Value = serde_json::from_str(&body).unwrap();
        if health["avatar_media"]["peers"] == 0 {
            break;
        }
        assert!(waited.elapsed() < Duration::from_secs(5), "{health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
