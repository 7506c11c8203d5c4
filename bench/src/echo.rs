//! Echo benchmark: a client that plays every reply through a loudspeaker into its own
//! microphone (120 ms later, -10 dB, a room's reflections; `brazen_testkit::room`), at real
//! time. How many of 20 replies interrupt themselves, and whether (and how soon) a question the
//! user speaks over a reply still interrupts it, with `input_audio_echo_cancellation:
//! server_echo_cancellation` (`aec`) and without (`plain`). `brazen serve` runs Silero VAD,
//! Whisper tiny.en, the local language model (the retail agent's) and Piper's voice.
//!
//! Run: `bench/echo.sh [--modes aec,plain]` (release build); with `BRAZEN_LOG` set, the server's
//! log goes to stderr.

#[path = "served.rs"]
mod served;
#[path = "stats.rs"]
mod stats;
#[path = "voices.rs"]
mod voices;
#[path = "ws.rs"]
mod ws;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_testkit::room::Room;
use serde_json::{Value, json};
use served::Served;
use stats::percentile;
use std::time::{Duration, Instant};
use voices::{Voices, at_24k};
use ws::{Ws, next, send};

/// Samples per chunk the client sends (40 ms at 24 kHz).
const CHUNK: usize = 960;

/// What the user asks (typed: the replies are what is measured).
const ASKS: [&str; 10] = [
    "What time do you open on Saturdays and Sundays?",
    "Can I return the shoes I bought last week?",
    "Do you ship orders to Canada and Mexico?",
    "How long does a delivery to Chicago usually take?",
    "Is the blue wool scarf still in stock?",
    "Which jackets do you have for children under ten?",
    "Can I pay for my order with a gift card?",
    "Where is the nearest store to the train station?",
    "Do the hiking boots come in a wider size?",
    "How do I change the address of my delivery?",
];

/// Questions spoken over a reply.
const QUESTIONS: [&str; 5] = [
    "Sorry, wait, what about Sundays?",
    "Hold on, how much is it?",
    "No, I meant the blue ones.",
    "Can you say that again?",
    "Wait, is that in every store?",
];

/// One reply to `ask` played into the room until it has played out; `question` (24 kHz), if
/// any, is said 1.5 s in. Returns whether the reply was interrupted, and when `speech_started`
/// came after the question's first voiced sample (ms).
async fn reply(ws: &mut Ws, room: &mut Room, ask: &str, question: Option<&[i16]>) -> (bool, f64) {
    send(
        ws,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": ask}]}}),
    )
    .await;
    send(ws, json!({"type": "response.create"})).await;
    let lead = 24 * 1_500;
    let onset_at = question.map(|q| lead + q.iter().position(|s| s.unsigned_abs() > 300).unwrap_or(0));
    if let Some(q) = question {
        room.say(std::iter::repeat_n(0, lead).chain(q.iter().copied()));
    }
    let started = Instant::now();
    let (mut interrupted, mut after_ms, mut done, mut quiet, mut heard) = (false, f64::NAN, false, 0, 0usize);
    let mut onset = None;
    // Until the reply has played out (the first waits for the model to load), at most 3 min.
    for tick in 0u64..25 * 180 {
        let due = started + Duration::from_millis(40 * (tick + 1));
        // The microphone records on while this process waits for the cores: a chunk whose time
        // has passed is recorded before audio that arrived since is played (no audio plays
        // before it arrives, as on a real device).
        while Instant::now() < due {
            let Some(e) = next(ws, due.saturating_duration_since(Instant::now())).await else { break };
            match e["type"].as_str().unwrap_or_default() {
                "response.audio.delta" => {
                    let bytes = B64.decode(e["delta"].as_str().unwrap_or_default()).unwrap_or_default();
                    let pcm: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
                    room.receive(&pcm);
                }
                "input_audio_buffer.speech_started" => {
                    room.stop();
                    if !interrupted {
                        after_ms = onset.map_or(f64::NAN, |t: Instant| t.elapsed().as_secs_f64() * 1_000.0);
                    }
                    interrupted = true;
                }
                "response.done" => done = true,
                "error" => panic!("{e}"),
                _ => {}
            }
        }
        let mic = room.tick(CHUNK);
        heard += CHUNK;
        if onset.is_none() && onset_at.is_some_and(|at| heard > at) {
            onset = Some(Instant::now());
        }
        let bytes: Vec<u8> = mic.iter().flat_map(|s| s.to_le_bytes()).collect();
        send(ws, json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)})).await;
        quiet = if done && !room.is_playing() && !room.is_speaking() { quiet + 1 } else { 0 };
        if quiet >= 15 {
            break;
        }
    }
    (interrupted, after_ms)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (brazen, modes) = served::brazen_and_modes(&["aec", "plain"]);
    let voices = Voices::load();
    let questions: Vec<Vec<i16>> = voices
        .speakers()
        .iter()
        .zip(QUESTIONS)
        .map(|((voice, name), text)| {
            let speech = voice.speak_all(text, name, 1.0).expect("the voice speaks");
            at_24k(&speech.samples, speech.sample_rate)
        })
        .collect();
    let served = Served::start(
        &brazen,
        &["--vad", "silero", "--asr", "whisper-tiny-en", "--tts", "piper"],
        &[],
        std::env::var_os("BRAZEN_LOG").is_some(),
    );
    println!(
        "| mode | replies that interrupted themselves | questions over a reply that interrupted it | question onset → speech_started, p50 / p95 |"
    );
    println!("| --- | --- | --- | --- |");
    for mode in &modes {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/voice-live/realtime", served.addr)).await.expect("ws");
        let echo = if mode == "aec" { json!({"type": "server_echo_cancellation"}) } else { Value::Null };
        send(
            &mut ws,
            json!({"type": "session.update", "session": {"modalities": ["text", "audio"],
                "input_audio_echo_cancellation": echo,
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500, "interrupt_response": true,
                    "create_response": false}}}),
        )
        .await;
        while next(&mut ws, Duration::from_secs(30)).await.expect("session.updated")["type"] != "session.updated" {}
        let mut room = Room::new();
        let mut selves = 0;
        for (i, ask) in ASKS.iter().cycle().take(20).enumerate() {
            let (interrupted, _) = reply(&mut ws, &mut room, ask, None).await;
            eprintln!("{mode}: reply {}: {}", i + 1, if interrupted { "interrupted itself" } else { "played out" });
            selves += usize::from(interrupted);
        }
        let (mut stopped, mut onsets) = (0, Vec::new());
        for (q, text) in questions.iter().zip(QUESTIONS) {
            let (interrupted, after_ms) = reply(&mut ws, &mut room, ASKS[0], Some(q)).await;
            eprintln!(
                "{mode}: {text:?} over a reply: {} ({after_ms:.0} ms)",
                if interrupted { "interrupted" } else { "missed" }
            );
            if interrupted {
                stopped += 1;
                onsets.push(after_ms);
            }
        }
        println!(
            "| {mode} | {selves} of 20 | {stopped} of {} | {:.0} / {:.0} ms |",
            questions.len(),
            percentile(onsets.clone(), 0.5),
            percentile(onsets, 0.95)
        );
    }
}
