//! A str0m client connects to an [`AvatarLink`] over loopback UDP, as a browser would: it offers
//! to receive video and audio and opens a data channel; the avatar answers, speaks a phrase and
//! falls silent. The client decodes every frame and checks the mouth moves while the avatar
//! speaks and rests after, that Opus audio flows, and that the speaking edges arrive.

use brazen_avatar::Phone;
use brazen_avatar::character::{Catalog, Rgba};
use brazen_avatar::render::MOUTH_REGION;
use brazen_media::VideoSettings;
use brazen_media::link::{AvatarLink, LinkOutput};
use brazen_media::peer::{OfferError, Peer};
use brazen_media::stream::{AvatarStream, StreamSettings};
use openh264::formats::YUVSource;
use std::net::UdpSocket;
use std::time::{Duration, Instant};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

fn settings() -> StreamSettings {
    StreamSettings {
        look: Catalog::built_in().choose("lisa", Some("casual-sitting")).unwrap().look,
        picture: (384, 288),
        crop: ((64, 0), (320, 256)),
        background: Rgba([0, 177, 64, 255]),
        video: VideoSettings { fps: 25.0, bitrate: 600_000, gop: 25 },
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

struct Client {
    rtc: Rtc,
    socket: UdpSocket,
    deadline: Instant,
    connected: Option<Instant>,
    /// (RTP time at 90 kHz, Annex B frame).
    video: Vec<(u64, Vec<u8>)>,
    audio_packets: usize,
    texts: Vec<String>,
}

impl Client {
    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(t) => {
                    self.deadline = t;
                    return;
                }
                Output::Transmit(t) => {
                    self.socket.send_to(&t.contents, t.destination).unwrap();
                }
                Output::Event(Event::Connected) => self.connected = Some(Instant::now()),
                Output::Event(Event::MediaData(d)) => match self.rtc.media(d.mid).map(|m| m.kind()) {
                    Some(MediaKind::Video) => {
                        self.video.push((d.time.rebase(str0m::media::Frequency::NINETY_KHZ).numer(), d.data.to_vec()))
                    }
                    _ => self.audio_packets += 1,
                },
                Output::Event(Event::ChannelData(d)) => self.texts.push(String::from_utf8_lossy(&d.data).into_owned()),
                Output::Event(_) => {}
            }
        }
    }
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
    let mut rtc = Rtc::new(Instant::now());
    rtc.add_local_candidate(Candidate::host(client_addr, "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    change.add_channel("eventChannel".into());
    let (offer, pending) = change.apply().unwrap();

    let (peer, answer) = Peer::answer(&offer.to_sdp_string(), server_addr, Instant::now()).unwrap();
    assert!(answer.contains("a=fingerprint:sha-256"), "the answer carries the DTLS fingerprint");
    assert!(answer.contains("a=ice-lite"));
    assert!(peer.has_audio());
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();
    let stream = AvatarStream::new(&settings()).unwrap();
    let region = stream.renderer().region_px(MOUTH_REGION);
    let mut link = AvatarLink::new(peer, stream);
    let mut client = Client {
        rtc,
        socket: client_socket,
        deadline: Instant::now(),
        connected: None,
        video: Vec::new(),
        audio_packets: 0,
        texts: Vec::new(),
    };
    client.drain();

    let begun = Instant::now();
    let mut link_connected = None;
    let mut speech_from_ms = None;
    let mut edges = Vec::new();
    let mut buf = vec![0u8; 2000];
    while begun.elapsed() < Duration::from_secs(8) {
        let now = Instant::now();
        if now >= client.deadline {
            client.rtc.handle_input(Input::Timeout(now)).unwrap();
            client.drain();
        }
        if now >= link.deadline() {
            link.timeout(now);
        }
        while let Ok((n, source)) = server_socket.recv_from(&mut buf) {
            link.receive(Instant::now(), source, server_addr, &buf[..n]);
        }
        while let Ok((n, source)) = client.socket.recv_from(&mut buf) {
            let r = Receive::new(Protocol::Udp, source, client_addr, &buf[..n]).unwrap();
            client.rtc.handle_input(Input::Receive(Instant::now(), r)).unwrap();
            client.drain();
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
    assert!(client.connected.is_some(), "the client connected");
    assert!(connected - begun < Duration::from_secs(2), "ICE + DTLS took {:?}", connected - begun);
    let from_ms = speech_from_ms.unwrap();
    assert_eq!(edges, [LinkOutput::Speaking, LinkOutput::Idle], "speaking edges");
    assert!(client.texts.iter().any(|t| t.contains("EVENT_TYPE_SWITCH_TO_SPEAKING")), "{:?}", client.texts);
    assert!(client.texts.iter().any(|t| t.contains("EVENT_TYPE_SWITCH_TO_IDLE")), "{:?}", client.texts);
    // ~3 s of 20 ms packets.
    assert!(client.audio_packets > 100, "{} audio packets", client.audio_packets);

    // Decode every frame; place it on the stream clock (the first frame is at 0).
    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    let first = client.video.first().expect("video arrived").0;
    let (mx, my, mw, mh) = region;
    let mut mouths: Vec<(f64, Vec<u8>)> = Vec::new();
    for (time, data) in &client.video {
        let Some(picture) = decoder.decode(data).unwrap() else { continue };
        assert_eq!(picture.dimensions(), (256, 256));
        let (stride, _, _) = picture.strides();
        let y = picture.y();
        let mouth: Vec<u8> =
            (my..my + mh).flat_map(|r| (mx..mx + mw).map(move |c| y[r as usize * stride + c as usize])).collect();
        mouths.push(((time - first) as f64 / 90.0, mouth));
    }
    assert!(mouths.len() > 50, "{} frames decoded", mouths.len());
    let moved = |a: &[u8], b: &[u8]| a.iter().zip(b).filter(|(x, y)| x.abs_diff(**y) > 24).count();
    let changes = |from: f64, to: f64| -> Vec<usize> {
        mouths.windows(2).filter(|w| w[0].0 >= from && w[1].0 <= to).map(|w| moved(&w[0].1, &w[1].1)).collect()
    };
    let speaking = changes(from_ms + 40.0, from_ms + 1_160.0);
    let idle = changes(from_ms + 1_600.0, from_ms + 2_500.0);
    let before = changes(0.0, from_ms - 40.0);
    assert!(speaking.len() > 20 && idle.len() > 15 && before.len() > 5, "{speaking:?} {idle:?} {before:?}");
    let busy = speaking.iter().filter(|&&n| n > 20).count();
    assert!(busy * 2 > speaking.len(), "the mouth moves while speaking: {speaking:?}");
    assert!(idle.iter().chain(&before).all(|&n| n <= 20), "and rests while idle: {idle:?} {before:?}");
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
