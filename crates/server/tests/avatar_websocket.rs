//! The WebSocket avatar through `brazen serve`: `output_protocol: "websocket"` starts the video
//! with the `session.update`; it arrives as `response.video.delta` (fragmented MP4, an
//! initialisation segment first, then a fragment per frame) and stops when the avatar is removed.
//! A background picture the server cannot fetch is an error naming the field, and the video goes on.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use std::time::Duration;

mod common;
use common::{Server, next_within as next, send};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_video_streams_as_mp4_deltas_until_the_avatar_is_removed() {
    let server = Server::start(&[]);
    let url = format!("ws://127.0.0.1:{}/voice-live/realtime", server.port);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // Nothing listens on port 9 of loopback.
    let video = json!({"resolution": {"width": 320, "height": 240},
        "background": {"image_url": "http://127.0.0.1:9/office.png"}});
    let avatar = json!({"character": "lisa", "output_protocol": "websocket", "video": video});
    send(&mut ws, json!({"type": "session.update", "session": {"turn_detection": null, "avatar": avatar}})).await;

    let mut stream = Vec::new();
    let mut deltas = 0;
    let mut background_error = None;
    let mut updated = false;
    while deltas < 30 || background_error.is_none() {
        let e = next(&mut ws, Duration::from_secs(10)).await.expect("events keep coming");
        match e["type"].as_str().unwrap() {
            "session.created" => {}
            "session.updated" => updated = true,
            "response.video.delta" => {
                assert!(updated, "the video starts after session.updated");
                assert_eq!((e["output_index"].clone(), e["codec"].clone()), (json!(0), json!("h264")));
                stream.extend(B64.decode(e["delta"].as_str().unwrap()).unwrap());
                deltas += 1;
            }
            "error" => background_error = Some(e),
            other => panic!("unexpected {other}: {e}"),
        }
    }
    let e = background_error.unwrap();
    assert_eq!(e["error"]["param"], "session.avatar.video.background.image_url", "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("127.0.0.1:9"), "{e}");

    // One MP4: ftyp and moov, then moof + mdat pairs.
    let mut kinds = Vec::new();
    let mut at = 0;
    while at + 8 <= stream.len() {
        let size = u32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        kinds.push(String::from_utf8_lossy(&stream[at + 4..at + 8]).into_owned());
        at += size;
    }
    assert_eq!(at, stream.len(), "whole boxes");
    assert_eq!(&kinds[..2], ["ftyp", "moov"]);
    assert!(kinds[2..].chunks(2).all(|pair| pair == ["moof", "mdat"]), "{kinds:?}");
    assert!(kinds.len() >= 2 + 2 * 29, "a fragment per delta: {}", kinds.len());

    // Removing the avatar stops the video.
    send(&mut ws, json!({"type": "session.update", "session": {"avatar": null}})).await;
    loop {
        let e = next(&mut ws, Duration::from_secs(5)).await.expect("session.updated");
        if e["type"] == "session.updated" {
            break;
        }
    }
    // At most a frame already on its way, then quiet.
    let mut late = 0;
    while let Some(e) = next(&mut ws, Duration::from_millis(400)).await {
        assert_eq!(e["type"], "response.video.delta", "{e}");
        late += 1;
        assert!(late <= 2, "the video goes on after the avatar was removed");
    }
}
