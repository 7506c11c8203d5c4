//! brazen against Pipecat on the same models, one server at a time, with one client.
//!
//! Both run Silero VAD, Smart Turn v3.2, Whisper tiny.en, Qwen2.5-Coder 1.5B (the same GGUF:
//! brazen's own runtime; for Pipecat, llama-cpp-python's OpenAI-compatible server) and Piper
//! joe, with the same instructions and sampling (temperature, token cap). Pipecat 1.14 runs
//! `bench/pipecat/bot.py`: its recommended turn-taking (Silero, stop after 0.2 s, Smart Turn v3)
//! behind a WebSocket of raw PCM and JSON events. brazen runs its default (`semantic_vad`).
//!
//! The client streams each utterance like a microphone (40 ms chunks of 24 kHz PCM at real-time
//! pace, silence between turns, the next question once the reply has played out) and records,
//! per utterance:
//! - **voice-to-voice**: from the end of the question's last voiced sample to when the reply's
//!   first audible sample plays (the reply plays from its first byte, in real time);
//! - **end of turn**: to `speech_stopped` (brazen) / `user_stopped_speaking` (Pipecat);
//! - **cut-offs**: an utterance with a 400–600 ms pause mid-sentence whose turn ended more than
//!   once;
//! - **transcription errors**: the word error rate of the final transcript;
//!
//! and per server: CPU-seconds per turn (the server's processes, user + system, over the
//! conversations) and their peak RSS (summed).
//!
//! Modes: `compare` (a conversation of warm questions per voice, then the paused utterances),
//! `concurrent` (N conversations at once, `--conversations N`), and `soak` (brazen only: N
//! conversations at once, each with the avatar streaming over its socket, one after another
//! for `--minutes M`; latency per five minutes, and the server's memory, open files and threads
//! every minute, before and after).
//!
//! Run: `bench/vs-pipecat.sh [--modes compare,concurrent,soak] [--conversations 3] [--only brazen|pipecat]
//! [--voices 1-5] [--brazen-turn semantic_vad|server_vad] [--minutes 30] [--avatar-size 512x512]`.

#[path = "served.rs"]
mod served;
#[path = "spoken.rs"]
mod spoken;
#[path = "stats.rs"]
mod stats;
#[path = "voices.rs"]
mod voices;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_speech::Voice;
use brazen_speech::wer::word_error_rate;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use served::{Served, fds_and_threads, rss_kib};
use spoken::{PAUSED, QUESTIONS, spoken};
use stats::percentile;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use voices::Voices;

/// Samples per chunk the client sends (40 ms at 24 kHz).
const CHUNK: usize = 960;

/// A sample louder than this is sound (of the question, or of the reply).
const AUDIBLE: u16 = 300;

/// The instructions both servers answer with.
const INSTRUCTIONS: &str = "You are the voice assistant of Contoso Fashion, a clothing shop. Answer the customer in one or two short spoken sentences, without lists or markdown.";

/// Sampling, the same on both.
const TEMPERATURE: f64 = 0.8;
const MAX_TOKENS: u64 = 100;

/// `error` events the servers sent (counted by the soak).
static ERRORS: AtomicUsize = AtomicUsize::new(0);

/// One utterance: its audio at 24 kHz (300 ms of silence first), where its sound ends, what it
/// says.
struct Utterance {
    label: String,
    text: String,
    audio: Vec<i16>,
    last_sound: usize,
    paused: bool,
}

fn utterance(voice: &dyn Voice, name: &str, text: &str, pause: Option<(&str, usize)>) -> Utterance {
    let (speech, label) = spoken(voice, name, text, pause);
    let audio = [vec![0; 24 * 300], speech].concat();
    let last_sound = audio.iter().rposition(|s| s.unsigned_abs() > AUDIBLE).unwrap_or(0);
    Utterance { label, text: text.replace("...", ""), audio, last_sound, paused: pause.is_some() }
}

