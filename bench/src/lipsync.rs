//! Lip-sync benchmark (issue 5): how far apart a mouth movement and its sound arrive at a WebRTC
//! viewer. The avatar says a known sequence — "ma ma ma …": 250 ms of closed lips in silence, then
//! 200 ms of an open "a" over a tone (450 ms a syllable, so the 40 ms frames fall at a different
//! phase of each one) — over a real `AvatarLink` (drawing, H.264, Opus, str0m), and a str0m viewer
//! receives it. The viewer decodes the sound (Opus, the codec's delay included) and every frame
//! (OpenH264), each placed at its RTP time, as a browser's player would. How open the mouth is in
//! a frame: how many pixels of the mouth region differ from the closed mouth's.
//!
//! The offset of a syllable is the centre (centroid) of the mouth's opening minus the centre of
//! its sound (the 2 ms envelope): positive when the lips are late. The edges are also shown — where
//! each crosses half its height, interpolated between frames — but they measure the mouth's shape
//! as much as its timing: co-articulation ramps the lips between visemes, so a half-open mouth is
//! reached after the sound starts and left before it ends.
//!
//! Run: `bench/lipsync.sh` (release build).

use brazen_avatar::Phone;
use brazen_avatar::character::{Catalog, Rgba};
use brazen_media::link::{AvatarLink, LinkOutput};
use brazen_media::peer::Peer;
use brazen_media::stream::{AvatarStream, Face, StreamSettings};
use brazen_media::{AudioCodec, VideoSettings};
use brazen_testkit::viewer::{DecodedFrame, Viewer, pixels_changed};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[path = "stats.rs"]
mod stats;
use stats::percentile;

/// Syllables said.
const SYLLABLES: usize = 16;
/// Closed lips, then the open vowel (ms).
const CLOSED_MS: f64 = 250.0;
const OPEN_MS: f64 = 200.0;
/// The reply starts this long after the viewer connects.
const LEAD_MS: f64 = 600.0;

fn main() {
    let settings = StreamSettings {
        face: Face::Character(Catalog::built_in().choose("lisa", Some("casual-sitting")).expect("lisa").look),
        picture: (512, 512),
        crop: ((0, 0), (512, 512)),
        background: Rgba([0, 177, 64, 255]),
        video: VideoSettings { fps: 25.0, bitrate: 1_000_000, gop: 50 },
        audio: AudioCodec::Opus,
        alpha_below: false,
        seed: 11,
    };
    let (viewer, from_ms) = run(&settings);
    let region = AvatarStream::new(&settings).expect("stream").mouth_region_px();
    let frames = viewer.decode(region).expect("video decodes");
    let track = viewer.decode_audio().expect("audio decodes");

    let envelope = envelope(&track);
    let opening = opening(&frames, from_ms);
    let period = CLOSED_MS + OPEN_MS;
    let offsets: Vec<f64> = (0..SYLLABLES)
        .map(|k| {
            // A window centred on the syllable's vowel, one period wide.
            let centre = from_ms + k as f64 * period + CLOSED_MS + OPEN_MS / 2.0;
            let (a, b) = (centre - period / 2.0, centre + period / 2.0);
            centroid(&opening, a, b) - centroid(&envelope, a, b)
        })
        .collect();
    let abs: Vec<f64> = offsets.iter().map(|o| o.abs()).collect();
    let edges = |series: &[(f64, f64)]| {
        let top = series.iter().filter(|(t, _)| *t > from_ms).map(|(_, v)| *v).fold(0.0, f64::max);
        crossings(series, top / 2.0, from_ms)
    };
    let (sound, mouth) = (edges(&envelope), edges(&opening));
    let gaps: Vec<f64> = mouth.iter().zip(&sound).map(|(m, s)| m - s).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let list = |v: &[f64]| v.iter().map(|o| format!("{o:+.0}")).collect::<Vec<_>>().join(" ");
    println!(
        "frames decoded           {} (25 fps), audio {:.1} s decoded",
        frames.len(),
        track.len() as f64 / 48_000.0
    );
    println!("syllables                {SYLLABLES} × ({CLOSED_MS} ms closed + {OPEN_MS} ms open)");
    println!("offset per syllable (ms) {}", list(&offsets));
    println!(
        "offset, mouth − sound    mean {:+.1} ms; |offset| p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        mean(&offsets),
        percentile(abs.clone(), 0.5),
        percentile(abs.clone(), 0.9),
        abs.iter().cloned().fold(0.0, f64::max),
    );
    println!("target                   |offset| ≤ 20 ms");
    let (opens, closes): (Vec<f64>, Vec<f64>) =
        (gaps.iter().step_by(2).copied().collect(), gaps.iter().skip(1).step_by(2).copied().collect());
    println!(
        "half-open edges          opening {:+.1} ms, closing {:+.1} ms (mean, mouth − sound; {} of {} edges)",
        mean(&opens),
        mean(&closes),
        mouth.len(),
        sound.len()
    );
}

