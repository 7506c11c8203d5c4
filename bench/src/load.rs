//! Load benchmark: many concurrent Realtime sessions against one `brazen serve`.
//!
//! Starts the server, opens `--sessions` WebSockets, measures the server's resident memory with
//! every session idle, then has each session stream a 100 ms PCM16 chunk every 100 ms for
//! `--seconds`: 1 s of speech-level tone, then 1.5 s of silence, over and over, each session
//! starting at its own point of that cycle (`--in-phase`: all in step). Server VAD turns the tone
//! into `speech_started` and the silence into `speech_stopped` (+ commit). The latency of a turn
//! event is the time from sending the chunk that completes the onset or the trailing silence
//! (found from the event's `audio_start_ms` / `audio_end_ms`, not the latest chunk sent) to
//! receiving the event — the server's whole path, queueing included: WebSocket read, JSON parse,
//! base64 decode, VAD, turn detection, encoding, write. With `--responses` every turn also gets
//! an echo response (transcript, tone audio), which multiplies the outgoing traffic.
//!
//! Run: `bench/load.sh` (release build), or
//! `cargo run --release -p brazen-bench --bin load -- --brazen target/release/brazen`.

#[path = "served.rs"]
mod served;
use base64::Engine as _;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use served::{Served, fds_and_threads, rss_kib};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// The brazen binary to start (or give `--addr` and `--pid` of a running one).
    #[arg(long)]
    brazen: Option<String>,
    /// Address of a running `brazen serve` (with `--pid`).
    #[arg(long, requires = "pid")]
    addr: Option<String>,
    /// Its process id, for memory and CPU readings.
    #[arg(long)]
    pid: Option<u32>,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Seconds of streaming.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Let every turn produce an echo response.
    #[arg(long)]
    responses: bool,
    /// Log this session's sends and turn events (Unix time in µs) to stderr, with its local
    /// port, to line them up with a packet capture (`tcpdump -i lo -tt port N`).
    #[arg(long)]
    trace_one: Option<usize>,
    /// For a soak: sample the server's memory, open files and threads every this many seconds
    /// while streaming, and print the series (0: only the peak).
    #[arg(long, default_value_t = 0)]
    sample_every: u64,
    /// Run every session's speech/silence cycle in step (all turns end within the same 100 ms),
    /// instead of starting each session at its own point of the cycle: a worst case in which
    /// every turn's response work arrives at once.
    #[arg(long)]
    in_phase: bool,
}