/// What a server said, in the two protocols' common terms.
enum Heard {
    /// The user's turn ended (`speech_stopped` / `user_stopped_speaking`).
    TurnEnded,
    /// A final transcript of the user.
    Transcript(String),
    /// Reply audio, 24 kHz.
    Audio(Vec<i16>),
    /// Bytes of the avatar's video (brazen's `response.video.delta`).
    Video(usize),
    /// The avatar's speech started playing (`session.avatar.switch_to_speaking`).
    AvatarSpeaking,
    /// The reply is over: generated (brazen's `response.done`; its audio then plays out) or
    /// played (Pipecat's `bot_stopped_speaking`).
    ReplyDone,
    /// Anything else.
    Other,
}

/// Which server a conversation talks to.
#[derive(Clone, Copy, PartialEq)]
enum System {
    Brazen,
    Pipecat,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Brazen => "brazen",
            System::Pipecat => "Pipecat",
        }
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A conversation with one server.
struct Conversation {
    system: System,
    ws: Ws,
}

impl Conversation {
    /// Opens a conversation; with `avatar` (brazen only) the session streams it.
    async fn open(system: System, addr: &str, turn_detection: &Value, avatar: Option<&Value>) -> Conversation {
        let url = match system {
            System::Brazen => format!("ws://{addr}/voice-live/realtime"),
            System::Pipecat => format!("ws://{addr}/"),
        };
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("connects");
        let mut c = Conversation { system, ws };
        if system == System::Brazen {
            let mut session = json!({
                "instructions": INSTRUCTIONS,
                "temperature": TEMPERATURE,
                "max_response_output_tokens": MAX_TOKENS,
                "turn_detection": turn_detection,
                "input_audio_transcription": {"model": "whisper-1"},
            });
            if let Some(avatar) = avatar {
                session["avatar"] = avatar.clone();
            }
            c.send_json(json!({"type": "session.update", "session": session})).await;
            loop {
                let Some(Ok(Message::Text(t))) = c.ws.next().await else { panic!("no session.updated") };
                let e: Value = serde_json::from_str(&t).unwrap_or_default();
                assert_ne!(e["type"], "error", "{e}");
                if e["type"] == "session.updated" {
                    break;
                }
            }
        }
        c
    }

    async fn send_json(&mut self, event: Value) {
        self.ws.send(Message::Text(event.to_string().into())).await.expect("send");
    }

    async fn send_audio(&mut self, chunk: &[i16]) {
        let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
        match self.system {
            System::Brazen => {
                self.send_json(json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)})).await
            }
            System::Pipecat => self.ws.send(Message::Binary(bytes.into())).await.expect("send"),
        }
    }

    /// The next thing heard before `until`, if any.
    async fn hear(&mut self, until: Instant) -> Option<Heard> {
        let message = match tokio::time::timeout(until.saturating_duration_since(Instant::now()), self.ws.next()).await
        {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => panic!("{} connection failed: {e}", self.system.name()),
            Ok(None) => panic!("{} closed the connection", self.system.name()),
            Err(_) => return None,
        };
        let pcm = |bytes: &[u8]| bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect::<Vec<_>>();
        Some(match message {
            Message::Binary(bytes) => Heard::Audio(pcm(&bytes)),
            Message::Text(t) => {
                let e: Value = serde_json::from_str(&t).unwrap_or_default();
                let kind = e["type"].as_str().unwrap_or_default();
                match (self.system, kind) {
                    (_, "error") => {
                        eprintln!("{} error: {e}", self.system.name());
                        ERRORS.fetch_add(1, Ordering::Relaxed);
                        Heard::Other
                    }
                    (System::Brazen, "response.video.delta") => {
                        Heard::Video(e["delta"].as_str().map_or(0, |d| d.len() / 4 * 3))
                    }
                    (System::Brazen, "session.avatar.switch_to_speaking") => Heard::AvatarSpeaking,
                    (System::Brazen, "input_audio_buffer.speech_stopped") => Heard::TurnEnded,
                    (System::Brazen, "conversation.item.input_audio_transcription.completed") => {
                        Heard::Transcript(e["transcript"].as_str().unwrap_or_default().to_owned())
                    }
                    (System::Brazen, "response.audio.delta") => {
                        Heard::Audio(pcm(&B64.decode(e["delta"].as_str().unwrap_or_default()).unwrap_or_default()))
                    }
                    (System::Brazen, "response.done") => Heard::ReplyDone,
                    (System::Pipecat, "user_stopped_speaking") => Heard::TurnEnded,
                    (System::Pipecat, "transcript") => {
                        Heard::Transcript(e["text"].as_str().unwrap_or_default().to_owned())
                    }
                    (System::Pipecat, "bot_stopped_speaking") => Heard::ReplyDone,
                    _ => Heard::Other,
                }
            }
            _ => Heard::Other,
        })
    }
}

