//! A str0m viewer connects to an [`AvatarLink`] over loopback UDP, as a browser would: it offers
//! to receive video and audio and opens a data channel; the avatar answers, speaks a phrase and
//! falls silent. The viewer decodes every frame and checks the mouth moves while the avatar
//! speaks and rests after, that Opus audio flows, and that the speaking edges arrive.

use brazen_avatar::Phone;
use brazen_avatar::character::{Catalog, Rgba};
use brazen_media::link::{AvatarLink, LinkOutput};
use brazen_media::peer::{OfferError, Peer};
use brazen_media::stream::{AvatarStream, Face, StreamSettings};
use brazen_media::{AudioCodec, VideoSettings};
use brazen_testkit::viewer::{Viewer, pixels_changed};
use std::net::UdpSocket;
use std::time::{Duration, Instant};
use str0m::Rtc;
use str0m::media::{Direction, MediaKind};

fn settings() -> StreamSettings {
    StreamSettings {
        face: Face::Character(Catalog::built_in().choose("lisa", Some("casual-sitting")).unwrap().look),
        picture: (384, 288),
        crop: ((64, 0), (320, 256)),
        background: Rgba([0, 177, 64, 255]),
        video: VideoSettings { fps: 25.0, bitrate: 600_000, gop: 25 },
        audio: AudioCodec::Opus,
        alpha_below: false,
        seed: 7,
    }
}

/// "ma pa ma pa …" for `n` syllables of 200 ms.
fn syllables(n: usize) -> Vec<Phone> {
    (0..n)
        .flat_map(|i| {
            let t = i as f64 * 200.0;
            let closure = if i % 2 == 0 { 'm' } else { 'p' };
            [
                Phone { symbol: closure, start_ms: t, duration_ms: 70.0 },
                Phone { symbol: 'a', start_ms: t + 70.0, duration_ms: 130.0 },
            ]
        })
        .collect()
}

fn tone(ms: usize, rate: usize) -> Vec<i16> {
    (0..ms * rate / 1000)
        .map(|i| (6000.0 * (i as f64 * 220.0 * std::f64::consts::TAU / rate as f64).sin()) as i16)
        .collect()
}

