//! Shared by the socket tests: a `brazen serve` on a free loopback port, stopped by PID.

#![allow(dead_code)] // each test binary uses its own part of this

pub mod llama;
pub mod postgres;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The `brazen` binary under test: this build's, or `BRAZEN_TEST_BIN` (to run the same tests
/// against another build, e.g. one from before a fix).
pub fn binary() -> String {
    std::env::var("BRAZEN_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_brazen").to_owned())
}

/// A running `brazen serve`, stopped by PID when dropped.
pub struct Server {
    child: Child,
    /// The bound port.
    pub port: u16,
    /// Its data directory (database, agent documents), removed when it stops.
    pub data_dir: std::path::PathBuf,
}

impl Server {
    /// Starts with the energy VAD, no end-of-turn model, the echo recogniser, the echo language
    /// model and the tone voice (no models needed) unless `args` choose others.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// As [`Server::start`], with these environment variables set.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let vad = if args.contains(&"--vad") { &[][..] } else { &["--vad", "energy"][..] };
        let turn = if args.contains(&"--turn") { &[][..] } else { &["--turn", "none"][..] };
        let asr = if args.contains(&"--asr") { &[][..] } else { &["--asr", "echo"][..] };
        let llm = if args.contains(&"--llm") { &[][..] } else { &["--llm", "echo"][..] };
        let tts = if args.contains(&"--tts") { &[][..] } else { &["--tts", "tone"][..] };
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let data_dir = std::env::temp_dir().join(format!("brazen-test-data-{}-{n}", std::process::id()));
        let mut child = Command::new(binary())
            .args(["serve", "--port", "0"])
            .args(vad)
            .args(turn)
            .args(asr)
            .args(llm)
            .args(tts)
            .args(args)
            .env_remove("BRAZEN_API_KEYS")
            .env("BRAZEN_DATA_DIR", &data_dir)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("BRAZEN_TEST_SERVER_LOG").is_some() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .expect("brazen starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr =
            line.trim().strip_prefix("brazen listening on http://").unwrap_or_else(|| panic!("unexpected: {line}"));
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Server { child, port, data_dir }
    }

    /// Starts with `config` as its TOML configuration file (and `args` as for [`Server::start`]).
    pub fn start_with_config(config: &str, args: &[&str]) -> Server {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("brazen-test-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, config).unwrap();
        let path = path.to_str().unwrap().to_owned();
        let mut all = vec!["--config", path.as_str()];
        all.extend_from_slice(args);
        Server::start(&all)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory now (`VmRSS`) and at its peak (`VmHWM`), MB.
    pub fn memory_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Waits for the server to exit by itself (after a signal): its exit status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// A plain HTTP/1.1 GET: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.get_with_headers(path);
        (status, body)
    }

    /// A plain HTTP/1.1 request with these extra headers and body: (status, the header lines
    /// lower-cased, body).
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n", self.port);
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("connection")) {
            head.push_str("Connection: close\r\n");
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body.as_bytes()).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (status, head.to_ascii_lowercase(), body.to_owned())
    }

    /// A plain HTTP/1.1 GET: (status, the header lines lower-cased, body).
    pub fn get_with_headers(&self, path: &str) -> (u16, String, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.port).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (status, head.to_ascii_lowercase(), body.to_owned())
    }
}

impl Server {
    /// The engines `/health` reports.
    pub fn engines(&self) -> Value {
        let (_, body) = self.get("/health");
        serde_json::from_str::<Value>(&body).unwrap()["engines"].clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A client WebSocket.
pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket at `path` with these request headers: the socket and the subprotocol the
/// server chose, or `"STATUS body"` when it refused.
pub async fn connect(port: u16, path: &str, headers: &[(&'static str, &str)]) -> Result<(Ws, Option<String>), String> {
    let mut req = format!("ws://127.0.0.1:{port}{path}").into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, resp)) => {
            let proto = resp.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_owned());
            Ok((ws, proto))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).into_owned();
            Err(format!("{} {body}", resp.status().as_u16()))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The next event (pings skipped), waiting at most 60 s.
pub async fn next_event(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next()).await.expect("an event within 60 s");
        match msg.expect("socket open").expect("frame") {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Pong(_) | Message::Ping(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Reads events until one of type `kind`; returns all of them.
pub async fn until(ws: &mut Ws, kind: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let e = next_event(ws).await;
        let done = e["type"] == kind;
        seen.push(e);
        if done {
            return seen;
        }
    }
}

/// Sends an event.
pub async fn send(ws: &mut Ws, event: Value) {
    ws.send(Message::Text(event.to_string().into())).await.unwrap();
}

/// Reads the next event, which must be an `error` with `code` and a message.
pub async fn expect_error(ws: &mut Ws, code: &str) -> Value {
    let e = next_event(ws).await;
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["error"]["code"], code, "{e}");
    assert!(e["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    e
}

/// The next event within `wait`, or `None` (quiet, closed, or not JSON).
pub async fn next_within(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return serde_json::from_str(&t).ok(),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Piper's "joe" voice without its random variation, installed if missing: the caller of the
/// tests that speak to the server.
pub fn piper_joe() -> brazen_speech::PiperVoice {
    use brazen_models::{Manifest, Store, progress};
    let store = Store::new(Store::default_root());
    let install = |name: &str| store.install(Manifest::builtin().get(name).unwrap(), &progress()).unwrap();
    let dir = install("piper-en-us-joe-medium");
    let ort = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    brazen_speech::PiperVoice::load(&dir.join("en_US-joe-medium.onnx"), &dir.join("en_US-joe-medium.onnx.json"), &ort)
        .unwrap()
        .with_noise(0.0, 0.0)
}

/// `samples` at `rate` Hz, resampled to 24 kHz (the sessions' input rate).
pub fn at_24k(samples: &[i16], rate: u32) -> Vec<i16> {
    let mut out = Vec::new();
    let mut r = brazen_audio::Resampler::new(rate, 24_000);
    r.process_i16(samples, &mut out);
    r.flush_i16(&mut out);
    out
}

/// The user's lines of a stored conversation (`/api/conversations/{id}`), in order.
pub fn user_lines(conversation: &Value) -> Vec<String> {
    let entries = conversation["entries"].as_array().map(Vec::as_slice).unwrap_or_default();
    entries.iter().filter(|e| e["role"] == "user").filter_map(|e| e["text"].as_str().map(str::to_owned)).collect()
}
