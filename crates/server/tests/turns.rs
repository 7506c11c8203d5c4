//! Turn detection on brazen's own speech: 30 sentences a retail voice agent hears, spoken by the
//! server's Piper voice, streamed back in as a client would (faster than real time, and at real
//! time) must each make exactly one turn with the Silero VAD; silence and noise must make none.
//! (Transcribing them back comes with the speech recogniser.)

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::Server;

const SENTENCES: [&str; 30] = [
    "Hi, I would like to check the status of my order.",
    "My order number is five four two three one nine eight.",
    "When will my package arrive?",
    "Can I change the delivery address?",
    "I want to return the blue running shoes.",
    "The jacket I received is the wrong size.",
    "Do you have these headphones in black?",
    "How much is the express shipping?",
    "Please cancel my last order.",
    "I was charged twice for the same item.",
    "Is there a store near the city center?",
    "What time do you open on Saturday?",
    "Can I pay with a gift card?",
    "I never received the confirmation email.",
    "The tracking page says the parcel is delayed.",
    "Could you send me a new invoice?",
    "I would like a refund, not a replacement.",
    "Are the winter boots still on sale?",
    "My discount code does not work.",
    "How long does a refund usually take?",
    "Can someone call me back this afternoon?",
    "The box was damaged when it arrived.",
    "Please update my phone number.",
    "Do you ship to Canada?",
    "I need the receipt for my warranty.",
    "Which size should I order for a child of six?",
    "Can I pick up the order in the store tomorrow?",
    "The coffee machine stopped working after a week.",
    "Thank you, that is all for today.",
    "Goodbye, and have a nice evening.",
];

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn session(port: u16, update: Value) -> Ws {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/voice-live/realtime")).await.unwrap();
    ws.send(Message::Text(json!({"type": "session.update", "session": update}).to_string().into())).await.unwrap();
    loop {
        let e = next(&mut ws).await.expect("session.updated");
        if e["type"] == "session.updated" {
            return ws;
        }
    }
}

async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// `text` spoken by the server's voice, as 24 kHz samples.
async fn speak(port: u16, text: &str) -> Vec<i16> {
    let mut ws = session(port, json!({"turn_detection": null})).await;
    let request = json!({"type": "response.create", "response": {"pre_generated_assistant_message": text}});
    ws.send(Message::Text(request.to_string().into())).await.unwrap();
    let mut bytes = Vec::new();
    while let Some(e) = next(&mut ws).await {
        match e["type"].as_str().unwrap_or("") {
            "response.audio.delta" => bytes.extend(B64.decode(e["delta"].as_str().unwrap()).unwrap()),
            "response.done" => break,
            _ => {}
        }
    }
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// Streams `audio` in 100 ms chunks (paced like a microphone when `real_time`) and counts the
/// turns the server detects: (speech_started, committed).
async fn turns(port: u16, audio: &[i16], real_time: bool) -> (usize, usize) {
    let vad = json!({"turn_detection": {"type": "server_vad", "create_response": false}});
    let mut ws = session(port, vad).await;
    for chunk in audio.chunks(2_400) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        let event = json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)});
        ws.send(Message::Text(event.to_string().into())).await.unwrap();
        if real_time {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A marker after the audio: everything the audio caused comes before its answer.
    ws.send(Message::Text(json!({"type": "input_audio_buffer.clear"}).to_string().into())).await.unwrap();
    let (mut started, mut committed) = (0, 0);
    while let Some(e) = next(&mut ws).await {
        match e["type"].as_str().unwrap_or("") {
            "input_audio_buffer.speech_started" => started += 1,
            "input_audio_buffer.committed" => committed += 1,
            "input_audio_buffer.cleared" => break,
            "error" => panic!("{e}"),
            _ => {}
        }
    }
    (started, committed)
}

/// Silence, the sentence, and more silence than the turn's end needs.
fn framed(speech: &[i16]) -> Vec<i16> {
    [vec![0; 7_200], speech.to_vec(), vec![0; 24_000]].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_spoken_sentence_is_one_turn_and_silence_or_noise_none() {
    let server = Server::start(&["--vad", "silero", "--tts", "piper"]);
    let port = server.port;
    let spoken: Vec<Vec<i16>> =
        futures_util::future::join_all(SENTENCES.iter().map(|s| async move { speak(port, s).await })).await;
    for (text, audio) in SENTENCES.iter().zip(&spoken) {
        assert!(audio.len() > 12_000, "{text}: {} samples", audio.len());
    }

    let counts =
        futures_util::future::join_all(spoken.iter().map(|a| async move { turns(port, &framed(a), false).await }))
            .await;
    for (text, count) in SENTENCES.iter().zip(&counts) {
        assert_eq!(*count, (1, 1), "{text}: (speech_started, committed)");
    }
    let paced =
        futures_util::future::join_all(spoken[..3].iter().map(|a| async move { turns(port, &framed(a), true).await }))
            .await;
    assert_eq!(paced, [(1, 1); 3], "at a microphone's pace");

    let silence = vec![0i16; 24_000 * 5];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = |amplitude: f64| -> Vec<i16> {
        (0..24_000 * 5)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                ((seed as f64 / u64::MAX as f64 * 2.0 - 1.0) * amplitude) as i16
            })
            .collect()
    };
    let (quiet, loud) = (noise(1_000.0), noise(6_000.0));
    for (name, audio) in [("silence", &silence), ("noise at -30 dBFS", &quiet), ("noise at -15 dBFS", &loud)] {
        assert_eq!(turns(port, audio, false).await, (0, 0), "{name} is no turn");
    }
}