/// The syllables' phones, from 0.
fn phones() -> Vec<Phone> {
    (0..SYLLABLES)
        .flat_map(|i| {
            let t = i as f64 * (CLOSED_MS + OPEN_MS);
            [
                Phone { symbol: 'm', start_ms: t, duration_ms: CLOSED_MS },
                Phone { symbol: 'a', start_ms: t + CLOSED_MS, duration_ms: OPEN_MS },
            ]
        })
        .collect()
}

/// The sound: silence under each "m", a 220 Hz tone under each "a" (24 kHz).
fn speech() -> Vec<i16> {
    let rate = 24_000.0;
    let total = SYLLABLES as f64 * (CLOSED_MS + OPEN_MS);
    (0..(total * rate / 1000.0) as usize)
        .map(|i| {
            let t_ms = i as f64 * 1000.0 / rate;
            let open = t_ms % (CLOSED_MS + OPEN_MS) >= CLOSED_MS;
            if open { (8000.0 * (i as f64 * 220.0 * std::f64::consts::TAU / rate).sin()) as i16 } else { 0 }
        })
        .collect()
}

/// Connects a viewer to an avatar in memory (no sockets: datagrams are handed across), has the
/// avatar say the syllables, and returns the viewer and where on the stream clock speech began.
fn run(settings: &StreamSettings) -> (Viewer, f64) {
    let server: SocketAddr = "127.0.0.1:40000".parse().expect("address");
    let client: SocketAddr = "127.0.0.1:40001".parse().expect("address");
    let (mut viewer, offer) = Viewer::offer(client, Instant::now()).expect("offer");
    let (peer, answer) = Peer::answer(&offer, server, Instant::now()).expect("answer");
    viewer.accept_answer(&answer).expect("answer accepted");
    let mut link = AvatarLink::new(peer, AvatarStream::new(settings).expect("stream"));
    let total_ms = SYLLABLES as f64 * (CLOSED_MS + OPEN_MS);
    let begun = Instant::now();
    let mut connected = None;
    let mut from_ms = None;
    while begun.elapsed() < Duration::from_secs(30) {
        let now = Instant::now();
        link.timeout(now);
        viewer.timeout(now);
        while let Some((_, data)) = viewer.poll_transmit() {
            link.receive(Instant::now(), client, server, &data);
        }
        while let Some(out) = link.poll() {
            match out {
                LinkOutput::Transmit { data, .. } => viewer.receive(Instant::now(), server, &data),
                LinkOutput::Connected => connected = Some(Instant::now()),
                _ => {}
            }
        }
        if let Some(at) = connected
            && from_ms.is_none()
            && at.elapsed() > Duration::from_millis(LEAD_MS as u64)
        {
            let s = link.stream();
            from_ms = Some(s.audio_clock_ms());
            s.phrase(total_ms, &phones());
            s.audio(&speech(), 24_000);
        }
        if from_ms.is_some_and(|from| link.stream().audio_clock_ms() > from + total_ms + 500.0) {
            break;
        }
        let next = link.deadline().min(viewer.deadline());
        std::thread::sleep(next.saturating_duration_since(Instant::now()).min(Duration::from_millis(2)));
    }
    (viewer, from_ms.expect("the viewer connected"))
}

/// The decoded sound's 2 ms RMS envelope, one value per ms: (ms on the stream clock, level).
fn envelope(track: &[i16]) -> Vec<(f64, f64)> {
    (0..track.len() / 48)
        .map(|ms| {
            let a = ms.saturating_sub(1) * 48;
            let part = &track[a..(a + 96).min(track.len())];
            (ms as f64, (part.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / part.len().max(1) as f64).sqrt())
        })
        .collect()
}

/// How open the mouth is in each frame: (ms on the stream clock, pixels of the mouth region that
/// differ from the closed mouth of the last frame before speech).
fn opening(frames: &[DecodedFrame], from_ms: f64) -> Vec<(f64, f64)> {
    let Some(closed) = frames.iter().rev().find(|f| f.at_ms < from_ms - 80.0) else { return Vec::new() };
    frames.iter().map(|f| (f.at_ms, pixels_changed(&closed.luma, &f.luma, 24) as f64)).collect()
}

/// The centre of mass in time of `series` (time, weight) between `a` and `b`.
fn centroid(series: &[(f64, f64)], a: f64, b: f64) -> f64 {
    let inside = series.iter().filter(|(t, _)| *t >= a && *t < b);
    let (moment, mass) = inside.fold((0.0, 0.0), |(m, w), (t, v)| (m + t * v, w + v));
    moment / mass
}

/// The times where `series` (time, value) crosses `level` after `from_ms`, each interpolated
/// between its two samples.
fn crossings(series: &[(f64, f64)], level: f64, from_ms: f64) -> Vec<f64> {
    let mut above = false;
    let mut out = Vec::new();
    for w in series.windows(2) {
        let ((t0, v0), (t1, v1)) = (w[0], w[1]);
        if t1 < from_ms - 40.0 {
            continue;
        }
        let now_above = v1 >= level;
        if now_above != above && (v0 >= level) != now_above {
            out.push(t0 + (t1 - t0) * (level - v0) / (v1 - v0));
        }
        above = now_above;
    }
    out
}