struct Stats {
    /// Latency in µs, and whether it was a `speech_stopped` (else `speech_started`).
    latencies_us: Vec<(u64, bool)>,
    events: u64,
    errors: Vec<String>,
    chunks: u64,
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// The server's own view (`brazen_event_handle_seconds`): frame read to its events written.
async fn server_histogram(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return "unavailable".into() };
    // The Host names the server itself: a key-less server answers only its own (loopback) names.
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let _ = s.write_all(request.as_bytes()).await;
    let mut text = String::new();
    let _ = s.read_to_string(&mut text).await;
    let bucket = |le: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(&format!("brazen_event_handle_seconds_bucket{{le=\"{le}\"}}")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    let total = bucket("+Inf");
    if total == 0.0 {
        return "no samples".into();
    }
    let share = |le: &str| 100.0 * bucket(le) / total;
    format!(
        "{total:.0} client frames: {:.2}% within 1 ms, {:.2}% within 5 ms, {:.3}% over 10 ms",
        share("0.001"),
        share("0.005"),
        100.0 - share("0.01")
    )
}

/// Speech needed to start a turn, and silence to end one (server VAD settings), in ms.
const ONSET_MS: u64 = 200;
const SILENCE_MS: u64 = 500;
/// Audio per chunk, in ms.
const CHUNK_MS: u64 = 100;
/// The speech/silence cycle, in chunks: 1 s of tone, then 1.5 s of silence.
const CYCLE_CHUNKS: usize = 25;
const TONE_CHUNKS: u64 = 10;

/// The chunk whose arrival lets the server report a turn event: the one holding the audio
/// instant `ONSET_MS` after the speech began (`speech_started`) or `SILENCE_MS` after it ended
/// (`speech_stopped`). Chunk `k` carries the audio from `k * CHUNK_MS` to `(k + 1) * CHUNK_MS`.
fn trigger_chunk(event: &Value) -> Option<usize> {
    let at = match event["type"].as_str()? {
        "input_audio_buffer.speech_started" => event["audio_start_ms"].as_u64()? + ONSET_MS,
        "input_audio_buffer.speech_stopped" => event["audio_end_ms"].as_u64()? + SILENCE_MS,
        _ => return None,
    };
    Some((at.div_ceil(CHUNK_MS) as usize).saturating_sub(1))
}

fn frame(samples: impl Iterator<Item = i16>) -> String {
    let bytes: Vec<u8> = samples.flat_map(|s| s.to_le_bytes()).collect();
    json!({"type": "input_audio_buffer.append", "audio": base64::engine::general_purpose::STANDARD.encode(bytes)})
        .to_string()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (server, addr, pid) = match (&args.brazen, &args.addr, args.pid) {
        (_, Some(addr), Some(pid)) => (None, addr.clone(), pid),
        (Some(brazen), _, _) => {
            let served = Served::start(
                brazen.as_str(),
                &[],
                // Every session comes from this machine: no per-address limit on new ones.
                &[("BRAZEN_MAX_SESSIONS", "100000"), ("BRAZEN_CONNECTIONS_PER_MINUTE", "0"), ("BRAZEN_LOG", "warn")],
                false,
            );
            let (addr, pid) = (served.addr.clone(), served.pid());
            (Some(served), addr, pid)
        }
        _ => panic!("give --brazen PATH, or --addr and --pid"),
    };
    let url = format!("ws://{addr}/v1/realtime?model=bench");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_empty = rss_kib(pid);

    let tone = Arc::new(frame((0..2_400).map(|i| ((i as f32 * 0.0576).sin() * 8_000.0) as i16)));
    let silence = Arc::new(frame(std::iter::repeat_n(0i16, 2_400)));
    let update = json!({"type": "session.update", "session": {"modalities": ["text", "audio"], "turn_detection": {
        "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": SILENCE_MS,
        "speech_duration_ms": ONSET_MS, "create_response": args.responses}}})
    .to_string();

    let n = args.sessions;
    let connected = Arc::new(Barrier::new(n + 1));
    let measured = Arc::new(Barrier::new(n + 1));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (url, tone, silence, update) = (url.clone(), tone.clone(), silence.clone(), update.clone());
        let (connected, measured) = (connected.clone(), measured.clone());
        let seconds = args.seconds;
        let trace = args.trace_one == Some(i);
        // Where in the 2.5 s cycle the session starts (in chunks): spread over the cycle, as
        // independent speakers are, unless `--in-phase`.
        let phase = if args.in_phase { 0 } else { (i * CYCLE_CHUNKS / n) as u64 };
        tasks.push(tokio::spawn(async move {
            let (ws, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true).await.expect("connect");
            if let (true, tokio_tungstenite::MaybeTlsStream::Plain(tcp)) = (trace, ws.get_ref()) {
                eprintln!("trace: session {i} local port {}", tcp.local_addr().unwrap().port());
            }
            let wall_us = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
            let mut log: Vec<String> = Vec::new();
            let (mut tx, mut rx) = ws.split();
            let mut errors = Vec::new();
            let mut events = 0u64;
            let read_until = async |rx: &mut futures_util::stream::SplitStream<_>, kind: &str| loop {
                let Some(Ok(Message::Text(t))) = rx.next().await else { panic!("socket closed") };
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == kind {
                    break;
                }
            };
            read_until(&mut rx, "session.created").await;
            tx.send(Message::Text(update.into())).await.unwrap();
            read_until(&mut rx, "session.updated").await;
            connected.wait().await;
            measured.wait().await;

            // One task drives the socket: it sends a chunk at every tick and reads events in
            // between, as a real client does.
            let start = Instant::now();
            // When each chunk was sent (µs since `start`): a turn event's latency runs from the
            // chunk that triggered it, which need not be the latest one sent.
            let mut sent_at: Vec<u64> = Vec::new();
            let mut latencies = Vec::new();
            let mut on_event = |text: &str, latencies: &mut Vec<(u64, bool)>, log: &mut Vec<String>, sent_at: &[u64]| {
                let now = start.elapsed().as_micros() as u64;
                events += 1;
                let v: Value = serde_json::from_str(text).unwrap();
                match v["type"].as_str().unwrap_or("") {
                    "input_audio_buffer.speech_started" | "input_audio_buffer.speech_stopped" => {
                        let stopped = v["type"] == "input_audio_buffer.speech_stopped";
                        let Some(&sent) = trigger_chunk(&v).and_then(|k| sent_at.get(k)) else {
                            errors.push(format!("{} for audio not yet sent: {text}", v["type"]));
                            return;
                        };
                        if trace {
                            log.push(format!("{} recv {} latency_us {}", wall_us(), v["type"].as_str().unwrap_or(""), now - sent));
                        }
                        latencies.push((now.saturating_sub(sent), stopped));
                    }
                    "error" => errors.push(v["error"]["message"].as_str().unwrap_or("?").to_owned()),
                    _ => {}
                }
            };
            // Spread the sessions over the 100 ms tick.
            tokio::time::sleep(Duration::from_micros((i as u64 * 100_000) / n as u64)).await;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let total = seconds * 10;
            let mut chunks = 0u64;
            while chunks < total {
                tokio::select! {
                    _ = tick.tick() => {
                        let chunk = if (chunks + phase) % (CYCLE_CHUNKS as u64) < TONE_CHUNKS { &tone } else { &silence };
                        sent_at.push(start.elapsed().as_micros() as u64);
                        let t0 = wall_us();
                        if tx.send(Message::Text(chunk.as_str().into())).await.is_err() {
                            break;
                        }
                        if trace {
                            log.push(format!("{t0} send chunk {chunks} took_us {}", wall_us() - t0));
                        }
                        chunks += 1;
                    }
                    msg = rx.next() => match msg {
                        Some(Ok(Message::Text(t))) => on_event(&t, &mut latencies, &mut log, &sent_at),
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            let drain = tokio::time::sleep(Duration::from_millis(700));
            tokio::pin!(drain);
            loop {
                tokio::select! {
                    _ = &mut drain => break,
                    msg = rx.next() => match msg {
                        Some(Ok(Message::Text(t))) => on_event(&t, &mut latencies, &mut log, &sent_at),
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
            tx.send(Message::Close(None)).await.ok();
            for line in &log {
                eprintln!("trace: {line}");
            }
            Stats { latencies_us: latencies, events, errors, chunks }
        }));
    }
    connected.wait().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_kib(pid);
    let (fds_idle, threads_idle) = fds_and_threads(pid);
    let cpu_before = cpu_seconds(pid);
    let client_cpu_before = cpu_seconds(std::process::id());
    let wall = Instant::now();
    measured.wait().await;
    let mut rss_peak = 0;
    // (seconds into the run, RSS KiB, open files, threads)
    let mut series: Vec<(u64, u64, usize, usize)> = Vec::new();
    let mut all = Stats { latencies_us: Vec::new(), events: 0, errors: Vec::new(), chunks: 0 };
    let sample_every = args.sample_every;
    let sampler = async {
        let mut next = sample_every;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let rss = rss_kib(pid);
            rss_peak = rss_peak.max(rss);
            let at = wall.elapsed().as_secs();
            if sample_every > 0 && at >= next {
                let (fds, threads) = fds_and_threads(pid);
                eprintln!("soak: {at:>5} s  RSS {rss} KiB  open files {fds}  threads {threads}");
                series.push((at, rss, fds, threads));
                next += sample_every;
            }
        }
    };
    let joined = async {
        for t in tasks {
            let s = t.await.expect("session task");
            all.latencies_us.extend(s.latencies_us);
            all.events += s.events;
            all.errors.extend(s.errors);
            all.chunks += s.chunks;
        }
    };
    tokio::select! { _ = joined => {}, _ = sampler => {} }
    let elapsed = wall.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let client_cpu = cpu_seconds(std::process::id()) - client_cpu_before;
    let handled = server_histogram(&addr).await;
    // Every session closed: what the server holds now, against what it held with them idle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = rss_kib(pid);
    let (fds_after, threads_after) = fds_and_threads(pid);
    drop(server);

    let mut l: Vec<u64> = all.latencies_us.iter().map(|(us, _)| *us).collect();
    l.sort_unstable();
    let by_kind = |stopped: bool| -> String {
        let mut v: Vec<u64> = all.latencies_us.iter().filter(|(_, s)| *s == stopped).map(|(us, _)| *us).collect();
        v.sort_unstable();
        format!("p50 {:.2} ms, p99 {:.2} ms", percentile(&v, 0.5) as f64 / 1000.0, percentile(&v, 0.99) as f64 / 1000.0)
    };
    let l = &l;
    println!("sessions                 {n}");
    println!(
        "streaming                {} s, {} chunks sent ({:.0}/s), responses: {}, turns: {}",
        args.seconds,
        all.chunks,
        all.chunks as f64 / elapsed,
        args.responses,
        if args.in_phase { "in phase" } else { "staggered" }
    );
    println!("server events received   {}", all.events);
    println!("turn events timed        {}", l.len());
    println!(
        "latency chunk -> event   p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(l, 0.5) as f64 / 1000.0,
        percentile(l, 0.9) as f64 / 1000.0,
        percentile(l, 0.99) as f64 / 1000.0,
        l.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    println!("  speech_started         {}", by_kind(false));
    println!("  speech_stopped         {}", by_kind(true));
    println!(
        "server RSS               empty {rss_empty} KiB, {n} idle sessions {rss_idle} KiB, peak under load {rss_peak} KiB"
    );
    println!("RSS per idle session     {:.1} KiB", (rss_idle.saturating_sub(rss_empty)) as f64 / n as f64);
    if series.len() >= 2 {
        // Flat memory: the samples after the first minute, against the first of them.
        let settled: Vec<&(u64, u64, usize, usize)> = series.iter().filter(|(at, ..)| *at >= 60).collect();
        let settled = if settled.len() >= 2 { settled } else { series.iter().collect() };
        let (first, last) = (settled[0], settled[settled.len() - 1]);
        let max = settled.iter().map(|s| s.1).max().unwrap_or(0);
        println!(
            "RSS while streaming      {} KiB at {} s, {} KiB at {} s ({:+.1} %), highest {} KiB; {} samples",
            first.1,
            first.0,
            last.1,
            last.0,
            (last.1 as f64 / first.1.max(1) as f64 - 1.0) * 100.0,
            max,
            series.len()
        );
    }
    println!(
        "open files, threads      {fds_idle}, {threads_idle} with {n} idle sessions; {fds_after}, {threads_after} after they closed; server RSS then {rss_after} KiB"
    );
    println!(
        "server CPU under load    {:.2} cores; load generator {:.2} cores (2 in all)",
        cpu / elapsed,
        client_cpu / elapsed
    );
    println!("server-side handling     {handled}");
    println!("errors                   {}", all.errors.len());
    for e in all.errors.iter().take(5) {
        println!("  {e}");
    }
    if !all.errors.is_empty() {
        std::process::exit(1);
    }
}
