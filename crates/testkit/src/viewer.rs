//! A minimal WebRTC viewer of an avatar (str0m, sans-IO), for tests and benchmarks: it offers
//! what the Voice Live samples offer (video and audio `sendrecv`, a data channel named
//! `eventChannel`), keeps every video frame and audio packet with its RTP time, keeps the data
//! channel's messages, and decodes the frames (OpenH264) and the sound (Opus).

use openh264::formats::YUVSource;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, Frequency, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// One viewer.
pub struct Viewer {
    rtc: Rtc,
    local: SocketAddr,
    pending: Option<SdpPendingOffer>,
    deadline: Instant,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    /// When ICE and DTLS came up.
    pub connected: Option<Instant>,
    /// Video frames: (RTP time at 90 kHz, Annex B data, when it arrived).
    pub video: Vec<(u64, Vec<u8>, Instant)>,
    /// Audio packets: (RTP time at 48 kHz, Opus data).
    pub audio: Vec<(u64, Vec<u8>)>,
    /// Data channel messages, in order (on any channel).
    pub texts: Vec<String>,
    /// The messages that came on a channel the server opened (what a page listening for
    /// `ondatachannel`, as Azure's pages do, receives).
    pub server_channel_texts: Vec<String>,
    /// The viewer's own channel.
    own_channel: str0m::channel::ChannelId,
}

/// Runs `viewer` on `socket` until `stop` is set: datagrams in, timeouts, datagrams out (a
/// thread of its own in the tests).
pub fn run(viewer: &std::sync::Mutex<Viewer>, socket: &std::net::UdpSocket, stop: &std::sync::atomic::AtomicBool) {
    socket.set_read_timeout(Some(std::time::Duration::from_millis(2))).expect("a read timeout");
    let mut buf = vec![0u8; 2048];
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let received = socket.recv_from(&mut buf).ok();
        let Ok(mut v) = viewer.lock() else { return };
        if let Some((n, source)) = received {
            v.receive(Instant::now(), source, &buf[..n]);
        }
        v.timeout(Instant::now());
        while let Some((destination, data)) = v.poll_transmit() {
            let _ = socket.send_to(&data, destination);
        }
    }
}

/// A decoded frame's luma inside a rectangle, placed on the stream clock.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedFrame {
    /// Its RTP time in ms: where it is on the stream clock (audio and video share one origin).
    pub at_ms: f64,
    /// When it arrived.
    pub arrived: Instant,
    /// The picture's size.
    pub size: (usize, usize),
    /// The rectangle's luma, row by row.
    pub luma: Vec<u8>,
}

impl Viewer {
    /// A viewer receiving on `local`, and its SDP offer.
    pub fn offer(local: SocketAddr, now: Instant) -> Result<(Viewer, String), String> {
        let mut rtc = Rtc::new(now);
        let candidate = Candidate::host(local, "udp").map_err(|e| e.to_string())?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let own_channel = change.add_channel("eventChannel".into());
        let (offer, pending) = change.apply().ok_or("no offer")?;
        let viewer = Viewer {
            rtc,
            local,
            pending: Some(pending),
            deadline: now,
            transmits: VecDeque::new(),
            connected: None,
            video: Vec::new(),
            audio: Vec::new(),
            texts: Vec::new(),
            server_channel_texts: Vec::new(),
            own_channel,
        };
        Ok((viewer, offer.to_sdp_string()))
    }

    /// Takes the avatar's SDP answer.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), String> {
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| e.to_string())?;
        let pending = self.pending.take().ok_or("the answer was already taken")?;
        self.rtc.sdp_api().accept_answer(pending, answer).map_err(|e| e.to_string())?;
        self.drain();
        Ok(())
    }

    /// A datagram from `source`.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Ok(r) = Receive::new(Protocol::Udp, source, self.local, data) else { return };
        if self.rtc.handle_input(Input::Receive(now, r)).is_ok() {
            self.drain();
        }
    }

    /// Time has passed.
    pub fn timeout(&mut self, now: Instant) {
        if now >= self.deadline && self.rtc.handle_input(Input::Timeout(now)).is_ok() {
            self.drain();
        }
    }

    /// When [`Viewer::timeout`] is next due.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The next datagram to send: (destination, data).
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.deadline = t;
                    return;
                }
                Ok(Output::Transmit(t)) => self.transmits.push_back((t.destination, t.contents.to_vec())),
                Ok(Output::Event(Event::Connected)) => self.connected = Some(Instant::now()),
                Ok(Output::Event(Event::MediaData(d))) => match self.rtc.media(d.mid).map(|m| m.kind()) {
                    Some(MediaKind::Video) => {
                        let at = d.time.rebase(Frequency::NINETY_KHZ).numer();
                        self.video.push((at, d.data.to_vec(), Instant::now()));
                    }
                    _ => self.audio.push((d.time.rebase(Frequency::FORTY_EIGHT_KHZ).numer(), d.data.to_vec())),
                },
                Ok(Output::Event(Event::ChannelData(d))) => {
                    let text = String::from_utf8_lossy(&d.data).into_owned();
                    if d.id != self.own_channel {
                        self.server_channel_texts.push(text.clone());
                    }
                    self.texts.push(text);
                }
                Ok(Output::Event(_)) => {}
                Err(_) => return,
            }
        }
    }

    /// Decodes every frame received and keeps the luma of `(x, y, width, height)` (clipped to
    /// the picture), each placed at its RTP time.
    pub fn decode(&self, (x, y, w, h): (u32, u32, u32, u32)) -> Result<Vec<DecodedFrame>, String> {
        let mut decoder = openh264::decoder::Decoder::new().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for (at, data, arrived) in &self.video {
            let Some(picture) = decoder.decode(data).map_err(|e| e.to_string())? else { continue };
            let (width, height) = picture.dimensions();
            let (stride, _, _) = picture.strides();
            let luma_plane = picture.y();
            let (x1, y1) = (((x + w) as usize).min(width), ((y + h) as usize).min(height));
            let mut luma = Vec::new();
            for row in (y as usize).min(y1)..y1 {
                luma.extend_from_slice(&luma_plane[row * stride + (x as usize).min(x1)..row * stride + x1]);
            }
            out.push(DecodedFrame { at_ms: *at as f64 / 90.0, arrived: *arrived, size: (width, height), luma });
        }
        Ok(out)
    }

    /// Decodes the sound received into one 48 kHz track, sample `n` at RTP time `n` (what a
    /// player would play, the codec's own delay included); packets that never came are silence.
    pub fn decode_audio(&self) -> Result<Vec<i16>, String> {
        let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).map_err(|e| e.to_string())?;
        let mut track = Vec::new();
        let mut frame = vec![0i16; 5_760];
        for (at, data) in &self.audio {
            let n = decoder.decode(data, &mut frame, false).map_err(|e| e.to_string())?;
            let at = *at as usize;
            if track.len() < at + n {
                track.resize(at + n, 0);
            }
            track[at..at + n].copy_from_slice(&frame[..n]);
        }
        Ok(track)
    }
}

/// How many pixels differ by more than `threshold` between two lumas of the same rectangle.
pub fn pixels_changed(a: &[u8], b: &[u8], threshold: u8) -> usize {
    a.iter().zip(b).filter(|(x, y)| x.abs_diff(**y) > threshold).count()
}
