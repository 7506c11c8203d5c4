//! Relay benchmark (issue 18): what `brazen serve --relay` adds to each event. A stand-in Voice
//! Live that answers every event at once (an echo) is measured directly and through a brazen
//! relay in front of it, one event in flight at a time, in the same run: the round trips' p50
//! and p99 each way, and what the relay adds per relayed event (half the difference of the round
//! trips: each round trip relays two events).
//!
//!   bench/relay.sh [--events 5000] [--bytes 6400]

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[path = "served.rs"]
mod served;
#[path = "stats.rs"]
mod stats;

#[derive(Parser)]
struct Args {
    /// The brazen binary.
    #[arg(long, default_value = "brazen")]
    brazen: String,
    /// Round trips each way.
    #[arg(long, default_value_t = 5000)]
    events: usize,
    /// Size of each event's payload (6,400: a 100 ms audio chunk at 24 kHz in base64).
    #[arg(long, default_value_t = 6400)]
    bytes: usize,
}

/// An upstream that sends every text frame straight back; returns its port.
async fn echo_upstream() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { return };
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(_) = m
                        && ws.send(m).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Round trips of `n` events to `url`, in ms.
async fn round_trips(url: &str, n: usize, payload: &str) -> Vec<f64> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connects");
    let event = serde_json::json!({"type": "input_audio_buffer.append", "audio": payload}).to_string();
    let mut out = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t = Instant::now();
        ws.send(Message::Text(event.clone().into())).await.unwrap();
        loop {
            match ws.next().await.expect("an answer").unwrap() {
                Message::Text(t) if t.contains("input_audio_buffer.append") => break,
                _ => {}
            }
        }
        if i >= n / 10 {
            out.push(t.elapsed().as_secs_f64() * 1000.0); // the first tenth warms up
        }
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let upstream = echo_upstream().await;
    let relay = served::Served::start(
        &args.brazen,
        &[
            "--relay",
            &format!("http://127.0.0.1:{upstream}"),
            "--vad",
            "energy",
            "--asr",
            "echo",
            "--llm",
            "echo",
            "--tts",
            "tone",
        ],
        &[
            ("AZURE_VOICELIVE_API_KEY", "bench"),
            ("BRAZEN_EVENTS_PER_SECOND", "1000000"),
            ("BRAZEN_EVENT_BURST", "1000000"),
            ("BRAZEN_LOG", "warn"),
        ],
        false,
    );
    let payload = "A".repeat(args.bytes);
    let direct = round_trips(&format!("ws://127.0.0.1:{upstream}/voice-live/realtime"), args.events, &payload).await;
    let relayed =
        round_trips(&format!("ws://{}/voice-live/realtime?model=bench", relay.addr), args.events, &payload).await;
    let p = |v: &Vec<f64>, q: f64| stats::percentile(v.clone(), q);
    println!("{} round trips each, {} byte events", args.events, args.bytes);
    println!("direct:  p50 {:.3} ms  p99 {:.3} ms", p(&direct, 0.5), p(&direct, 0.99));
    println!("relayed: p50 {:.3} ms  p99 {:.3} ms", p(&relayed, 0.5), p(&relayed, 0.99));
    println!(
        "added per relayed event: p50 {:.3} ms  p99 {:.3} ms",
        (p(&relayed, 0.5) - p(&direct, 0.5)) / 2.0,
        (p(&relayed, 0.99) - p(&direct, 0.99)) / 2.0
    );
}
