//! `brazen chat` as a person uses it, in a terminal (tmux): typed lines are answered by the
//! local model with the history kept, each answer's speech is written as a WAV, and `quit`
//! leaves and stops the server it started. And with `--url`, against a server already running.
//!
//! Without tmux the terminal test says so and passes, unless `BRAZEN_TEST_STRICT` is set
//! (scripts/test installs tmux and sets it), when it fails.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::Server;

fn tmux(args: &[&str]) -> std::process::Output {
    Command::new("tmux").args(args).output().expect("tmux runs")
}

fn wavs(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

#[test]
fn a_terminal_chat_answers_remembers_and_writes_speech() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(std::env::var_os("BRAZEN_TEST_STRICT").is_none(), "tmux is missing: scripts/test installs it");
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let name = format!("brazen-chat-{}", std::process::id());
    let dir = std::env::temp_dir().join(&name);
    let data = std::env::temp_dir().join(format!("{name}-data"));
    let command = format!(
        "BRAZEN_DATA_DIR={} {} chat --agent none --tts piper --wav-out {} --instructions 'You are a friendly assistant. Answer in one short sentence.'",
        data.display(),
        common::binary(),
        dir.display()
    );
    assert!(tmux(&["new-session", "-d", "-s", &name, "-x", "200", "-y", "50", &command]).status.success());
    let screen = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-J", "-t", &name]).stdout).into_owned();
    let wait_for = |prompts: usize, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let s = screen();
            if s.matches("you>").count() >= prompts {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}: {s}");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    wait_for(1, "the chat starts");
    tmux(&["send-keys", "-t", &name, "Hi! My name is Ada and I love green tea.", "Enter"]);
    wait_for(2, "the first answer");
    tmux(&["send-keys", "-t", &name, "What is my name?", "Enter"]);
    let s = wait_for(3, "the second answer");
    eprintln!("{s}");
    let answers: Vec<&str> = s.lines().filter_map(|l| l.strip_prefix("brazen> ")).collect();
    assert_eq!(answers.len(), 2, "{s}");
    assert!(answers[1].contains("Ada"), "the history is kept: {s}");
    let speech = wavs(&dir);
    assert_eq!(speech.len(), 2, "one WAV per answer");
    assert!(speech.iter().all(|w| &w[..4] == b"RIFF" && w.len() > 44 + 24_000), "each holds speech");
    tmux(&["send-keys", "-t", &name, "quit", "Enter"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tmux(&["has-session", "-t", &name]).status.success() {
        assert!(Instant::now() < deadline, "quit leaves: {}", screen());
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&data).ok();
}

#[test]
fn chat_talks_to_a_server_that_is_already_running() {
    let server = Server::start(&["--agent", "none", "--tts", "piper"]);
    let dir = std::env::temp_dir().join(format!("brazen-chat-url-{}", std::process::id()));
    let url = format!("ws://127.0.0.1:{}/voice-live/realtime", server.port);
    let mut child = Command::new(common::binary())
        .args(["chat", "--url", &url, "--wav-out", dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"Good morning!\n").unwrap(); // then end of input
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("brazen> You said: Good morning!"), "{stdout}");
    assert_eq!(wavs(&dir).len(), 1, "{stdout}");
    std::fs::remove_dir_all(&dir).ok();

    let refused = Command::new(common::binary()).args(["chat", "--url", "ws://127.0.0.1:9/nowhere"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot connect to ws://127.0.0.1:9/nowhere"));
}
