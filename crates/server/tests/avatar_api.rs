//! The TTS-avatar REST API from outside, as a chat app uses it: a speech token from the server's
//! key, `connect` with a real WebRTC offer (the test viewer), two `speak`s heard in order on the
//! avatar's track and data channels, SSML, `stop`, `disconnect`, the ICE token, and clear errors
//! for bad requests.

use brazen_testkit::viewer::Viewer;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::Server;

/// An HTTP request with an optional JSON body and key: (status, JSON body).
fn call(port: u16, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = key.map(|k| format!("api-key: {k}\r\n")).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn wait_for(what: impl Fn() -> String, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{}", what());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_chat_app_connects_speaks_stops_and_disconnects() {
    let server = Server::start(&["--agent", "none", "--api-key", "server-key-123"]);
    let port = server.port;

    // A browser gets a short-lived token from the app's backend, never the server's key.
    assert_eq!(call(port, "GET", "/api/avatar/speech-token", None, None).0, 401);
    let (status, minted) = call(port, "GET", "/api/avatar/speech-token", Some("server-key-123"), None);
    assert_eq!(status, 200, "{minted}");
    let token = minted["token"].as_str().unwrap().to_owned();
    assert_eq!(minted["expires_in"], 600);
    assert_eq!(call(port, "GET", "/api/avatar/speech-token", Some(&token), None).0, 401, "a token mints no token");
    assert_eq!(call(port, "GET", "/api/orders", Some(&token), None).0, 401, "a token reads no admin data");
    let (status, ice) = call(port, "GET", "/api/avatar/ice-token", Some(&token), None);
    assert_eq!(status, 200);
    assert!(ice["Urls"][0].as_str().unwrap().starts_with("stun:127.0.0.1:"), "{ice}");

    // Bad requests are named.
    let (status, e) = call(port, "POST", "/api/avatar/connect", Some(&token), Some(json!({})));
    assert_eq!((status, e["error"]["code"].as_str()), (400, Some("missing_sdp")));
    let (status, e) = call(port, "POST", "/api/avatar/connect", Some(&token), Some(json!({"sdp": "v=0\r\nnonsense"})));
    assert_eq!(status, 400, "{e}");
    let (status, _) =
        call(port, "POST", "/api/avatar/speak", Some(&token), Some(json!({"session_id": "avatar_nope", "text": "hi"})));
    assert_eq!(status, 404);

    // Connect with a plain SDP offer; the answer is plain SDP.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (viewer, offer) = Viewer::offer(socket.local_addr().unwrap(), Instant::now()).unwrap();
    let (status, connected) = call(
        port,
        "POST",
        "/api/avatar/connect",
        Some(&token),
        Some(
            json!({"sdp": offer, "character": "lisa", "style": "casual-sitting", "background": "#FFFFFFFF", "voice": "alloy"}),
        ),
    );
    assert_eq!(status, 200, "{connected}");
    let session = connected["session_id"].as_str().unwrap().to_owned();
    let answer = connected["sdp"].as_str().unwrap();
    assert!(answer.starts_with("v=0") && answer.contains("a=fingerprint:"), "{answer}");
    let viewer = Arc::new(Mutex::new(viewer));
    viewer.lock().unwrap().accept_answer(answer).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let (viewer, stop) = (viewer.clone(), stop.clone());
        std::thread::spawn(move || brazen_testkit::viewer::run(&viewer, &socket, &stop))
    };
    wait_for(|| "the viewer connects".into(), Duration::from_secs(10), || viewer.lock().unwrap().connected.is_some());

    // Two speeches, queued at once, spoken one after the other.
    let speak = |body: Value| call(port, "POST", "/api/avatar/speak", Some(&token), Some(body));
    let (status, first) = speak(json!({"session_id": session, "text": "Here is the first sentence."}));
    assert_eq!(status, 202, "{first}");
    let (status, second) = speak(json!({"session_id": session, "text": "And here is the second one."}));
    assert_eq!(status, 202);
    assert_ne!(first["id"], second["id"]);
    // Queued speech follows on without a pause: one speaking stretch as long as both texts
    // (the stand-in voice gives 40 ms a character).
    let idle_at = |v: &Viewer| {
        v.server_channel_texts.iter().find(|t| t.contains("EVENT_TYPE_SWITCH_TO_IDLE")).map(|t| {
            let e: Value = serde_json::from_str(t).unwrap();
            e["event"]["offset"].as_str().unwrap().trim_end_matches('s').parse::<f64>().unwrap()
        })
    };
    let heard = viewer.clone();
    let what = move || {
        let v = heard.lock().unwrap();
        format!(
            "the speech ends: on the server's channel {:?}, {} audio packets",
            v.server_channel_texts,
            v.audio.len()
        )
    };
    wait_for(what, Duration::from_secs(30), || idle_at(&viewer.lock().unwrap()).is_some());
    let spoken = idle_at(&viewer.lock().unwrap()).unwrap();
    let both = ("Here is the first sentence.".len() + "And here is the second one.".len()) as f64 * 0.040;
    assert!(spoken >= both * 0.95, "both speeches were spoken, in one stretch: {spoken} s for {both} s of text");
    assert!(viewer.lock().unwrap().server_channel_texts.iter().any(|t| t.contains("EVENT_TYPE_SWITCH_TO_SPEAKING")));
    // The switch to idle may overtake the last packets of the voice (the data channel is not
    // paced like the media): wait for them.
    let heard = viewer.clone();
    wait_for(
        move || format!("the voice is on the avatar's audio track: {} packets", heard.lock().unwrap().audio.len()),
        Duration::from_secs(10),
        || viewer.lock().unwrap().audio.len() > 50,
    );

    // SSML: its text is spoken, the caller is told what is not used.
    let (status, ssml) = speak(json!({"session_id": session,
        "ssml": "<speak version='1.0'><voice name='en-US-AvaNeural'>A third, in SSML.</voice></speak>"}));
    assert_eq!(status, 202, "{ssml}");
    assert!(ssml["notes"][0].as_str().unwrap().contains("not used"));
    let (status, _) = speak(json!({"session_id": session, "ssml": "not ssml"}));
    assert_eq!(status, 400);

    // Stop cuts the speech and empties the queue; disconnect ends the session.
    for n in 0..3 {
        speak(json!({"session_id": session, "text": format!("Queued number {n}, which will never be heard in full.")}));
    }
    let (status, stopped) = call(port, "POST", "/api/avatar/stop", Some(&token), Some(json!({"session_id": session})));
    assert_eq!(status, 200);
    assert!(stopped["dropped"].as_u64().unwrap() >= 2, "{stopped}");
    let (status, _) = call(port, "POST", "/api/avatar/disconnect", Some(&token), Some(json!({"session_id": session})));
    assert_eq!(status, 200);
    let (status, _) = speak(json!({"session_id": session, "text": "Anyone there?"}));
    assert_eq!(status, 404, "the session is gone");
    // And really gone: its place among the sessions and its avatar are freed (the refused
    // connects at the start left nothing behind either).
    let open = || serde_json::from_str::<Value>(&server.get("/health").1).unwrap();
    wait_for(
        || format!("the sessions close: {}", open()),
        Duration::from_secs(10),
        || {
            let health = open();
            health["sessions"] == 0 && health["avatar_media"]["peers"] == 0
        },
    );
    stop.store(true, Ordering::Relaxed);
    runner.join().unwrap();
}
