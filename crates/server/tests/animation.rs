//! Lip-sync through the server: a Voice Live session that asks for `animation` outputs gets,
//! with the Piper voice's audio, viseme events from its phoneme timings and blendshape frames
//! at 60 fps covering the audio, then the `.done` events.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_reply_comes_with_visemes_and_blendshapes_on_its_audio_clock() {
    let server = Server::start(&["--tts", "piper"]);
    let url = format!("ws://127.0.0.1:{}/voice-live/realtime", server.port);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "session.update", "session": {
        "turn_detection": null,
        "animation": {"model_name": "default", "outputs": ["viseme_id", "blendshapes"]}
    }})))
    .await
    .unwrap();
    let text = "Your blue jacket ships from Portland on Thursday morning.";
    ws.send(send(json!({"type": "response.create", "response": {"pre_generated_assistant_message": text}})))
        .await
        .unwrap();
    let (mut audio_bytes, mut visemes, mut frames, mut kinds) = (0usize, Vec::new(), Vec::new(), Vec::new());
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next()).await.expect("events").unwrap().unwrap();
        let Message::Text(t) = msg else { continue };
        let e: Value = serde_json::from_str(&t).unwrap();
        let kind = e["type"].as_str().unwrap().to_owned();
        match kind.as_str() {
            "response.audio.delta" => {
                use base64::Engine as _;
                let delta = e["delta"].as_str().unwrap();
                audio_bytes += base64::engine::general_purpose::STANDARD.decode(delta).unwrap().len();
            }
            "response.animation_viseme.delta" => {
                let offset = e["audio_offset_ms"].as_u64().unwrap();
                assert!(offset as f64 <= audio_bytes as f64 / 48.0, "a viseme never runs ahead of its audio");
                visemes.push((offset, e["viseme_id"].as_u64().unwrap()));
            }
            "response.animation_blendshapes.delta" => {
                assert_eq!(e["frame_index"].as_u64().unwrap() as usize, frames.len(), "frames continue");
                for f in e["frames"].as_array().unwrap() {
                    let f: Vec<f64> = f.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
                    assert_eq!(f.len(), 55);
                    frames.push(f);
                }
            }
            "error" => panic!("{e}"),
            "response.done" => break,
            _ => {}
        }
        kinds.push(kind);
    }
    let audio_ms = audio_bytes as f64 / 48.0;
    assert!(audio_ms > 2_000.0, "{audio_ms} ms of audio");
    // Visemes: in time order, Azure ids, shaped by the words ("blue", "from", "ships", …).
    assert!(visemes.len() > 25, "{visemes:?}");
    assert!(visemes.windows(2).all(|w| w[0].0 < w[1].0), "{visemes:?}");
    assert!(visemes.iter().all(|(_, id)| *id <= 21));
    for (id, what) in [(21, "b m p"), (18, "f"), (15, "s"), (16, "ʃ dʒ"), (0, "silence")] {
        assert!(visemes.iter().any(|(_, v)| *v == id), "no viseme {id} ({what}): {visemes:?}");
    }
    // Blendshapes: one frame per 1/60 s of audio; the jaw moves while speaking.
    let expected = audio_ms / 1000.0 * 60.0;
    assert!((frames.len() as f64 - expected).abs() <= 1.0, "{} frames for {audio_ms} ms", frames.len());
    let jaw: Vec<f64> = frames.iter().map(|f| f[17]).collect();
    let open = jaw.iter().cloned().fold(0.0, f64::max);
    assert!(open > 0.3, "the jaw opens: {open}");
    assert!(jaw.windows(2).all(|w| (w[1] - w[0]).abs() < 0.25), "no snapping");
    let done = |k: &str| kinds.iter().position(|x| x == k).unwrap_or_else(|| panic!("no {k}: {kinds:?}"));
    assert!(done("response.animation_viseme.done") > done("response.audio.done") - 1);
    done("response.animation_blendshapes.done");
}
