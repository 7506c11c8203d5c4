//! `brazen chat`: a text conversation that speaks. Type a line, see the answer stream, hear it
//! through the default audio device (a player found on the machine: `pw-play`, `paplay` or
//! `aplay`) or, with `--wav-out DIR`, find one WAV file per reply there. The history is kept
//! across turns (it is one Realtime session); `quit` (or end of input) leaves.
//!
//! It speaks the Realtime / Voice Live protocol as any client does: with `--url` to any such
//! server (brazen, Azure Voice Live, OpenAI), else to a `brazen serve` it starts on a free
//! loopback port with the engines and agent given here, and stops when it leaves.

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// What `brazen chat` was told.
pub struct ChatArgs {
    /// A Realtime WebSocket URL to talk to instead of a local server.
    pub url: Option<String>,
    /// The key for `url` (sent as `api-key` and as the bearer token).
    pub api_key: Option<String>,
    /// Flags for the local `brazen serve` (`--llm`, `--tts`, `--agent`, `--config`, …).
    pub serve_args: Vec<String>,
    /// The voice.
    pub voice: Option<String>,
    /// The instructions.
    pub instructions: Option<String>,
    /// Where to write one WAV per reply (instead of playing it).
    pub wav_out: Option<PathBuf>,
}

/// A `brazen serve` started for the chat, stopped when dropped.
struct LocalServer(Child);

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Starts `brazen serve` on a free loopback port; returns it and its WebSocket URL.
fn start_server(args: &[String]) -> Result<(LocalServer, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the brazen binary: {e}"))?;
    eprintln!("starting a local brazen server (its log: $TMPDIR/brazen-chat.log)…");
    let log = std::fs::File::create(std::env::temp_dir().join("brazen-chat.log")).map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start brazen serve: {e}"))?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line).ok();
    let server = LocalServer(child);
    let addr = line.trim().strip_prefix("brazen listening on http://").ok_or_else(|| {
        let log = std::fs::read_to_string(std::env::temp_dir().join("brazen-chat.log")).unwrap_or_default();
        let last: Vec<&str> = log.lines().rev().take(5).collect();
        format!("the local server did not start: {}", last.into_iter().rev().collect::<Vec<_>>().join("\n"))
    })?;
    Ok((server, format!("ws://{addr}/voice-live/realtime")))
}

/// The first audio player on the machine and its arguments for 24 kHz 16-bit mono PCM on
/// standard input.
fn player() -> Option<(String, Vec<String>)> {
    let candidates: [(&str, &[&str]); 3] = [
        ("pw-play", &["--rate", "24000", "--channels", "1", "--format", "s16", "-"]),
        ("paplay", &["--raw", "--rate=24000", "--channels=1", "--format=s16le"]),
        ("aplay", &["-q", "-f", "S16_LE", "-r", "24000", "-c", "1", "-t", "raw"]),
    ];
    let path = std::env::var_os("PATH")?;
    candidates.iter().find_map(|(name, args)| {
        std::env::split_paths(&path)
            .any(|dir| dir.join(name).is_file())
            .then(|| (name.to_string(), args.iter().map(|a| a.to_string()).collect()))
    })
}

/// Plays 24 kHz PCM through `player`; false when it could not (no device).
fn play(player: &(String, Vec<String>), pcm: &[u8]) -> bool {
    let Ok(mut child) = Command::new(&player.0).args(&player.1).stdin(Stdio::piped()).stderr(Stdio::null()).spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(pcm).ok();
    }
    child.wait().is_ok_and(|s| s.success())
}

