//! A browser's WebRTC connection to one avatar, on str0m (sans-IO): answers the browser's offer
//! as an ICE-lite peer with one host candidate, then carries H.264 video, Opus audio and the
//! events data channels (the browser's and one brazen opens). Every change to the connection is followed by draining str0m's output
//! (its one rule), so callers just feed packets and timeouts and take [`PeerOutput`]s.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;
use str0m::change::SdpOffer;
use str0m::channel::{ChannelConfig, ChannelId};
use str0m::config::DtlsCert;
use str0m::format::Codec;
use str0m::media::{MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc, RtcConfig};

/// Why an offer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferError {
    /// It is not an SDP offer str0m can read.
    Malformed(String),
    /// It does not offer what the avatar sends (H.264 video with packetization-mode 1).
    Codecs(String),
}

impl std::fmt::Display for OfferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OfferError::Malformed(m) | OfferError::Codecs(m) => f.write_str(m),
        }
    }
}

/// Something the connection asks of its driver or tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerOutput {
    /// Send `data` to `destination` from the media socket.
    Transmit {
        /// Where to.
        destination: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// ICE and DTLS are up: media may flow.
    Connected,
    /// The browser lost a picture and asks for a key frame.
    KeyFrameRequested,
    /// The connection is over (closed by the browser, or it stopped answering).
    Closed,
}

/// Messages kept for brazen's own data channel until it opens.
const MAX_WAITING: usize = 32;

/// One browser's connection.
pub struct Peer {
    rtc: Rtc,
    ufrag: String,
    video: (Mid, Pt),
    audio: Option<(Mid, Pt)>,
    /// The data channels open: the browser's own and the one brazen opened.
    channels: Vec<ChannelId>,
    /// brazen's own channel, and what was said before it opened (sent once it does).
    own: Option<(ChannelId, Vec<String>)>,
    outputs: VecDeque<PeerOutput>,
    deadline: Instant,
    closed: bool,
}

/// The DTLS certificate every peer of this process presents, made on first use (as mediasoup's
/// workers do: each answer's fingerprint names it, so nothing is lost by sharing it, and no
/// browser waits for a key pair to be made). `None` if it cannot be made: str0m then makes one
/// per peer.
fn certificate() -> Option<DtlsCert> {
    static CERT: OnceLock<Option<DtlsCert>> = OnceLock::new();
    CERT.get_or_init(|| str0m::crypto::from_feature_flags().dtls_provider.generate_certificate()).clone()
}

/// How well an H.264 profile-level-id fits what the encoder makes (Constrained Baseline):
/// higher is better, `None` unusable.
fn h264_rank(profile_level_id: Option<u32>) -> u8 {
    match profile_level_id.map(|p| p >> 8) {
        Some(0x42e0) => 3,
        Some(0x42c0) => 2,
        Some(0x4200) | None => 1,
        Some(_) => 0,
    }
}

