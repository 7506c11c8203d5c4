//! `input_audio_echo_cancellation: server_echo_cancellation` through the server with the real
//! models (Silero VAD, Whisper tiny.en, Piper's voice for the assistant): a client that plays
//! every reply through a loudspeaker into its own microphone — 120 ms later, 10 dB quieter,
//! with a room's reflections, at real time — does not make the assistant interrupt itself,
//! where without it the first reply interrupts itself; and a question spoken over a reply still
//! interrupts it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_audio::Resampler;
use brazen_models::{Manifest, Store, progress};
use brazen_speech::PiperVoice;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod common;
use common::{Server, send};

/// Samples per 40 ms at 24 kHz: the client's chunk.
const CHUNK: usize = 960;

/// The room between the loudspeaker and the microphone: delay (samples at 24 kHz) and gain of
/// the direct sound and its reflections.
fn room() -> Vec<(usize, f32)> {
    let mut taps = vec![(24 * 120, 0.32)];
    let mut seed = 0x2545_f491u32;
    for k in 1..24 {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let lag = 24 * 120 + k * 24 * 6 + (seed % 97) as usize;
        let sign = if seed & 1 == 0 { 1.0 } else { -1.0 };
        taps.push((lag, sign * 0.2 * (-(k as f32) / 6.0).exp()));
    }
    taps
}

/// A client with a loudspeaker and a microphone in one room.
struct Client {
    ws: common::Ws,
    room: Vec<(usize, f32)>,
    /// Everything the loudspeaker played, 24 kHz.
    played: Vec<i16>,
    /// Received assistant audio not yet played.
    queue: VecDeque<i16>,
    /// What the user says, mixed into the microphone from now on.
    voice: VecDeque<i16>,
}

/// What happened during one reply.
#[derive(Debug, Default)]
struct Reply {
    interrupted: bool,
    status: String,
}

impl Client {
    /// Asks for a reply to `text` and plays it into the microphone until it has played out
    /// (and 600 ms more).
    async fn reply(&mut self, text: &str) -> Reply {
        send(
            &mut self.ws,
            json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": text}]}}),
        )
        .await;
        send(&mut self.ws, json!({"type": "response.create"})).await;
        let started = Instant::now();
        let mut reply = Reply::default();
        let mut quiet_ticks = 0;
        for tick in 0u64.. {
            let due = started + Duration::from_millis(40 * (tick + 1));
            while let Some(e) = common::next_within(&mut self.ws, due.saturating_duration_since(Instant::now())).await {
                match e["type"].as_str().unwrap_or_default() {
                    "response.audio.delta" => {
                        let bytes = B64.decode(e["delta"].as_str().unwrap()).unwrap();
                        self.queue.extend(bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])));
                    }
                    "input_audio_buffer.speech_started" => {
                        reply.interrupted = true;
                        // The client stops playing, as the protocol asks.
                        self.queue.clear();
                    }
                    "response.done" => reply.status = e["response"]["status"].as_str().unwrap_or_default().to_owned(),
                    "error" => panic!("{e}"),
                    _ => {}
                }
            }
            let n = self.queue.len().min(CHUNK);
            self.played.extend(self.queue.drain(..n));
            self.played.extend(std::iter::repeat_n(0, CHUNK - n));
            let end = self.played.len();
            let mic: Vec<i16> = (end - CHUNK..end)
                .map(|i| {
                    let echo: f32 = self
                        .room
                        .iter()
                        .map(|&(lag, g)| i.checked_sub(lag).map_or(0.0, |j| f32::from(self.played[j]) * g))
                        .sum();
                    let own = self.voice.pop_front().map_or(0.0, f32::from);
                    (echo + own).clamp(-32_768.0, 32_767.0) as i16
                })
                .collect();
            let bytes: Vec<u8> = mic.iter().flat_map(|s| s.to_le_bytes()).collect();
            send(&mut self.ws, json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)})).await;
            quiet_ticks = if n == 0 && !reply.status.is_empty() && self.voice.is_empty() { quiet_ticks + 1 } else { 0 };
            if quiet_ticks >= 15 || tick > 40 * 25 {
                break;
            }
        }
        reply
    }
}

async fn client(port: u16, cancel_echo: bool) -> Client {
    let (mut ws, _) = common::connect(port, "/voice-live/realtime", &[]).await.unwrap();
    common::until(&mut ws, "session.created").await;
    let echo = if cancel_echo { json!({"type": "server_echo_cancellation"}) } else { Value::Null };
    send(
        &mut ws,
        json!({"type": "session.update", "session": {"modalities": ["text", "audio"],
            "input_audio_echo_cancellation": echo,
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500, "interrupt_response": true,
                "create_response": false}}}),
    )
    .await;
    let updated = common::until(&mut ws, "session.updated").await;
    assert!(!updated.iter().any(|e| e["type"] == "warning"), "echo cancellation is applied: {updated:?}");
    Client { ws, room: room(), played: Vec::new(), queue: VecDeque::new(), voice: VecDeque::new() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_played_into_the_microphone_does_not_interrupt_itself() {
    let server = Server::start(&["--vad", "silero", "--asr", "whisper-tiny-en", "--tts", "piper"]);
    let asks = [
        "What time do you open on Saturdays and Sundays?",
        "Can I return the shoes I bought last week?",
        "Do you ship orders to Canada and Mexico?",
        "How long does a delivery to Chicago usually take?",
        "Is the blue wool scarf still in stock?",
    ];

    // Without echo cancellation the assistant hears itself and stops.
    let mut plain = client(server.port, false).await;
    let reply = plain.reply(asks[0]).await;
    assert!(reply.interrupted && reply.status == "cancelled", "the control interrupts itself: {reply:?}");

    let mut c = client(server.port, true).await;
    for ask in asks {
        let reply = c.reply(ask).await;
        eprintln!("{ask:?}: {reply:?}");
        assert!(!reply.interrupted && reply.status == "completed", "{ask:?}: {reply:?}");
    }

    // The user speaks over a reply: it is interrupted.
    let store = Store::new(Store::default_root());
    let install = |name: &str| store.install(Manifest::builtin().get(name).unwrap(), &progress()).unwrap();
    let dir = install("piper-en-us-joe-medium");
    let ort = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    let voice = PiperVoice::load(&dir.join("en_US-joe-medium.onnx"), &dir.join("en_US-joe-medium.onnx.json"), &ort)
        .unwrap()
        .with_noise(0.0, 0.0);
    let question = voice.synthesize("Sorry, wait, what about Sundays?", 1.0).unwrap();
    let mut at24 = Vec::new();
    let mut r = Resampler::new(question.sample_rate, 24_000);
    r.process_i16(&question.samples, &mut at24);
    r.flush_i16(&mut at24);
    // It starts 1.5 s into the reply.
    c.voice = std::iter::repeat_n(0, 24 * 1_500).chain(at24).collect();
    let reply = c.reply("Tell me the opening hours of every store in the city, one by one.").await;
    assert!(reply.interrupted && reply.status == "cancelled", "the question interrupts: {reply:?}");
}