/// Runs the chat until `quit` or the end of input.
pub async fn run(args: ChatArgs) -> Result<(), String> {
    let (_server, url) = match &args.url {
        Some(url) => (None, url.clone()),
        None => {
            let (server, url) = start_server(&args.serve_args)?;
            (Some(server), url)
        }
    };
    let mut request = url.as_str().into_client_request().map_err(|e| format!("{url} is not a WebSocket URL: {e}"))?;
    if let Some(key) = &args.api_key {
        let headers = request.headers_mut();
        headers.insert("api-key", key.parse().map_err(|_| "the API key is not a valid header value")?);
        let bearer = format!("Bearer {key}");
        headers.insert("authorization", bearer.parse().map_err(|_| "the API key is not a valid header value")?);
    }
    let (mut ws, _) =
        tokio_tungstenite::connect_async(request).await.map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let mut session = json!({"turn_detection": null, "modalities": ["text", "audio"]});
    if let Some(voice) = &args.voice {
        session["voice"] = json!(voice);
    }
    if let Some(instructions) = &args.instructions {
        session["instructions"] = json!(instructions);
    }
    send(&mut ws, json!({"type": "session.update", "session": session})).await?;
    if let Some(dir) = &args.wav_out {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut speaker = if args.wav_out.is_none() { player() } else { None };
    if args.wav_out.is_none() && speaker.is_none() {
        eprintln!("no audio player found (pw-play, paplay, aplay): answers are shown only; --wav-out DIR writes them");
    }
    println!("connected to {url}; type a message, `quit` to leave.");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut replies = 0;
    loop {
        print!("you> ");
        std::io::stdout().flush().ok();
        let Some(line) = lines.recv().await else { break };
        let line = line.trim().to_owned();
        if line.is_empty() {
            continue;
        }
        if matches!(line.as_str(), "quit" | "exit" | "/quit") {
            break;
        }
        let item = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": line}]});
        send(&mut ws, json!({"type": "conversation.item.create", "item": item})).await?;
        send(&mut ws, json!({"type": "response.create"})).await?;
        let pcm = reply(&mut ws).await?;
        replies += 1;
        if let Some(dir) = &args.wav_out {
            let samples: Vec<i16> = pcm.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
            let path = dir.join(format!("reply-{replies:03}.wav"));
            std::fs::write(&path, brazen_audio::wav::encode(&samples, 24_000))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("(speech: {})", path.display());
        } else if let Some(p) = &speaker
            && !pcm.is_empty()
            && !play(p, &pcm)
        {
            eprintln!("(could not play the answer with {}: no audio device?)", p.0);
            speaker = None;
        }
    }
    ws.close(None).await.ok();
    Ok(())
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, event: Value) -> Result<(), String> {
    ws.send(Message::Text(event.to_string().into())).await.map_err(|e| format!("the connection broke: {e}"))
}

/// Shows one reply as it streams; returns its audio (24 kHz PCM).
async fn reply(ws: &mut Ws) -> Result<Vec<u8>, String> {
    let mut pcm = Vec::new();
    let mut started = false;
    let mut out = std::io::stdout();
    while let Some(message) = ws.next().await {
        let message = message.map_err(|e| format!("the connection broke: {e}"))?;
        let Message::Text(text) = message else { continue };
        let Ok(event) = serde_json::from_str::<Value>(&text) else { continue };
        let kind = event["type"].as_str().unwrap_or_default();
        match kind {
            "response.text.delta"
            | "response.output_text.delta"
            | "response.audio_transcript.delta"
            | "response.output_audio_transcript.delta" => {
                if !started {
                    print!("brazen> ");
                    started = true;
                }
                print!("{}", event["delta"].as_str().unwrap_or_default());
                out.flush().ok();
            }
            "response.audio.delta" | "response.output_audio.delta" => {
                if let Ok(bytes) =
                    base64::engine::general_purpose::STANDARD.decode(event["delta"].as_str().unwrap_or(""))
                {
                    pcm.extend(bytes);
                }
            }
            "response.output_item.done" if event["item"]["type"] == "function_call" => {
                let item = &event["item"];
                println!("[{} {}]", item["name"].as_str().unwrap_or("?"), item["arguments"].as_str().unwrap_or(""));
            }
            "error" => println!("error: {}", event["error"]["message"].as_str().unwrap_or("(no message)")),
            "response.done" => {
                let response = &event["response"];
                if response["status"] == "failed" {
                    println!(
                        "error: {}",
                        response["status_details"]["error"]["message"].as_str().unwrap_or("the response failed")
                    );
                }
                // Server-side tools run inside the response: it ends with the answer.
                if started {
                    println!();
                }
                return Ok(pcm);
            }
            _ => {}
        }
    }
    Err("the server closed the connection".into())
}