impl Peer {
    /// Answers `offer` (SDP text) for a peer reached at `local` (the media socket's public
    /// address): the peer and the SDP answer.
    pub fn answer(offer: &str, local: SocketAddr, now: Instant) -> Result<(Peer, String), OfferError> {
        let offer = SdpOffer::from_sdp_string(offer)
            .map_err(|e| OfferError::Malformed(format!("The SDP offer cannot be read: {e}.")))?;
        let creds = IceCreds::new();
        let ufrag = creds.ufrag.clone();
        let mut config = RtcConfig::new();
        if let Some(cert) = certificate() {
            config = config.set_dtls_cert(cert);
        }
        let mut rtc = config
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .set_ice_lite(true)
            .set_local_ice_credentials(creds)
            .build(now);
        let candidate = Candidate::host(local, "udp")
            .map_err(|e| OfferError::Malformed(format!("The media address {local} cannot be offered: {e}.")))?;
        rtc.add_local_candidate(candidate);
        // str0m asserts on some offers it reads (a payload type claimed by two media sections,
        // found by fuzzing): a refusal, not a panic in the session.
        let accepted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)))
            .map_err(|_| {
                OfferError::Malformed(
                    "The SDP offer cannot be answered: its media sections contradict each other (a payload type used twice?)."
                        .into(),
                )
            })?;
        let answer = accepted.map_err(|e| OfferError::Malformed(format!("The SDP offer cannot be answered: {e}.")))?;
        let answer = answer.to_sdp_string();
        let deadline = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(_) => {}
                Err(e) => return Err(OfferError::Malformed(format!("The SDP offer cannot be answered: {e}."))),
            }
        };
        // The answer names every media section it took (`a=mid:`).
        let medias: Vec<(Mid, MediaKind)> = answer
            .lines()
            .filter_map(|l| l.strip_prefix("a=mid:"))
            .map(|m| Mid::from(m.trim()))
            .filter_map(|mid| rtc.media(mid).map(|m| (mid, m.kind())))
            .collect();
        let mut video = None;
        let mut audio = None;
        for (mid, kind) in medias {
            let Some(writer) = rtc.writer(mid) else { continue };
            match kind {
                MediaKind::Video if video.is_none() => {
                    video = writer
                        .payload_params()
                        .filter(|p| p.spec().codec == Codec::H264 && p.spec().format.packetization_mode == Some(1))
                        .map(|p| (h264_rank(p.spec().format.profile_level_id), p.pt()))
                        .filter(|(rank, _)| *rank > 0)
                        .max_by_key(|(rank, _)| *rank)
                        .map(|(_, pt)| (mid, pt));
                }
                MediaKind::Audio if audio.is_none() => {
                    audio = writer.payload_params().find(|p| p.spec().codec == Codec::Opus).map(|p| (mid, p.pt()));
                }
                _ => {}
            }
        }
        let video = video.ok_or_else(|| {
            OfferError::Codecs(
                "The offer has no video that can receive H.264 (Constrained Baseline, packetization-mode=1); add a video transceiver (sendrecv or recvonly) in a browser that decodes H.264.".into(),
            )
        })?;
        // A channel of brazen's own beside the browser's, as Azure's avatar service opens one:
        // pages that listen for the server's channel (`ondatachannel`) get the avatar's events
        // too. Opened once SCTP is up.
        let own = answer.contains("m=application").then(|| {
            let config = ChannelConfig { label: "eventChannel".into(), ..ChannelConfig::default() };
            (rtc.direct_api().create_data_channel(config), Vec::new())
        });
        let peer = Peer {
            rtc,
            ufrag,
            video,
            audio,
            channels: Vec::new(),
            own,
            outputs: VecDeque::new(),
            deadline,
            closed: false,
        };
        Ok((peer, answer))
    }

    /// Our ICE username fragment: the browser's connectivity checks carry it first in their
    /// `USERNAME`.
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// Whether the browser will hear the avatar (its offer took Opus audio).
    pub fn has_audio(&self) -> bool {
        self.audio.is_some()
    }

    /// A datagram from the browser.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        let Ok(r) = Receive::new(Protocol::Udp, source, destination, data) else { return };
        if self.rtc.handle_input(Input::Receive(now, r)).is_ok() {
            self.drain();
        }
    }

    /// Time has passed.
    pub fn timeout(&mut self, now: Instant) {
        if self.rtc.handle_input(Input::Timeout(now)).is_ok() {
            self.drain();
        }
    }

    /// When [`Peer::timeout`] is next due.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Sends a video frame (Annex B) shown at `at` on the 90 kHz clock; `wallclock` is when it
    /// was made.
    pub fn write_video(&mut self, wallclock: Instant, at: u64, data: &[u8]) {
        let (mid, pt) = self.video;
        if let Some(w) = self.rtc.writer(mid)
            && w.write(pt, wallclock, MediaTime::from_90khz(at), data.to_vec()).is_ok()
        {
            self.drain();
        }
    }

    /// Sends an Opus packet starting at `at` on the 48 kHz clock.
    pub fn write_audio(&mut self, wallclock: Instant, at: u64, data: &[u8]) {
        let Some((mid, pt)) = self.audio else { return };
        if let Some(w) = self.rtc.writer(mid)
            && w.write(pt, wallclock, MediaTime::new(at, str0m::media::Frequency::FORTY_EIGHT_KHZ), data.to_vec())
                .is_ok()
        {
            self.drain();
        }
    }

    /// Sends a text message on every open data channel, the browser's and brazen's own; until
    /// brazen's own is open, it is kept for it (a few dozen at most), so a page that listens
    /// only there still hears the first events.
    pub fn send_text(&mut self, text: &str) {
        if let Some((id, waiting)) = &mut self.own
            && !self.channels.contains(id)
            && waiting.len() < MAX_WAITING
        {
            waiting.push(text.to_owned());
        }
        let mut sent = false;
        for id in self.channels.clone() {
            if let Some(mut channel) = self.rtc.channel(id) {
                sent |= channel.write(false, text.as_bytes()).is_ok();
            }
        }
        if sent {
            self.drain();
        }
    }

    /// Closes the connection (the browser is told with DTLS close_notify).
    pub fn close(&mut self) {
        if self.rtc.close().is_ok() {
            self.drain();
        }
    }

    /// The next thing to do or know.
    pub fn poll(&mut self) -> Option<PeerOutput> {
        self.outputs.pop_front()
    }

    /// Takes everything str0m has to say after a change.
    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.deadline = t;
                    break;
                }
                Ok(Output::Transmit(t)) => self
                    .outputs
                    .push_back(PeerOutput::Transmit { destination: t.destination, data: t.contents.to_vec() }),
                Ok(Output::Event(e)) => self.on_event(e),
                Err(_) => {
                    self.set_closed();
                    break;
                }
            }
        }
        if !self.rtc.is_alive() {
            self.set_closed();
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => self.outputs.push_back(PeerOutput::Connected),
            Event::ChannelOpen(id, _) if !self.channels.contains(&id) => {
                self.channels.push(id);
                if let Some((own, waiting)) = &mut self.own
                    && *own == id
                {
                    let waiting = std::mem::take(waiting);
                    if let Some(mut channel) = self.rtc.channel(id) {
                        for text in waiting {
                            let _ = channel.write(false, text.as_bytes());
                        }
                    }
                }
            }
            Event::ChannelClose(id) => self.channels.retain(|c| *c != id),
            Event::KeyframeRequest(_) => self.outputs.push_back(PeerOutput::KeyFrameRequested),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) | Event::Closed => self.set_closed(),
            _ => {}
        }
    }

    fn set_closed(&mut self) {
        if !self.closed {
            self.closed = true;
            self.outputs.push_back(PeerOutput::Closed);
        }
    }
}
