//! Backchannels through the server with the real models (Silero VAD, Whisper tiny.en): while
//! the assistant speaks, a caller's "mm-hmm", "yeah" and "okay" neither interrupt it nor become
//! turns when `remove_filler_words` is on, and a real question still interrupts, announced
//! where it began. The caller is Piper's voice, streamed at real time as a microphone would; the
//! answer is the stand-in model's, spoken by the tone voice (only turn-taking is tested).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_speech::PiperVoice;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

mod common;
use common::{Server, send};

/// The caller's message the stand-in model repeats: an answer of about 16 s in the tone voice.
const LONG: &str = "Please read this back to me slowly: the store opens at nine in the morning on weekdays and at ten on Saturdays, returns are accepted within thirty days with a receipt, orders over fifty dollars ship for free to every state, gift cards never expire, and the repair desk at the back of the store can fix most coffee machines within a week.";

/// What the caller says to show they listen. (Written as the voice should say them: Piper reads
/// "Mm-hmm" letter by letter.)
const BACKCHANNELS: [&str; 3] = ["Uh-huh.", "Yeah.", "Okay."];

/// `text` said by Piper joe at 24 kHz, with 300 ms of silence before and `tail_ms` after.
fn said(voice: &PiperVoice, text: &str, tail_ms: usize) -> Vec<i16> {
    let speech = voice.synthesize(text, 1.0).unwrap();
    [vec![0; 24 * 300], common::at_24k(&speech.samples, speech.sample_rate), vec![0; 24 * tail_ms]].concat()
}

/// Streams `audio` in 40 ms chunks at real time; returns the events that came meanwhile.
async fn stream(ws: &mut common::Ws, audio: &[i16]) -> Vec<Value> {
    let started = Instant::now();
    let mut events = Vec::new();
    for (i, chunk) in audio.chunks(960).enumerate() {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        send(ws, json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)})).await;
        let due = started + Duration::from_millis(40 * (i as u64 + 1));
        while let Some(e) = common::next_within(ws, due.saturating_duration_since(Instant::now())).await {
            assert_ne!(e["type"], "error", "{e}");
            events.push(e);
        }
    }
    events
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).filter(|t| !t.starts_with("response.audio")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backchannels_over_the_answer_are_ignored_and_a_question_interrupts() {
    let server = Server::start(&["--vad", "silero", "--asr", "whisper-tiny-en"]);
    let voice = common::piper_joe();

    let (mut ws, _) = common::connect(server.port, "/voice-live/realtime", &[]).await.unwrap();
    common::until(&mut ws, "session.created").await;
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"modalities": ["text", "audio"],
            "input_audio_transcription": {"model": "whisper-1"}, "turn_detection": {
            "type": "server_vad", "silence_duration_ms": 500, "remove_filler_words": true,
            "interrupt_response": true, "auto_truncate": true, "create_response": true}}}),
    )
    .await;
    let updated = common::until(&mut ws, "session.updated").await;
    assert!(
        !updated.iter().any(|e| e["type"] == "warning"),
        "remove_filler_words is applied, not warned about: {updated:?}"
    );
    send(
        &mut ws,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": LONG}]}}),
    )
    .await;
    send(&mut ws, json!({"type": "response.create"})).await;
    common::until(&mut ws, "response.audio.delta").await;

    for backchannel in BACKCHANNELS {
        let events = stream(&mut ws, &said(&voice, backchannel, 2_000)).await;
        let t = types(&events);
        let heard: Vec<_> = events
            .iter()
            .filter(|e| e["type"] == "conversation.item.input_audio_transcription.completed")
            .filter_map(|e| e["transcript"].as_str())
            .collect();
        eprintln!("{backchannel:?} -> {t:?}, heard as {heard:?}");
        for never in ["input_audio_buffer.speech_started", "response.done", "input_audio_buffer.committed"] {
            assert!(!t.contains(&never), "{backchannel:?} is not a turn: {t:?}");
        }
    }

    let question = said(&voice, "Wait, what time do you open?", 1_500);
    let onset_ms = question.iter().position(|s| s.unsigned_abs() > 300).unwrap() as f64 / 24.0;
    let events = stream(&mut ws, &question).await;
    let t = types(&events);
    eprintln!("question -> {t:?}");
    let started = events.iter().find(|e| e["type"] == "input_audio_buffer.speech_started").expect("it interrupts");
    let done = events.iter().find(|e| e["type"] == "response.done").expect("the answer stops");
    assert_eq!(done["response"]["status"], "cancelled", "{done}");
    assert!(t.contains(&"conversation.item.truncated"), "{t:?}");
    // Announced where the question began on the session's audio clock: the answer's first
    // audio came before any input, so the clock counts the three backchannels' clips.
    let clip_ms = |text: &str| said(&voice, text, 2_000).len() as f64 / 24.0;
    let before: f64 = BACKCHANNELS.iter().map(|t| clip_ms(t)).sum();
    let start = started["audio_start_ms"].as_f64().unwrap();
    assert!(
        (start - (before + onset_ms)).abs() < 400.0,
        "speech_started at {start} ms, the question at {}",
        before + onset_ms
    );
    // The question is a turn of its own, transcribed.
    let mut events = events;
    let completed = |e: &Value| e["type"] == "conversation.item.input_audio_transcription.completed";
    if !events.iter().any(completed) {
        events.extend(common::until(&mut ws, "conversation.item.input_audio_transcription.completed").await);
    }
    let transcript = events.iter().find(|e| completed(e)).unwrap()["transcript"].as_str().unwrap().to_lowercase();
    assert!(transcript.contains("open"), "{transcript:?}");
}
