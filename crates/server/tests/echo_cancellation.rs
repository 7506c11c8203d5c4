//! `input_audio_echo_cancellation: server_echo_cancellation` through the server with the real
//! models (Silero VAD, Whisper tiny.en, Piper's voice for the assistant): a client that plays
//! every reply through a loudspeaker into its own microphone — 120 ms later, 10 dB quieter,
//! with a room's reflections, at real time — does not make the assistant interrupt itself,
//! where without it the first reply interrupts itself; and a question spoken over a reply still
//! interrupts it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_testkit::room::Room;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

mod common;
use common::{Server, send};

/// Samples per 40 ms at 24 kHz: the client's chunk.
const CHUNK: usize = 960;

/// A client whose loudspeaker and microphone share a room.
struct Client {
    ws: common::Ws,
    room: Room,
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
            // The microphone records on while the test waits for the cores: a chunk whose time
            // has passed is recorded before audio that arrived since is played (no audio plays
            // before it arrives, as on a real device; a busy machine otherwise makes the echo
            // come before the voice the server sent).
            while Instant::now() < due {
                let Some(e) = common::next_within(&mut self.ws, due.saturating_duration_since(Instant::now())).await
                else {
                    break;
                };
                match e["type"].as_str().unwrap_or_default() {
                    "response.audio.delta" => {
                        let bytes = B64.decode(e["delta"].as_str().unwrap()).unwrap();
                        let pcm: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
                        self.room.receive(&pcm);
                    }
                    "input_audio_buffer.speech_started" => {
                        reply.interrupted = true;
                        // The client stops playing, as the protocol asks.
                        self.room.stop();
                    }
                    "response.done" => reply.status = e["response"]["status"].as_str().unwrap_or_default().to_owned(),
                    "error" => panic!("{e}"),
                    _ => {}
                }
            }
            let mic = self.room.tick(CHUNK);
            let bytes: Vec<u8> = mic.iter().flat_map(|s| s.to_le_bytes()).collect();
            send(&mut self.ws, json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)})).await;
            let quiet = !self.room.is_playing() && !self.room.is_speaking() && !reply.status.is_empty();
            quiet_ticks = if quiet { quiet_ticks + 1 } else { 0 };
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
    Client { ws, room: Room::new() }
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
    let voice = common::piper_joe();
    let question = voice.synthesize("Sorry, wait, what about Sundays?", 1.0).unwrap();
    // It starts 1.5 s into the reply.
    c.room.say(std::iter::repeat_n(0, 24 * 1_500).chain(common::at_24k(&question.samples, question.sample_rate)));
    let reply = c.reply("Tell me the opening hours of every store in the city, one by one.").await;
    assert!(reply.interrupted && reply.status == "cancelled", "the question interrupts: {reply:?}");
}
