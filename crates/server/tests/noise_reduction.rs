//! `input_audio_noise_reduction` through the server: a steady noise (a fan, a hum; here white
//! noise at -30 dBFS) that the energy detector takes for speech starts turns without it, and
//! none with it; speech over the same noise is still heard and transcribed (Whisper tiny.en)
//! with its words. The caller is Piper's voice.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::time::Duration;

mod common;
use common::{Server, send};

/// Deterministic white noise at about `rms` (of 32768), 24 kHz.
fn noise(ms: usize, rms: f32) -> Vec<i16> {
    let mut seed = 0x9e37_79b9u32;
    (0..ms * 24)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (((seed as f32 / u32::MAX as f32) * 2.0 - 1.0) * rms * 1.732) as i16
        })
        .collect()
}

/// A session (with noise reduction when `reduce`) that hears 1 s of the noise with detection off
/// (the suppressor learns a noise in about half a second), then, with server VAD, `audio` in
/// 100 ms chunks; returns every event until `settle` passes without one, or until one of type
/// `last`.
async fn feed(port: u16, reduce: bool, audio: &[i16], settle: Duration, last: &str) -> Vec<Value> {
    let (mut ws, _) = common::connect(port, "/voice-live/realtime", &[]).await.unwrap();
    common::until(&mut ws, "session.created").await;
    let reduction = if reduce { json!({"type": "azure_deep_noise_suppression"}) } else { Value::Null };
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"input_audio_noise_reduction": reduction,
            "input_audio_transcription": {"model": "whisper-1"}, "turn_detection": null}}),
    )
    .await;
    let updated = common::until(&mut ws, "session.updated").await;
    assert!(!updated.iter().any(|e| e["type"] == "warning"), "noise reduction is applied: {updated:?}");
    let append = |chunk: &[i16]| {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)})
    };
    for chunk in noise(1_000, 1_000.0).chunks(2_400) {
        send(&mut ws, append(chunk)).await;
    }
    send(
        &mut ws,
        json!({"type": "session.update", "session": {
            "turn_detection": {"type": "server_vad", "create_response": false, "silence_duration_ms": 500}}}),
    )
    .await;
    common::until(&mut ws, "session.updated").await;
    for chunk in audio.chunks(2_400) {
        send(&mut ws, append(chunk)).await;
    }
    // Events are handled in order: once this is answered, all the audio has been heard.
    send(&mut ws, json!({"type": "session.update", "session": {}})).await;
    let mut events = common::until(&mut ws, "session.updated").await;
    while !events.iter().any(|e| e["type"] == last)
        && let Some(e) = common::next_within(&mut ws, settle).await
    {
        events.push(e);
    }
    assert!(!events.iter().any(|e| e["type"] == "error"), "{events:?}");
    events
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["type"] == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_noise_is_suppressed_and_speech_over_it_still_heard() {
    let server = Server::start(&["--asr", "whisper-tiny-en"]);
    let hum = noise(3_000, 1_000.0);

    // The energy detector takes the noise for speech.
    let events = feed(server.port, false, &hum, Duration::from_millis(500), "").await;
    assert!(count(&events, "input_audio_buffer.speech_started") >= 1, "{events:?}");
    // Suppressed, it is silence.
    let events = feed(server.port, true, &hum, Duration::from_millis(500), "").await;
    assert_eq!(count(&events, "input_audio_buffer.speech_started"), 0, "{events:?}");

    // Speech over the same noise: one turn, with its words.
    let voice = common::piper_joe();
    let speech = voice.synthesize("I would like to return the blue running shoes.", 1.0).unwrap();
    let at24 = common::at_24k(&speech.samples, speech.sample_rate);
    let mut audio = noise(1_000 + at24.len() / 24 + 1_500, 1_000.0);
    for (i, s) in at24.iter().enumerate() {
        let a = &mut audio[24_000 + i];
        *a = a.saturating_add(*s);
    }
    let events = feed(
        server.port,
        true,
        &audio,
        Duration::from_secs(30),
        "conversation.item.input_audio_transcription.completed",
    )
    .await;
    assert_eq!(count(&events, "input_audio_buffer.speech_started"), 1, "{events:?}");
    let transcript = events
        .iter()
        .find(|e| e["type"] == "conversation.item.input_audio_transcription.completed")
        .and_then(|e| e["transcript"].as_str())
        .unwrap_or_default()
        .to_lowercase();
    for word in ["would", "return", "blue", "running"] {
        assert!(transcript.contains(word), "{word}: {transcript:?}");
    }
}