/// One turn as measured.
#[derive(Default, Clone)]
struct Turn {
    /// End of the question's sound → its first audible reply sample plays, ms (NaN: none).
    voice_to_voice_ms: f64,
    /// End of the question's sound → the turn ended, ms (NaN: not after it).
    end_of_turn_ms: f64,
    /// Turn ends while it was spoken (before its sound ended, and once after).
    turn_ends: usize,
    /// Word error rate of its transcript.
    wer: f64,
    paused: bool,
    first: bool,
    /// When the question's sound ended.
    when: Option<Instant>,
    /// Bytes of avatar video received while it was asked and answered.
    video_bytes: usize,
    /// End of the question's sound → the avatar began speaking the reply, ms (NaN: no avatar,
    /// or it did not).
    avatar_ms: f64,
}

/// Plays `utterances` into one conversation, each after the previous reply has played out.
async fn converse(
    system: System,
    addr: &str,
    turn: &Value,
    avatar: Option<&Value>,
    utterances: &[&Utterance],
    tag: &str,
) -> Vec<Turn> {
    let mut c = Conversation::open(system, addr, turn, avatar).await;
    let silence = vec![0i16; CHUNK];
    let started = Instant::now();
    let mut sent = 0u64; // chunks sent: the microphone's clock
    let mut turns = Vec::new();
    for (n, u) in utterances.iter().enumerate() {
        let mut turn =
            Turn { paused: u.paused, first: n == 0, end_of_turn_ms: f64::NAN, avatar_ms: f64::NAN, ..Turn::default() };
        let (mut sound_end, mut transcript) = (None::<Instant>, String::new());
        let (mut first_audio, mut audio_samples, mut audible_at) = (None::<Instant>, 0usize, None::<Instant>);
        let mut done = false;
        let mut chunks = u.audio.chunks(CHUNK);
        let mut i = 0usize;
        let cap = Instant::now() + Duration::from_secs(40);
        loop {
            let chunk = chunks.next();
            c.send_audio(chunk.unwrap_or(&silence)).await;
            sent += 1;
            i += 1;
            if chunk.is_some() && sound_end.is_none() && i * CHUNK > u.last_sound {
                let lead = (i * CHUNK - u.last_sound) as f64 / 24.0;
                sound_end = Some(Instant::now() - Duration::from_secs_f64(lead / 1_000.0));
            }
            let due = started + Duration::from_millis(40 * sent);
            while let Some(heard) = c.hear(due).await {
                match heard {
                    Heard::TurnEnded => {
                        turn.turn_ends += 1;
                        if let Some(end) = sound_end
                            && turn.end_of_turn_ms.is_nan()
                        {
                            turn.end_of_turn_ms = end.elapsed().as_secs_f64() * 1_000.0;
                        }
                    }
                    Heard::Transcript(t) => {
                        transcript.push(' ');
                        transcript.push_str(&t);
                    }
                    Heard::Audio(samples) => {
                        let at = *first_audio.get_or_insert_with(Instant::now);
                        if audible_at.is_none()
                            && let Some(k) = samples.iter().position(|s| s.unsigned_abs() > AUDIBLE)
                        {
                            audible_at = Some(at + Duration::from_secs_f64((audio_samples + k) as f64 / 24_000.0));
                        }
                        audio_samples += samples.len();
                    }
                    Heard::Video(bytes) => turn.video_bytes += bytes,
                    Heard::AvatarSpeaking => {
                        if let Some(end) = sound_end
                            && turn.avatar_ms.is_nan()
                        {
                            turn.avatar_ms = end.elapsed().as_secs_f64() * 1_000.0;
                        }
                    }
                    Heard::ReplyDone => done = sound_end.is_some(),
                    Heard::Other => {}
                }
            }
            // The reply has played out (brazen sends faster than real time: its audio plays on
            // from the first byte), and a second has passed.
            let played = first_audio.map(|at| at + Duration::from_secs_f64(audio_samples as f64 / 24_000.0));
            let over = done && played.is_none_or(|p| Instant::now() > p + Duration::from_secs(1));
            if (chunk.is_none() && over) || Instant::now() > cap {
                break;
            }
        }
        if let (Some(end), Some(heard)) = (sound_end, audible_at) {
            turn.voice_to_voice_ms = heard.duration_since(end).as_secs_f64() * 1_000.0;
        } else {
            turn.voice_to_voice_ms = f64::NAN;
        }
        turn.when = sound_end;
        turn.wer = word_error_rate(&u.text, transcript.trim());
        eprintln!(
            "{tag} {}: v2v {:.0} ms, end of turn {:.0} ms, {} turn end(s), WER {:.0} %: {} → {:?}",
            system.name(),
            turn.voice_to_voice_ms,
            turn.end_of_turn_ms,
            turn.turn_ends,
            turn.wer * 100.0,
            u.label,
            transcript.trim()
        );
        turns.push(turn);
    }
    let _ = c.ws.close(None).await;
    turns
}