#[test]
fn a_client_receives_and_decodes_the_speaking_avatar() {
    let server_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    server_socket.set_nonblocking(true).unwrap();
    let server_addr = server_socket.local_addr().unwrap();
    let client_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    client_socket.set_nonblocking(true).unwrap();
    let client_addr = client_socket.local_addr().unwrap();

    // The offer, as the Voice Live samples make it: video, audio, a data channel.
    let (mut viewer, offer) = Viewer::offer(client_addr, Instant::now()).unwrap();
    let (peer, answer) = Peer::answer(&offer, server_addr, Instant::now()).unwrap();
    assert!(answer.contains("a=fingerprint:sha-256"), "the answer carries the DTLS fingerprint");
    // Every peer of the process presents the one certificate (made once, not per browser); the
    // handshake below is made with it.
    let fingerprint = |sdp: &str| sdp.lines().find(|l| l.starts_with("a=fingerprint:")).map(str::to_owned);
    let (_, other_offer) = Viewer::offer(client_addr, Instant::now()).unwrap();
    let (_, again) = Peer::answer(&other_offer, server_addr, Instant::now()).unwrap();
    assert_eq!(fingerprint(&again), fingerprint(&answer));
    assert!(answer.contains("a=ice-lite"));
    assert!(peer.has_audio());
    viewer.accept_answer(&answer).unwrap();
    let stream = AvatarStream::new(&settings()).unwrap();
    let region = stream.mouth_region_px();
    let mut link = AvatarLink::new(peer, stream);

    let begun = Instant::now();
    let mut link_connected = None;
    let mut speech_from_ms = None;
    let mut edges = Vec::new();
    let mut buf = vec![0u8; 2000];
    while begun.elapsed() < Duration::from_secs(8) {
        let now = Instant::now();
        viewer.timeout(now);
        if now >= link.deadline() {
            link.timeout(now);
        }
        while let Ok((n, source)) = server_socket.recv_from(&mut buf) {
            link.receive(Instant::now(), source, server_addr, &buf[..n]);
        }
        while let Ok((n, source)) = client_socket.recv_from(&mut buf) {
            viewer.receive(Instant::now(), source, &buf[..n]);
        }
        while let Some((destination, data)) = viewer.poll_transmit() {
            client_socket.send_to(&data, destination).unwrap();
        }
        while let Some(out) = link.poll() {
            match out {
                LinkOutput::Transmit { destination, data } => {
                    server_socket.send_to(&data, destination).unwrap();
                }
                LinkOutput::Connected => link_connected = Some(Instant::now()),
                other => edges.push(other),
            }
        }
        // Half a second after connecting, the avatar says 1.2 s of syllables.
        if let Some(at) = link_connected
            && speech_from_ms.is_none()
            && at.elapsed() > Duration::from_millis(500)
        {
            let s = link.stream();
            speech_from_ms = Some(s.audio_clock_ms());
            s.phrase(1_200.0, &syllables(6));
            s.audio(&tone(1_200, 24_000), 24_000);
        }
        if speech_from_ms.is_some_and(|from| link.stream().audio_clock_ms() > from + 2_600.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let connected = link_connected.expect("the link connected");
    assert!(viewer.connected.is_some(), "the client connected");
    assert!(connected - begun < Duration::from_secs(2), "ICE + DTLS took {:?}", connected - begun);
    let from_ms = speech_from_ms.unwrap();
    assert_eq!(edges, [LinkOutput::Speaking, LinkOutput::Idle], "speaking edges");
    assert!(viewer.texts.iter().any(|t| t.contains("EVENT_TYPE_SWITCH_TO_SPEAKING")), "{:?}", viewer.texts);
    assert!(viewer.texts.iter().any(|t| t.contains("EVENT_TYPE_SWITCH_TO_IDLE")), "{:?}", viewer.texts);
    // The same events on a channel brazen opened, for pages that listen for one (ondatachannel).
    let on_server_channel = &viewer.server_channel_texts;
    assert!(on_server_channel.iter().any(|t| t.contains("EVENT_TYPE_SWITCH_TO_SPEAKING")), "{on_server_channel:?}");
    assert!(on_server_channel.iter().any(|t| t.contains("EVENT_TYPE_SWITCH_TO_IDLE")), "{on_server_channel:?}");
    // ~3 s of 20 ms packets.
    assert!(viewer.audio.len() > 100, "{} audio packets", viewer.audio.len());
    // The tone is heard where it was said, and not before.
    let track = viewer.decode_audio().unwrap();
    let loud = |a: f64, b: f64| {
        let part = &track[(a * 48.0) as usize..(b * 48.0) as usize];
        part.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / part.len() as f64 > 1e6
    };
    assert!(
        !loud(from_ms - 400.0, from_ms) && loud(from_ms + 100.0, from_ms + 1_100.0),
        "the tone in the decoded sound"
    );

    // Decode every frame; place it on the stream clock (the first frame is at 0).
    let mouths = viewer.decode(region).unwrap();
    assert!(mouths.len() > 50, "{} frames decoded", mouths.len());
    assert!(mouths.iter().all(|m| m.size == (256, 256)));
    let changes = |from: f64, to: f64| -> Vec<usize> {
        mouths
            .windows(2)
            .filter(|w| w[0].at_ms >= from && w[1].at_ms <= to)
            .map(|w| pixels_changed(&w[0].luma, &w[1].luma, 24))
            .collect()
    };
    let speaking = changes(from_ms + 40.0, from_ms + 1_160.0);
    let idle = changes(from_ms + 1_600.0, from_ms + 2_500.0);
    let before = changes(0.0, from_ms - 40.0);
    assert!(speaking.len() > 20 && idle.len() > 15 && before.len() > 5, "{speaking:?} {idle:?} {before:?}");
    // A still mouth changes a few pixels as the encoder's quality settles and the head sways;
    // a speaking one, hundreds.
    let busy = speaking.iter().filter(|&&n| n > 40).count();
    assert!(busy * 2 > speaking.len(), "the mouth moves while speaking: {speaking:?}");
    assert!(idle.iter().chain(&before).all(|&n| n <= 40), "and rests while idle: {idle:?} {before:?}");
}

#[test]
fn offers_without_h264_or_not_sdp_are_refused() {
    let addr = "127.0.0.1:9".parse().unwrap();
    match Peer::answer("hello", addr, Instant::now()) {
        Err(OfferError::Malformed(m)) => assert!(m.contains("SDP offer"), "{m}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // An audio-only offer has no video to send the avatar on.
    let mut rtc = Rtc::new(Instant::now());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, _) = change.apply().unwrap();
    match Peer::answer(&offer.to_sdp_string(), addr, Instant::now()) {
        Err(OfferError::Codecs(m)) => assert!(m.contains("H.264"), "{m}"),
        other => panic!("{:?}", other.map(|_| ())),
    }
    // A video offer with only VP8.
    let mut rtc = Rtc::builder().clear_codecs().enable_vp8(true).build(Instant::now());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    let (offer, _) = change.apply().unwrap();
    assert!(matches!(Peer::answer(&offer.to_sdp_string(), addr, Instant::now()), Err(OfferError::Codecs(_))));
}

/// Found by fuzzing (`scripts/fuzz sdp`): an offer whose two media sections both claim payload
/// type 102 made str0m panic inside the answer; it is refused like any offer it cannot use.
#[test]
fn an_offer_that_trips_the_webrtc_library_is_refused_not_a_panic() {
    // The fuzzer's input as it was, a stray non-UTF-8 byte and all (read as the server reads text).
    let offer = String::from_utf8_lossy(include_bytes!("data/payload_type_twice.sdp")).into_owned();
    let addr: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
    match Peer::answer(&offer, addr, Instant::now()) {
        Err(OfferError::Malformed(m)) => assert!(m.contains("cannot be answered"), "{m}"),
        other => panic!("expected a refusal, got {:?}", other.map(|(_, answer)| answer)),
    }
}
