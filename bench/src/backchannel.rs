//! Backchannel benchmark: while the assistant speaks, how often a caller's "mm-hmm", "yeah" or
//! "okay" interrupts it, and how often (and how soon) a real question does. `brazen serve` runs
//! with the Silero VAD, Whisper tiny.en and Smart Turn v3.2; the answer is a long one from the
//! stand-in model and voice (`--llm echo --tts tone`: only turn-taking is measured). Five voices
//! (Piper joe; Kokoro af_heart, am_michael, bf_emma, af_bella) say six backchannels and five
//! questions. For each, a fresh session with `semantic_vad` asks for the answer; once its audio
//! flows, a client streams 600 ms of silence, the clip and 2.5 s of silence like a microphone
//! (40 ms chunks at real-time pace). It interrupted if `speech_started` came or the answer was
//! cancelled; the time is from the clip's first voiced sample to `speech_started`.
//!
//! Run: `bench/backchannel.sh [--modes ignore_fillers,plain]` (release build); with `BRAZEN_LOG`
//! set, the server's log goes to stderr. `plain` is the same without `remove_filler_words`:
//! every sound interrupts.

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
use serde_json::{Value, json};
use served::Served;
use stats::percentile;
use std::time::{Duration, Instant};
use voices::{Voices, at_24k};
use ws::{next, send};

/// Samples per chunk the client sends (40 ms at 24 kHz).
const CHUNK: usize = 960;

/// What callers say to show they are listening.
const BACKCHANNELS: [&str; 6] = ["Mm-hmm.", "Yeah.", "Okay.", "Uh-huh.", "Right.", "I see."];

/// What callers say to take the turn.
const QUESTIONS: [&str; 5] = [
    "Wait, what time do you open?",
    "Sorry, can you say that again?",
    "Hold on, how much is it?",
    "No, I meant the blue ones.",
    "Can I pay by card?",
];

/// The caller's message the stand-in model repeats: an answer of about 12 s.
const LONG: &str = "Please read this back to me slowly: the store opens at nine in the morning on weekdays and at ten on Saturdays, returns are accepted within thirty days with a receipt, and orders over fifty dollars ship for free to every state.";

/// One clip at 24 kHz and where its first voiced sample is.
struct Clip {
    label: String,
    audio: Vec<i16>,
    first_sound: usize,
    question: bool,
}

/// Whether `clip`, said over the answer, interrupted it, when `speech_started` came (ms after
/// the clip's first voiced sample; NaN if it did not), and what the turn was heard as.
async fn over_the_answer(addr: &str, detection: &Value, clip: &Clip) -> (bool, f64, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/voice-live/realtime")).await.expect("ws");
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"modalities": ["text", "audio"], "turn_detection": detection,
            "input_audio_transcription": {"model": "whisper-1"}}}),
    )
    .await;
    while next(&mut ws, Duration::from_secs(30)).await.expect("session.updated")["type"] != "session.updated" {}
    send(
        &mut ws,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": LONG}]}}),
    )
    .await;
    send(&mut ws, json!({"type": "response.create"})).await;
    while next(&mut ws, Duration::from_secs(30)).await.expect("the answer's audio")["type"] != "response.audio.delta" {}
    let audio = [vec![0; 24 * 600], clip.audio.clone(), vec![0; 24 * 2_500]].concat();
    let first_sound = 24 * 600 + clip.first_sound;
    let started = Instant::now();
    let mut onset = None;
    let (mut interrupted, mut after_ms, mut heard) = (false, f64::NAN, String::new());
    for (i, chunk) in audio.chunks(CHUNK).enumerate() {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        send(&mut ws, json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)})).await;
        if onset.is_none() && (i + 1) * CHUNK > first_sound {
            let lead = ((i + 1) * CHUNK - first_sound) as f64 / 24.0;
            onset = Some(Instant::now() - Duration::from_secs_f64(lead / 1_000.0));
        }
        let due = started + Duration::from_millis(40 * (i as u64 + 1));
        while let Some(e) = next(&mut ws, due.saturating_duration_since(Instant::now())).await {
            match e["type"].as_str().unwrap_or_default() {
                "input_audio_buffer.speech_started" if !interrupted => {
                    interrupted = true;
                    after_ms = onset.map_or(f64::NAN, |t| t.elapsed().as_secs_f64() * 1_000.0);
                }
                "response.done" if e["response"]["status"] == "cancelled" => interrupted = true,
                "conversation.item.input_audio_transcription.completed" => {
                    heard = e["transcript"].as_str().unwrap_or_default().to_owned();
                }
                "error" => panic!("{e}"),
                _ => {}
            }
        }
    }
    let _ = ws.close(None).await;
    (interrupted, after_ms, heard)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (brazen, modes) = served::brazen_and_modes(&["ignore_fillers", "plain"]);
    let voices = Voices::load();
    let mut clips = Vec::new();
    for (voice, name) in voices.speakers() {
        for (text, question) in BACKCHANNELS.iter().map(|t| (t, false)).chain(QUESTIONS.iter().map(|t| (t, true))) {
            let speech = voice.speak_all(text, name, 1.0).expect("the voice speaks");
            let audio = [vec![0; 24 * 300], at_24k(&speech.samples, speech.sample_rate)].concat();
            let first_sound = audio.iter().position(|s| s.unsigned_abs() > 300).unwrap_or(0);
            clips.push(Clip { label: format!("{name}: {text}"), audio, first_sound, question });
        }
    }
    eprintln!("{} clips", clips.len());
    let served = Served::start(
        &brazen,
        &["--vad", "silero", "--asr", "whisper-tiny-en", "--turn", "smart-turn", "--llm", "echo", "--tts", "tone"],
        &[],
        std::env::var_os("BRAZEN_LOG").is_some(),
    );
    println!(
        "| mode | backchannels that interrupted | questions that interrupted | question onset → speech_started, p50 / p95 |"
    );
    println!("| --- | --- | --- | --- |");
    for mode in &modes {
        let detection = json!({"type": "semantic_vad", "eagerness": "auto", "interrupt_response": true,
            "create_response": true, "remove_filler_words": mode != "plain"});
        let (mut backchannels, mut questions, mut heard, mut onsets) = ((0, 0), (0, 0), 0, Vec::new());
        for clip in &clips {
            let (interrupted, after_ms, transcript) = over_the_answer(&served.addr, &detection, clip).await;
            let counts = if clip.question { &mut questions } else { &mut backchannels };
            counts.1 += 1;
            if interrupted {
                counts.0 += 1;
            }
            if clip.question && interrupted {
                heard += 1;
                onsets.push(after_ms);
            }
            let outcome = if interrupted { "interrupted" } else { "ignored" };
            eprintln!("{mode}: {}: {outcome} ({after_ms:.0} ms, heard as {transcript:?})", clip.label);
        }
        println!(
            "| {mode} | {} of {} ({:.0} %) | {} of {} ({:.0} %) | {:.0} / {:.0} ms |",
            backchannels.0,
            backchannels.1,
            backchannels.0 as f64 * 100.0 / backchannels.1.max(1) as f64,
            questions.0,
            questions.1,
            heard as f64 * 100.0 / questions.1.max(1) as f64,
            percentile(onsets.clone(), 0.5),
            percentile(onsets, 0.95),
        );
    }
}