/// Processes making up a server, for CPU time and memory.
struct Processes(Vec<u32>);

impl Processes {
    /// User + system CPU seconds of the processes and their waited-for children.
    fn cpu_seconds(&self) -> f64 {
        let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        self.0
            .iter()
            .map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // Fields after the command's closing parenthesis: utime is the 12th, stime 13th.
                let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
                (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / tick
            })
            .sum()
    }

    /// Summed peak resident memory (`VmHWM`), GiB.
    fn peak_gib(&self) -> f64 {
        self.0.iter().map(|&pid| served::status_kib(pid, "VmHWM:") as f64).sum::<f64>() / 1_048_576.0
    }
}

/// A child process started by the benchmark, killed when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program args…` and waits for the stdout line starting with `ready`; returns the
/// rest of that line.
fn spawn_until(program: &str, args: &[&str], ready: &str) -> (Spawned, String) {
    let mut child = Spawned(
        Command::new(program)
            .args(args)
            .env("HF_HUB_OFFLINE", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} starts: {e}")),
    );
    let mut lines = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.strip_prefix(ready) {
                    // Keep draining its stdout so it never blocks on a full pipe.
                    std::thread::spawn(move || for _ in lines.by_ref() {});
                    return (child, rest.trim().to_owned());
                }
            }
            _ => panic!("{program} did not start (no line {ready:?})"),
        }
    }
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A server under test: its address and processes (kept alive while held).
struct Server {
    addr: String,
    processes: Processes,
    _keep: Vec<Box<dyn std::any::Any>>,
}

struct Args {
    brazen: String,
    python: String,
    bot: String,
    llama_python: String,
    gguf: String,
    modes: Vec<String>,
    conversations: usize,
    only: Option<String>,
    /// How many of the five voices speak (a quick check: 1).
    voices: usize,
    /// brazen's turn detection: `semantic_vad` (default) or `server_vad` (500 ms of silence).
    brazen_turn: Value,
    /// How long the soak runs.
    minutes: u64,
    /// The soak's avatar video size.
    avatar_size: (u32, u32),
}

