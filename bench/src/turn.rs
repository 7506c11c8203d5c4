//! Voice-turn benchmark: the whole local pipeline as a caller hears it. `brazen serve` runs
//! with its default engines (Silero VAD, Whisper tiny.en, the local LLM, Piper); one session
//! has the retail instructions and tools, server VAD (500 ms of silence ends a turn) and
//! transcription. A client streams questions spoken by Piper like a microphone (40 ms chunks
//! at real-time pace, silence between them) and, for each turn, times from the moment the
//! speech ends (the last voiced sample's place in the stream) to `speech_stopped`, to the
//! final transcript, to the first text of the reply and to its first audio. Tool calls get a
//! canned result (`function_call_output`, then `response.create`); that answer's first audio
//! is timed from sending the result.
//!
//! With `--agent`, the sessions are the built-in retail agent's (its instructions, its tools
//! running inside brazen on its database); the third question of a round runs one of its tools,
//! and each round is played twice, with the agent's interim line and without it
//! (`interim_response: null`): the end of the spoken request to the first audio (the interim
//! line, when there is one) and to the first audio of the answer proper (after the tool's
//! output).
//!
//! Run: `bench/turn.sh [--rounds N] [--agent]` (release build; models are installed on first run).

#[path = "served.rs"]
mod served;
#[path = "stats.rs"]
mod stats;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_llm::eval::{RETAIL_INSTRUCTIONS, RETAIL_TOOLS};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use served::Served;
use stats::percentile;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Samples per chunk the client sends (40 ms at 24 kHz).
const CHUNK: usize = 960;

/// Each round is a short conversation: a greeting, small talk, a question needing a tool.
const ROUNDS: [[&str; 3]; 4] = [
    ["Hi there.", "How are you doing today?", "Where is my order seven seven three one?"],
    ["Hello.", "Can you hear me okay?", "Do you have any running shoes under sixty dollars?"],
    ["Good morning.", "What can you help me with?", "What is your return policy?"],
    ["Hey.", "Thanks for picking up.", "Show me tents under one hundred fifty dollars."],
];

/// The agent's rounds: the third question needs one of its tools.
const AGENT_ROUNDS: [[&str; 3]; 4] = [
    ["Hi there.", "How are you doing today?", "What winter wear do you have?"],
    ["Hello.", "What can you help me with?", "What is your return policy?"],
    ["Good morning.", "Thanks for picking up.", "Show me your swim wear under fifty dollars."],
    ["Hey.", "Can you hear me okay?", "Do you sell any scarves?"],
];

/// Who the session is.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The old store's instructions and tools, sent by the client, which answers the calls.
    Client,
    /// The built-in retail agent, with its interim line or without.
    Agent { interim: bool },
}

/// Canned tool results.
fn tool_result(name: &str) -> Value {
    match name {
        "get_order_status" => json!({"order_id": "7731", "status": "shipped", "eta": "Thursday"}),
        "search_products" => json!({"products": [{"id": "P-204", "name": "Trail Runner 2", "price": 54.99}]}),
        "lookup_policy" => json!({"answer": "Unworn items can be returned within 30 days for a full refund."}),
        _ => json!({"ok": true}),
    }
}

async fn connect(addr: &str, update: Value) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/voice-live/realtime")).await.expect("ws");
    send(&mut ws, json!({"type": "session.update", "session": update})).await;
    while let Some(e) = next(&mut ws).await {
        if e["type"] == "session.updated" {
            break;
        }
    }
    ws
}

async fn send(ws: &mut Ws, event: Value) {
    ws.send(Message::Text(event.to_string().into())).await.expect("send");
}

async fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// `text` in the server's voice (24 kHz), trimmed of leading and trailing silence.
async fn speak(addr: &str, text: &str) -> Vec<i16> {
    let mut ws = connect(addr, json!({"turn_detection": null})).await;
    send(&mut ws, json!({"type": "response.create", "response": {"pre_generated_assistant_message": text}})).await;
    let mut bytes = Vec::new();
    while let Some(e) = next(&mut ws).await {
        match e["type"].as_str().unwrap_or("") {
            "response.audio.delta" => bytes.extend(B64.decode(e["delta"].as_str().unwrap_or("")).unwrap_or_default()),
            "response.done" => break,
            _ => {}
        }
    }
    let samples: Vec<i16> = bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let voiced = |s: &&i16| s.unsigned_abs() > 300;
    let first = samples.iter().position(|s| voiced(&s)).unwrap_or(0);
    let last = samples.iter().rposition(|s| voiced(&s)).map_or(samples.len(), |i| i + 1);
    samples[first..last].to_vec()
}

/// The microphone: audio queued to be "spoken", silence otherwise, sent at real-time pace.
/// `ended` is set to when the last sample of the queued speech went out (its place on the
/// real-time clock).
struct Mic {
    queue: VecDeque<i16>,
    ended: Option<Instant>,
}

fn main() {
    let rounds: usize =
        std::env::args().skip_while(|a| a != "--rounds").nth(1).and_then(|n| n.parse().ok()).unwrap_or(4);
    let brazen = std::env::args().skip_while(|a| a != "--brazen").nth(1).expect("--brazen PATH");
    let agent = std::env::args().any(|a| a == "--agent");
    let log = std::env::var("BRAZEN_LOG").unwrap_or_else(|_| "warn".into());
    // The agent's orders and transcripts go to a database of the run's own.
    let data = std::env::temp_dir().join(format!("brazen-turn-bench-{}", std::process::id()));
    let data_dir = data.to_string_lossy().into_owned();
    let args: &[&str] = if agent { &[] } else { &["--agent", "none"] };
    let env = [("BRAZEN_LOG", log.as_str()), ("BRAZEN_DATA_DIR", data_dir.as_str())];
    let served = Served::start(&brazen, args, &env, true);
    let addr = served.addr.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("tokio");
    if agent {
        // One round with the line, the same round without, and so on: the two are compared
        // within one run on a shared machine.
        let mut with = Vec::new();
        let mut without = Vec::new();
        for round in 0..rounds {
            with.extend(runtime.block_on(run(&addr, 1, round, Mode::Agent { interim: true })));
            without.extend(runtime.block_on(run(&addr, 1, round, Mode::Agent { interim: false })));
        }
        let show = |label: &str, turns: &[Turn]| {
            let p = |f: &dyn Fn(&Turn) -> Option<f64>, q: f64| percentile(turns.iter().filter_map(f).collect(), q);
            println!(
                "{label:<26} first audio p50 {:>5.0} / p95 {:>5.0} ms   answer's first audio p50 {:>5.0} / p95 {:>5.0} ms   ({} turns, {} with a tool)",
                p(&|t| t.first_audio, 0.5),
                p(&|t| t.first_audio, 0.95),
                p(&|t| t.answer_audio, 0.5),
                p(&|t| t.answer_audio, 0.95),
                turns.len(),
                turns.iter().filter(|t| t.answer_audio.is_some()).count(),
            );
        };
        println!("turn 3 (a tool runs inside brazen), ms after the speech ends:");
        show("with the interim line", &with);
        show("without it", &without);
    } else {
        runtime.block_on(run(&addr, rounds, 0, Mode::Client));
    }
    drop(served);
    std::fs::remove_dir_all(&data).ok();
}

/// Times of one turn, ms from the end of the speech.
#[derive(Debug, Default)]
struct Turn {
    stopped: Option<f64>,
    transcript: Option<f64>,
    first_text: Option<f64>,
    first_audio: Option<f64>,
    heard: String,
    said: String,
    call: Option<String>,
    cached: u64,
    input: u64,
    /// The agent's tools: the first audio after the tool's output, from the end of the speech.
    answer_audio: Option<f64>,
}

