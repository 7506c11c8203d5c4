//! End-of-turn benchmark: how soon a finished sentence ends the caller's turn, and how often a
//! caller who pauses mid-sentence is cut off, per turn-detection mode. `brazen serve` runs with
//! the Silero VAD, Whisper tiny.en, Smart Turn v3.2 and the local language model (which judges
//! the words of each pause; no reply is generated: only turn-taking is timed). Five voices speak (Piper joe; Kokoro af_heart,
//! am_michael, bf_emma, af_bella): finished questions and statements, and sentences with a
//! hesitation after a word, stretched to 400, 500 or 600 ms. A client streams each like a microphone (40 ms chunks at
//! real-time pace) into a fresh session and times, from the end of the last voiced sample, to
//! `speech_stopped`; an utterance that makes more than one turn was cut off.
//!
//! Run: `bench/endpoint.sh [--modes semantic_vad,server_vad]` (release build).

#[path = "served.rs"]
mod served;
#[path = "spoken.rs"]
mod spoken;
#[path = "stats.rs"]
mod stats;
#[path = "voices.rs"]
mod voices;
#[path = "ws.rs"]
mod ws;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_speech::Voice;
use futures_util::StreamExt;
use serde_json::{Value, json};
use served::Served;
use spoken::{PAUSED, spoken};
use stats::percentile;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use voices::Voices;
use ws::send;

/// Samples per chunk the client sends (40 ms at 24 kHz).
const CHUNK: usize = 960;

/// Finished sentences.
const FINISHED: [&str; 6] = [
    "What time do you open on Saturday?",
    "I want to return the blue running shoes.",
    "Where is my order?",
    "Thank you, that is all for today.",
    "Do you ship to Canada?",
    "My discount code does not work.",
];

/// One utterance's audio at 24 kHz and where its last voiced sample is.
struct Utterance {
    label: String,
    audio: Vec<i16>,
    last_sound: usize,
    paused: bool,
}

/// `text` said by `voice`/`name`, with `pause_ms` of silence after the word `after`, framed by
/// 300 ms of silence before and 3 s after, at 24 kHz.
fn utterance(voice: &dyn Voice, name: &str, text: &str, pause: Option<(&str, usize)>) -> Utterance {
    let (speech, label) = spoken(voice, name, text, pause);
    let audio = [vec![0; 24 * 300], speech, vec![0; 24 * 3_000]].concat();
    let last_sound = audio.iter().rposition(|s| s.unsigned_abs() > 300).unwrap_or(0);
    Utterance { label, audio, last_sound, paused: pause.is_some() }
}

/// The turns one utterance made, and when the first `speech_stopped` after the end of its
/// sound came (ms after that end; NaN if none).
async fn hear(addr: &str, detection: &Value, u: &Utterance) -> (usize, f64) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/voice-live/realtime")).await.expect("ws");
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"turn_detection": detection,
        "input_audio_transcription": {"model": "whisper-1"}}}),
    )
    .await;
    loop {
        let Some(Ok(Message::Text(t))) = ws.next().await else { panic!("no session.updated") };
        if serde_json::from_str::<Value>(&t).is_ok_and(|e| e["type"] == "session.updated") {
            break;
        }
    }
    let started = Instant::now();
    let mut sound_end = None;
    let (mut turns, mut after_ms) = (0, f64::NAN);
    for (i, chunk) in u.audio.chunks(CHUNK).enumerate() {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        send(&mut ws, json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)})).await;
        if sound_end.is_none() && (i + 1) * CHUNK > u.last_sound {
            // The chunk's last voiced sample is where the sound ends: a microphone would have
            // sent it (i + 1) chunks in.
            let lead = ((i + 1) * CHUNK - u.last_sound) as f64 / 24.0;
            sound_end = Some(Instant::now() - Duration::from_secs_f64(lead / 1_000.0));
        }
        let due = started + Duration::from_millis(40 * (i as u64 + 1));
        while let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(due.saturating_duration_since(Instant::now()), ws.next()).await
        {
            let e: Value = serde_json::from_str(&t).unwrap_or_default();
            if e["type"] == "input_audio_buffer.speech_stopped" {
                turns += 1;
                if let Some(end) = sound_end
                    && after_ms.is_nan()
                {
                    after_ms = end.elapsed().as_secs_f64() * 1_000.0;
                }
            }
        }
    }
    let _ = ws.close(None).await;
    (turns, after_ms)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (brazen, modes) = served::brazen_and_modes(&["semantic_vad", "server_vad"]);
    let voices = Voices::load();
    let mut utterances = Vec::new();
    for (v, (voice, name)) in voices.speakers().iter().enumerate() {
        for text in FINISHED {
            utterances.push(utterance(*voice, name, text, None));
        }
        for (p, (text, after)) in PAUSED.iter().enumerate() {
            let ms = [400, 500, 600][(v + p) % 3];
            utterances.push(utterance(*voice, name, text, Some((after, ms))));
        }
    }
    eprintln!("{} utterances", utterances.len());
    let served = Served::start(
        &brazen,
        &["--vad", "silero", "--asr", "whisper-tiny-en", "--turn", "smart-turn", "--tts", "tone"],
        &[],
        false,
    );
    println!(
        "| mode | finished: end of speech → turn ends, p50 / p95 | finished turns cut in two | paused mid-sentence: cut off |"
    );
    println!("| --- | --- | --- | --- |");
    for mode in &modes {
        let detection = match mode.as_str() {
            "server_vad" => json!({"type": "server_vad", "silence_duration_ms": 500, "create_response": false}),
            "server_vad_300" => json!({"type": "server_vad", "silence_duration_ms": 300, "create_response": false}),
            other => {
                json!({"type": "semantic_vad", "eagerness": other.strip_prefix("semantic_vad_").unwrap_or("auto"), "create_response": false})
            }
        };
        let (mut ends, mut split, mut finished, mut cut, mut paused) = (Vec::new(), 0, 0, 0, 0);
        for u in &utterances {
            let (turns, after_ms) = hear(&served.addr, &detection, u).await;
            if u.paused {
                paused += 1;
                if turns != 1 {
                    cut += 1;
                    eprintln!("{mode}: cut off ({turns} turns): {}", u.label);
                }
            } else {
                finished += 1;
                if turns != 1 {
                    split += 1;
                    eprintln!("{mode}: {turns} turns: {}", u.label);
                }
                ends.push(after_ms);
                eprintln!("{mode}: {after_ms:.0} ms: {}", u.label);
            }
        }
        println!(
            "| {mode} | {:.0} / {:.0} ms | {split} of {finished} | {cut} of {paused} ({:.0} %) |",
            percentile(ends.clone(), 0.5),
            percentile(ends, 0.95),
            cut as f64 * 100.0 / paused.max(1) as f64
        );
    }
}