fn args() -> Args {
    let args: Vec<String> = std::env::args().collect();
    let after = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let need = |flag: &str| after(flag).unwrap_or_else(|| panic!("{flag} is required"));
    Args {
        brazen: need("--brazen"),
        python: need("--pipecat-python"),
        bot: need("--bot"),
        llama_python: need("--llama-python"),
        gguf: need("--gguf"),
        modes: after("--modes").unwrap_or_else(|| "compare,concurrent".into()).split(',').map(str::to_owned).collect(),
        conversations: after("--conversations").and_then(|n| n.parse().ok()).unwrap_or(3),
        only: after("--only"),
        voices: after("--voices").and_then(|n| n.parse().ok()).unwrap_or(5),
        brazen_turn: match after("--brazen-turn").as_deref() {
            Some("server_vad") => json!({"type": "server_vad", "silence_duration_ms": 500}),
            None | Some("semantic_vad") => json!({"type": "semantic_vad", "eagerness": "auto"}),
            Some(other) => panic!("--brazen-turn {other:?}: semantic_vad or server_vad"),
        },
        minutes: after("--minutes").and_then(|n| n.parse().ok()).unwrap_or(30),
        avatar_size: after("--avatar-size")
            .map(|s| {
                s.split_once('x')
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                    .unwrap_or_else(|| panic!("--avatar-size {s:?}: WIDTHxHEIGHT"))
            })
            .unwrap_or((512, 512)),
    }
}