/// Plays `rounds` rounds from the `first`; returns the tool turns (the third of each round).
async fn run(addr: &str, rounds: usize, first: usize, mode: Mode) -> Vec<Turn> {
    let questions = if mode == Mode::Client { &ROUNDS } else { &AGENT_ROUNDS };
    let mut spoken = Vec::new();
    for round in questions.iter().cycle().skip(first).take(rounds) {
        let mut audio = Vec::new();
        for text in round {
            audio.push(speak(addr, text).await);
        }
        spoken.push(audio);
    }
    let tools: Value = serde_json::from_str(RETAIL_TOOLS).expect("tools");
    let mut kinds: [Vec<Turn>; 3] = Default::default();
    let mut after_tool = Vec::new();
    for (round, audio) in spoken.iter().enumerate() {
        // A new conversation each round.
        let update = match mode {
            Mode::Client => json!({
                "instructions": RETAIL_INSTRUCTIONS.trim(),
                "tools": tools,
                "input_audio_transcription": {"model": "whisper-1"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}
            }),
            // The agent's own session, with or without its interim line.
            Mode::Agent { interim: true } => json!({}),
            Mode::Agent { interim: false } => json!({"interim_response": null}),
        };
        let ws = connect(addr, update).await;
        let (mut sink, mut stream) = ws.split();
        let mic = Arc::new(Mutex::new(Mic { queue: VecDeque::new(), ended: None }));
        let sender = {
            let mic = mic.clone();
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
            let task = tokio::spawn(async move {
                let start = Instant::now();
                let mut sent = 0usize;
                loop {
                    while let Ok(event) = rx.try_recv() {
                        if event.is_null() {
                            return;
                        }
                        sink.send(Message::Text(event.to_string().into())).await.expect("send");
                    }
                    let chunk: Vec<i16> = {
                        let mut m = mic.lock().unwrap_or_else(|e| e.into_inner());
                        let speech = m.queue.len().min(CHUNK);
                        let mut chunk: Vec<i16> = m.queue.drain(..speech).collect();
                        if speech > 0 && m.queue.is_empty() {
                            // The last voiced sample is "spoken" at its place on the clock.
                            let at = start + Duration::from_secs_f64((sent + speech) as f64 / 24_000.0);
                            m.ended = Some(at);
                        }
                        chunk.resize(CHUNK, 0);
                        chunk
                    };
                    sent += CHUNK;
                    // A microphone sends a chunk once it has been captured.
                    let due = start + Duration::from_secs_f64(sent as f64 / 24_000.0);
                    tokio::time::sleep_until(due.into()).await;
                    let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
                    let event = json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)});
                    sink.send(Message::Text(event.to_string().into())).await.expect("send");
                }
            });
            (tx, task)
        };
        // A second of silence first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        for (kind, samples) in audio.iter().enumerate() {
            {
                let mut m = mic.lock().unwrap_or_else(|e| e.into_inner());
                m.queue.extend(samples.iter().copied());
                m.ended = None;
            }
            let mut turn = Turn::default();
            let mut tool_sent: Option<Instant> = None;
            let mut tool_done = false;
            let mut tool_audio = None;
            let mut audio_bytes = 0usize;
            let since = |mic: &Arc<Mutex<Mic>>| -> Option<f64> {
                let ended = mic.lock().unwrap_or_else(|e| e.into_inner()).ended?;
                Some(Instant::now().saturating_duration_since(ended).as_secs_f64() * 1000.0)
            };
            loop {
                let e = match tokio::time::timeout(Duration::from_secs(60), stream.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(&t).unwrap_or_default(),
                    Ok(Some(Ok(_))) => continue,
                    _ => panic!("no answer in round {round}, turn {kind}: {turn:?}"),
                };
                match e["type"].as_str().unwrap_or("") {
                    "input_audio_buffer.speech_stopped" => turn.stopped = since(&mic),
                    "conversation.item.input_audio_transcription.completed" => {
                        turn.transcript = since(&mic);
                        turn.heard = e["transcript"].as_str().unwrap_or("").to_owned();
                    }
                    "response.audio_transcript.delta" => {
                        if tool_sent.is_none() {
                            turn.first_text.get_or_insert_with(|| since(&mic).unwrap_or(f64::NAN));
                        }
                        turn.said.push_str(e["delta"].as_str().unwrap_or(""));
                    }
                    "conversation.item.created" if e["item"]["type"] == "function_call" => {
                        turn.call = Some(format!(
                            "{}({})",
                            e["item"]["name"].as_str().unwrap_or(""),
                            e["item"]["arguments"].as_str().unwrap_or("")
                        ));
                    }
                    "conversation.item.created" if e["item"]["type"] == "function_call_output" => tool_done = true,
                    "response.audio.delta" => {
                        audio_bytes += e["delta"].as_str().map_or(0, |d| d.len() * 3 / 4);
                        if tool_done {
                            turn.answer_audio.get_or_insert_with(|| since(&mic).unwrap_or(f64::NAN));
                        }
                        match tool_sent {
                            Some(t) => {
                                tool_audio.get_or_insert(t.elapsed().as_secs_f64() * 1000.0);
                            }
                            None => {
                                turn.first_audio.get_or_insert_with(|| since(&mic).unwrap_or(f64::NAN));
                            }
                        }
                    }
                    "response.function_call_arguments.done" => {
                        let name = e["name"].as_str().unwrap_or("").to_owned();
                        turn.call = Some(format!("{name}({})", e["arguments"].as_str().unwrap_or("")));
                        let output = json!({"type": "conversation.item.create", "item": {
                            "type": "function_call_output", "call_id": e["call_id"],
                            "output": tool_result(&name).to_string()}});
                        let _ = sender.0.send(output);
                        let _ = sender.0.send(json!({"type": "response.create"}));
                        tool_sent = Some(Instant::now());
                    }
                    "response.done" => {
                        let usage = &e["response"]["usage"];
                        if tool_sent.is_none() || turn.input == 0 {
                            turn.input = usage["input_token_details"]["text_tokens"].as_u64().unwrap_or(0);
                            turn.cached = usage["input_token_details"]["cached_tokens"].as_u64().unwrap_or(0);
                        }
                        let waiting_for_answer = tool_sent.is_some() && tool_audio.is_none() && turn.said.is_empty();
                        if e["response"]["status"] != "completed" || !waiting_for_answer {
                            break;
                        }
                    }
                    "error" => eprintln!("error: {e}"),
                    _ => {}
                }
            }
            // Let the reply "play" before the next question.
            tokio::time::sleep(Duration::from_secs_f64(audio_bytes as f64 / 48_000.0 + 0.5)).await;
            eprintln!("round {round} turn {kind}: {turn:?} tool answer {tool_audio:?}");
            if let Some(t) = tool_audio {
                after_tool.push(t);
            }
            kinds[kind].push(turn);
        }
        let _ = sender.0.send(Value::Null);
        let _ = sender.1.await;
    }
    if mode != Mode::Client {
        return std::mem::take(&mut kinds[2]);
    }
    let row = |label: &str, turns: &[Turn]| {
        let get = |f: &dyn Fn(&Turn) -> Option<f64>| -> String {
            let v: Vec<f64> = turns.iter().filter_map(f).collect();
            format!("{:>5.0} / {:>5.0}", percentile(v.clone(), 0.5), percentile(v, 0.95))
        };
        println!(
            "{label:<22} {}   {}   {}   {}",
            get(&|t| t.stopped),
            get(&|t| t.transcript),
            get(&|t| t.first_text),
            get(&|t| t.first_audio)
        );
    };
    println!("ms after the speech ends (p50 / p95): speech_stopped, transcript, first text, first audio");
    row("turn 1 (greeting)", &kinds[0]);
    row("turn 2 (small talk)", &kinds[1]);
    row("turn 3 (tool call)", &kinds[2]);
    println!(
        "turn 3: tool result → first audio of the answer p50 {:.0} ms, p95 {:.0} ms",
        percentile(after_tool.clone(), 0.5),
        percentile(after_tool, 0.95)
    );
    Vec::new()
}
