//! Input processing cost: how much of one core the noise suppressor (RNNoise) and the echo
//! canceller (AEC3) take per conversation, on 60 s of 24 kHz audio in 40 ms chunks (a voice-like
//! signal, its echo 120 ms later through `brazen_testkit::room`).
//!
//! Run: `bench/input.sh` (release build).

use brazen_audio::{Denoiser, EchoCanceller};
use brazen_testkit::room::Room;
use std::time::Instant;

/// A voice-like signal: harmonics whose pitch and loudness wander, 24 kHz.
fn voice(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f32 / 24_000.0;
            let pitch = 120.0 + 40.0 * (t * 1.3).sin();
            let s: f32 = (1..6).map(|h| (t * pitch * h as f32 * std::f32::consts::TAU).sin() / h as f32).sum();
            (s * (0.5 + 0.5 * (t * 3.1).sin().abs()) * 6_000.0) as i16
        })
        .collect()
}

fn main() {
    let seconds = 60;
    let far = voice(24_000 * seconds);
    let mut room = Room::new();
    room.receive(&far);
    let mic: Vec<i16> = (0..far.len() / 960).flat_map(|_| room.tick(960)).collect();

    let mut denoiser = Denoiser::new(24_000);
    let mut out = Vec::new();
    let t = Instant::now();
    for chunk in mic.chunks(960) {
        denoiser.process(chunk, &mut out);
    }
    let ns = t.elapsed().as_secs_f64();

    let mut canceller = EchoCanceller::new(24_000);
    out.clear();
    let t = Instant::now();
    for (chunk, reference) in mic.chunks(960).zip(far.chunks(960)) {
        canceller.process(chunk, reference, &mut out);
    }
    let aec = t.elapsed().as_secs_f64();

    println!("| stage | time for {seconds} s of audio | share of one core |");
    println!("| --- | --- | --- |");
    println!("| noise suppression (RNNoise, 48 kHz) | {:.0} ms | {:.1} % |", ns * 1e3, ns * 100.0 / seconds as f64);
    println!("| echo cancellation (AEC3, 16 kHz) | {:.0} ms | {:.1} % |", aec * 1e3, aec * 100.0 / seconds as f64);
}