fn start(system: System, a: &Args) -> Server {
    match system {
        System::Brazen => {
            let served = Served::start(
                &a.brazen,
                &[
                    "--vad",
                    "silero",
                    "--turn",
                    "smart-turn",
                    "--asr",
                    "whisper-tiny-en",
                    "--llm",
                    "qwen2.5-coder-1.5b",
                    "--tts",
                    "piper",
                    "--agent",
                    "none",
                ],
                &[],
                std::env::var_os("BRAZEN_LOG").is_some(),
            );
            Server {
                addr: served.addr.clone(),
                processes: Processes(vec![served.pid()]),
                _keep: vec![Box::new(served)],
            }
        }
        System::Pipecat => {
            let llama_port = free_port().to_string();
            let llama = Spawned(
                Command::new(&a.llama_python)
                    .args(["-m", "llama_cpp.server", "--model", &a.gguf, "--host", "127.0.0.1", "--port", &llama_port])
                    .args(["--n_ctx", "4096", "--n_threads", "2", "--verbose", "false"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("llama-cpp-python's server starts"),
            );
            let url = format!("http://127.0.0.1:{llama_port}/v1");
            let deadline = Instant::now() + Duration::from_secs(120);
            while std::net::TcpStream::connect(format!("127.0.0.1:{llama_port}")).is_err() {
                assert!(Instant::now() < deadline, "llama-cpp-python's server did not listen");
                std::thread::sleep(Duration::from_millis(200));
            }
            let instructions = std::env::temp_dir().join(format!("brazen-vs-pipecat-{}.txt", std::process::id()));
            std::fs::write(&instructions, INSTRUCTIONS).unwrap();
            let port = free_port().to_string();
            let (bot, addr) = spawn_until(
                &a.python,
                &[
                    &a.bot,
                    "--port",
                    &port,
                    "--llm-url",
                    &url,
                    "--instructions-file",
                    instructions.to_str().unwrap(),
                    "--temperature",
                    &TEMPERATURE.to_string(),
                    "--max-tokens",
                    &MAX_TOKENS.to_string(),
                ],
                "pipecat bot listening on",
            );
            let pids = vec![bot.0.id(), llama.0.id()];
            Server { addr, processes: Processes(pids), _keep: vec![Box::new(bot), Box::new(llama)] }
        }
    }
}

/// The figures of one system in one mode.
struct Figures {
    cold: Vec<f64>,
    warm: Vec<f64>,
    ends: Vec<f64>,
    cut: usize,
    paused: usize,
    wer: Vec<f64>,
    cpu_per_turn: f64,
    peak_gib: f64,
    per_conversation_p50: Vec<f64>,
}

fn figures(turns: &[Vec<Turn>], cpu: f64, peak_gib: f64) -> Figures {
    let all: Vec<&Turn> = turns.iter().flatten().collect();
    let v2v = |pick: &dyn Fn(&Turn) -> bool| {
        all.iter().filter(|t| pick(t) && !t.paused).map(|t| t.voice_to_voice_ms).filter(|x| x.is_finite()).collect()
    };
    Figures {
        cold: v2v(&|t| t.first),
        warm: v2v(&|t| !t.first),
        ends: all.iter().filter(|t| !t.paused).map(|t| t.end_of_turn_ms).filter(|x| x.is_finite()).collect(),
        cut: all.iter().filter(|t| t.paused && t.turn_ends > 1).count(),
        paused: all.iter().filter(|t| t.paused).count(),
        wer: all.iter().map(|t| t.wer).collect(),
        cpu_per_turn: cpu / all.len().max(1) as f64,
        peak_gib,
        per_conversation_p50: turns
            .iter()
            .map(|c| percentile(c.iter().filter(|t| !t.first).map(|t| t.voice_to_voice_ms).collect(), 0.5))
            .collect(),
    }
}

fn ms(v: &[f64], p: f64) -> String {
    format!("{:.2}", percentile(v.to_vec(), p) / 1_000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let voices = Voices::load();
    let speakers = voices.speakers();
    // Compare: per voice, a conversation of the questions, then its paused sentences.
    let mut conversations: Vec<Vec<Utterance>> = Vec::new();
    for (v, (voice, name)) in speakers.iter().enumerate().take(a.voices) {
        let mut c: Vec<Utterance> = QUESTIONS.iter().map(|q| utterance(*voice, name, q, None)).collect();
        for (p, (text, after)) in PAUSED.iter().enumerate() {
            c.push(utterance(*voice, name, text, Some((after, [400, 500, 600][(v + p) % 3]))));
        }
        conversations.push(c);
    }
    let systems: Vec<System> = [System::Brazen, System::Pipecat]
        .into_iter()
        .filter(|s| a.only.as_deref().is_none_or(|o| o.eq_ignore_ascii_case(s.name())))
        .collect();
    for mode in &a.modes {
        if mode == "soak" {
            soak(&a, &conversations).await;
            continue;
        }
        let mut rows = Vec::new();
        for &system in &systems {
            let server = start(system, &a);
            let cpu0 = server.processes.cpu_seconds();
            let turns = match mode.as_str() {
                "compare" => {
                    let mut all = Vec::new();
                    for (k, c) in conversations.iter().enumerate() {
                        let c: Vec<&Utterance> = c.iter().collect();
                        all.push(converse(system, &server.addr, &a.brazen_turn, None, &c, &format!("[{k}]")).await);
                    }
                    all
                }
                "concurrent" => {
                    let tasks: Vec<_> = (0..a.conversations)
                        .map(|k| {
                            let c: Vec<&Utterance> =
                                conversations[k % conversations.len()].iter().filter(|u| !u.paused).collect();
                            let (addr, turn) = (server.addr.clone(), a.brazen_turn.clone());
                            // Start a little apart, as callers do.
                            async move {
                                tokio::time::sleep(Duration::from_millis(700 * k as u64)).await;
                                converse(system, &addr, &turn, None, &c, &format!("[c{k}]")).await
                            }
                        })
                        .collect();
                    futures_util::future::join_all(tasks).await
                }
                other => panic!("unknown mode {other:?}: compare, concurrent or soak"),
            };
            let cpu = server.processes.cpu_seconds() - cpu0;
            rows.push((system, figures(&turns, cpu, server.processes.peak_gib())));
        }
        println!("\n### {mode}\n");
        println!(
            "| server | voice-to-voice warm p50 / p95 (s) | first turn p50 (s) | end of turn p50 (ms) | paused mid-sentence: cut off | WER | CPU-s per turn | peak RSS (GiB) | per-conversation warm p50 (s) |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for (system, f) in &rows {
            let wer = f.wer.iter().sum::<f64>() / f.wer.len().max(1) as f64;
            println!(
                "| {} | {} / {} | {} | {:.0} | {} of {} | {:.1} % | {:.2} | {:.2} | {} |",
                system.name(),
                ms(&f.warm, 0.5),
                ms(&f.warm, 0.95),
                ms(&f.cold, 0.5),
                percentile(f.ends.clone(), 0.5),
                f.cut,
                f.paused,
                wer * 100.0,
                f.cpu_per_turn,
                f.peak_gib,
                f.per_conversation_p50.iter().map(|x| format!("{:.2}", x / 1_000.0)).collect::<Vec<_>>().join(", ")
            );
        }
        if let [(_, b), (_, p)] = &rows[..] {
            let ratio = |x: &[f64], y: &[f64], q| percentile(x.to_vec(), q) / percentile(y.to_vec(), q);
            println!(
                "\nbrazen / Pipecat: warm p50 {:.2}, warm p95 {:.2}, first turn {:.2}, CPU per turn {:.2}, peak RSS {:.2}",
                ratio(&b.warm, &p.warm, 0.5),
                ratio(&b.warm, &p.warm, 0.95),
                ratio(&b.cold, &p.cold, 0.5),
                b.cpu_per_turn / p.cpu_per_turn,
                b.peak_gib / p.peak_gib
            );
        }
    }
}

/// The soak: `--conversations` spoken conversations at once with brazen, each with the avatar
/// streaming over its socket, one after another for `--minutes`; then the latency of each five
/// minutes, the server's memory, open files and threads every minute and before and after, the
/// errors and the video received.
async fn soak(a: &Args, conversations: &[Vec<Utterance>]) {
    let server = start(System::Brazen, a);
    let pid = server.processes.0[0];
    let (width, height) = a.avatar_size;
    let avatar = json!({"character": "lisa", "output_protocol": "websocket", "output_audit_audio": true,
        "video": {"resolution": {"width": width, "height": height}}});
    // Before: the models loaded, a conversation held and closed (so the engines' lazy state,
    // the first avatar's tables and the worker threads exist), then idle.
    let warm: Vec<&Utterance> = conversations[0].iter().filter(|u| !u.paused).take(2).collect();
    converse(System::Brazen, &server.addr, &a.brazen_turn, Some(&avatar), &warm, "[warm]").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sample = || {
        let (fds, threads) = fds_and_threads(pid);
        (rss_kib(pid), fds, threads)
    };
    let before = sample();
    let errors_before = ERRORS.load(Ordering::Relaxed);
    let started = Instant::now();
    let until = started + Duration::from_secs(a.minutes * 60);
    let talks = (0..a.conversations).map(|k| {
        let (addr, turn, avatar) = (server.addr.clone(), a.brazen_turn.clone(), avatar.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(700 * k as u64)).await;
            let mut turns = Vec::new();
            let mut round = 0;
            let mut failed = 0;
            while Instant::now() < until {
                let c: Vec<&Utterance> =
                    conversations[(k + round) % conversations.len()].iter().filter(|u| !u.paused).collect();
                let tag = format!("[s{k}.{round}]");
                // A conversation that fails (its connection lost, say) is counted, and the next
                // one starts: the soak goes on.
                let talk = converse(System::Brazen, &addr, &turn, Some(&avatar), &c, &tag);
                match futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(talk)).await {
                    Ok(done) => turns.extend(done),
                    Err(_) => {
                        failed += 1;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                round += 1;
            }
            (turns, round, failed)
        }
    });
    let talking = futures_util::future::join_all(talks);
    tokio::pin!(talking);
    // (minute, RSS KiB, open files, threads)
    let mut series = Vec::new();
    let results = loop {
        tokio::select! {
            results = &mut talking => break results,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {
                let (rss, fds, threads) = sample();
                let minute = started.elapsed().as_secs_f64() / 60.0;
                eprintln!("soak: {minute:>5.1} min  RSS {rss} KiB  open files {fds}  threads {threads}");
                series.push((minute, rss, fds, threads));
            }
        }
    };
    let ran = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = sample();
    // Turns asked before the end (the conversations in progress then finish, fewer at once).
    let turns: Vec<&Turn> =
        results.iter().flat_map(|(t, _, _)| t).filter(|t| t.when.is_some_and(|at| at < until)).collect();
    let sessions: usize = results.iter().map(|(_, rounds, _)| rounds).sum();
    let failed: usize = results.iter().map(|(_, _, failed)| failed).sum();
    println!(
        "\n### soak: {} conversations at once for {:.1} min, avatar {width}×{height} over each socket\n",
        a.conversations,
        ran.as_secs_f64() / 60.0
    );
    println!(
        "| minutes | turns | voice-to-voice p50 / p95 (s) | avatar speaks p50 / p95 (s) | no reply | end of turn p50 (ms) | video received (MB) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let window = 5.0_f64.min(a.minutes as f64);
    let windows = (a.minutes as f64 / window).floor().max(1.0) as usize;
    let mut p95s = Vec::new();
    for w in 0..windows {
        let within: Vec<&&Turn> = turns
            .iter()
            .filter(|t| {
                t.when.is_some_and(|at| {
                    let minute = at.saturating_duration_since(started).as_secs_f64() / 60.0;
                    minute >= w as f64 * window && minute < (w + 1) as f64 * window
                })
            })
            .collect();
        let v2v: Vec<f64> = within.iter().map(|t| t.voice_to_voice_ms).filter(|x| x.is_finite()).collect();
        let ends: Vec<f64> = within.iter().map(|t| t.end_of_turn_ms).filter(|x| x.is_finite()).collect();
        let avatar: Vec<f64> = within.iter().map(|t| t.avatar_ms).filter(|x| x.is_finite()).collect();
        p95s.push(percentile(v2v.clone(), 0.95));
        println!(
            "| {}–{} | {} | {} / {} | {} / {} | {} | {:.0} | {:.1} |",
            w as f64 * window,
            (w + 1) as f64 * window,
            within.len(),
            ms(&v2v, 0.5),
            ms(&v2v, 0.95),
            ms(&avatar, 0.5),
            ms(&avatar, 0.95),
            within.len() - v2v.len(),
            percentile(ends, 0.5),
            within.iter().map(|t| t.video_bytes).sum::<usize>() as f64 / 1e6
        );
    }
    let all: Vec<f64> = turns.iter().map(|t| t.voice_to_voice_ms).filter(|x| x.is_finite()).collect();
    let avatar: Vec<f64> = turns.iter().map(|t| t.avatar_ms).filter(|x| x.is_finite()).collect();
    println!(
        "\nall: {} turns in {sessions} sessions ({failed} failed), voice-to-voice p50 {} s, p95 {} s, avatar speaks p50 {} s, p95 {} s; last window's voice-to-voice p95 / first's: {:.2}; error events: {}",
        turns.len(),
        ms(&all, 0.5),
        ms(&all, 0.95),
        ms(&avatar, 0.5),
        ms(&avatar, 0.95),
        p95s.last().unwrap_or(&f64::NAN) / p95s.first().unwrap_or(&f64::NAN),
        ERRORS.load(Ordering::Relaxed) - errors_before
    );
    println!("\n| minute | RSS (MiB) | open files | threads |\n| --- | --- | --- | --- |");
    println!("| before (idle) | {:.0} | {} | {} |", before.0 as f64 / 1024.0, before.1, before.2);
    for (minute, rss, fds, threads) in &series {
        println!("| {minute:.1} | {:.0} | {fds} | {threads} |", *rss as f64 / 1024.0);
    }
    println!("| after (idle, 5 s) | {:.0} | {} | {} |", after.0 as f64 / 1024.0, after.1, after.2);
}
