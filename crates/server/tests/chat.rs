//! `brazen chat` as a person uses it, in a terminal (tmux): typed lines are answered by the
//! local model with the history kept, each answer's speech is written as a WAV, and `quit`
//! leaves and stops the server it started. And with `--url`, against a server already running.
//!
//! And with no `--wav-out`, the answer is heard through the default audio device: a private
//! PulseAudio server whose only sink is a null sink, recorded from its monitor.
//!
//! Without tmux (or PulseAudio) those tests say so and pass, unless `BRAZEN_TEST_STRICT` is set
//! (scripts/test installs both and sets it), when they fail.

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

/// A private PulseAudio server (stopped when dropped) whose default sink is a null sink.
struct Pulse {
    daemon: std::process::Child,
    dir: std::path::PathBuf,
}

impl Pulse {
    fn start() -> Option<Pulse> {
        let found = ["pulseaudio", "paplay", "parec", "pacat"]
            .iter()
            .all(|t| Command::new(t).arg("--version").output().is_ok());
        if !found {
            assert!(
                std::env::var_os("BRAZEN_TEST_STRICT").is_none(),
                "PulseAudio is missing: scripts/test installs it"
            );
            eprintln!("skipped: PulseAudio (pulseaudio, pulseaudio-utils) is not installed");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("brazen-pulse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("native");
        let mut pulse = Pulse {
            daemon: Command::new("pulseaudio")
                .args(["-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes"])
                .arg("--log-target=stderr")
                .arg(format!("--load=module-native-protocol-unix socket={} auth-anonymous=1", socket.display()))
                .arg("--load=module-null-sink sink_name=brazen_test")
                .envs(Pulse::env_in(&dir))
                .stderr(Stdio::null())
                .spawn()
                .expect("pulseaudio starts"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Command::new("pactl").arg("info").envs(pulse.env()).output().is_ok_and(|o| o.status.success()) {
            assert!(Instant::now() < deadline, "PulseAudio did not come up");
            assert!(pulse.daemon.try_wait().unwrap().is_none(), "PulseAudio exited at start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(pulse)
    }

    fn env_in(dir: &std::path::Path) -> Vec<(&'static str, String)> {
        vec![
            ("PULSE_SERVER", format!("unix:{}", dir.join("native").display())),
            ("PULSE_RUNTIME_PATH", dir.join("run").display().to_string()),
            ("PULSE_STATE_PATH", dir.join("state").display().to_string()),
            ("HOME", dir.display().to_string()),
        ]
    }

    /// What a client of this server needs in its environment.
    fn env(&self) -> Vec<(&'static str, String)> {
        Pulse::env_in(&self.dir)
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        self.daemon.kill().ok();
        self.daemon.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// The first and last sample louder than quiet in 24 kHz PCM, in seconds.
fn sound_span(pcm: &[i16]) -> Option<(f64, f64)> {
    let first = pcm.iter().position(|s| s.unsigned_abs() > 500)?;
    let last = pcm.iter().rposition(|s| s.unsigned_abs() > 500)?;
    Some((first as f64 / 24_000.0, last as f64 / 24_000.0))
}

#[test]
fn without_wav_out_the_answer_is_heard_on_the_default_audio_device() {
    let Some(pulse) = Pulse::start() else { return };
    let server = Server::start(&["--agent", "none", "--tts", "piper"]);
    let url = format!("ws://127.0.0.1:{}/voice-live/realtime", server.port);
    // The chat finds only PulseAudio's player on its PATH.
    let bin = pulse.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let paplay =
        String::from_utf8(Command::new("sh").args(["-c", "command -v paplay"]).output().unwrap().stdout).unwrap();
    std::os::unix::fs::symlink(paplay.trim(), bin.join("paplay")).unwrap();

    // The same answer written as a WAV, to know how long it is.
    let dir = pulse.dir.join("wav");
    let mut child = Command::new(common::binary())
        .args(["chat", "--url", &url, "--wav-out", dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"Good morning!\n").unwrap();
    assert!(child.wait().unwrap().success());
    let wav = wavs(&dir).pop().expect("a WAV");
    let samples: Vec<i16> = wav[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let (start, end) = sound_span(&samples).expect("the WAV holds speech");
    let spoken = end - start;
    let samples = samples.clone();

    // Silence keeps the null sink running, so the recording follows the clock from its start.
    let mut silence = Command::new("pacat")
        .args(["--raw", "--rate=24000", "--channels=1", "--format=s16le"])
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .envs(pulse.env())
        .spawn()
        .unwrap();
    let recording = pulse.dir.join("heard.raw");
    let mut recorder = Command::new("parec")
        .args(["--raw", "--rate=24000", "--channels=1", "--format=s16le", "-d", "brazen_test.monitor"])
        .arg(&recording)
        .envs(pulse.env())
        .spawn()
        .unwrap();
    // Recording for half a second before the chat starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&recording).map_or(0, |m| m.len()) < 24_000 {
        assert!(Instant::now() < deadline, "parec records nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut child = Command::new(common::binary())
        .args(["chat", "--url", &url])
        .envs(pulse.env())
        .env("PATH", &bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"Good morning!\n").unwrap();
    let out = child.wait_with_output().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    for process in [&mut recorder, &mut silence] {
        process.kill().ok();
        process.wait().ok();
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("could not play") && !stderr.contains("no audio player"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("brazen> You said: Good morning!"));
    let heard: Vec<i16> =
        std::fs::read(&recording).unwrap().chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let (start, end) = sound_span(&heard).expect("the answer was heard on the device");
    let played = end - start;
    let envelope = |pcm: &[i16]| {
        pcm.chunks(2_400).map(|c| c.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0) / 100).collect::<Vec<_>>()
    };
    assert!(
        played > spoken * 0.8 && played < spoken * 1.2 + 0.1,
        "played {played:.2} s of a {spoken:.2} s answer: {:?} {:?}",
        envelope(&heard),
        envelope(&samples)
    );
}
