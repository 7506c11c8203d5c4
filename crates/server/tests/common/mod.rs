//! Shared by the socket tests: a `brazen serve` on a free loopback port, stopped by PID.

#![allow(dead_code)] // each test binary uses its own part of this

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// A running `brazen serve`, stopped by PID when dropped.
pub struct Server {
    child: Child,
    /// The bound port.
    pub port: u16,
}

impl Server {
    /// Starts with the energy VAD, the echo recogniser, the echo language model and the tone
    /// voice (no models needed) unless `args` choose others.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with_env(args, &[])
    }

    /// As [`Server::start`], with these environment variables set.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        let vad = if args.contains(&"--vad") { &[][..] } else { &["--vad", "energy"][..] };
        let asr = if args.contains(&"--asr") { &[][..] } else { &["--asr", "echo"][..] };
        let llm = if args.contains(&"--llm") { &[][..] } else { &["--llm", "echo"][..] };
        let tts = if args.contains(&"--tts") { &[][..] } else { &["--tts", "tone"][..] };
        let mut child = Command::new(env!("CARGO_BIN_EXE_brazen"))
            .args(["serve", "--port", "0"])
            .args(vad)
            .args(asr)
            .args(llm)
            .args(tts)
            .args(args)
            .env_remove("BRAZEN_API_KEYS")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("brazen starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr =
            line.trim().strip_prefix("brazen listening on http://").unwrap_or_else(|| panic!("unexpected: {line}"));
        let port = addr.rsplit(':').next().unwrap().parse().unwrap();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        Server { child, port }
    }

    /// A plain HTTP/1.1 GET: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.get_with_headers(path);
        (status, body)
    }

    /// A plain HTTP/1.1 GET: (status, the header lines lower-cased, body).
    pub fn get_with_headers(&self, path: &str) -> (u16, String, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
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
    }
}
