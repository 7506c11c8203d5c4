//! An avatar over WebRTC: a [`Peer`] fed by an [`AvatarStream`] in real time, without I/O.
//!
//! Until the browser connects nothing is sent and speech waits in the stream's queue. From then
//! on the stream's clock is the wall clock since connecting: each audio packet and video frame
//! is made when its time comes and sent with RTP times from the same origin, so the browser
//! plays them in sync. Speaking edges go to the browser's data channel as the events Azure's
//! avatar sends (`EVENT_TYPE_SWITCH_TO_SPEAKING` / `EVENT_TYPE_SWITCH_TO_IDLE`) and to the
//! driver.

use crate::peer::{Peer, PeerOutput};
use crate::stream::{AvatarStream, StreamOutput};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Most frames made in one go when the driver fell behind; older ones are skipped.
const MAX_CATCH_UP: u32 = 3;

/// What the link asks of its driver or tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutput {
    /// Send `data` to `destination` from the media socket.
    Transmit {
        /// Where to.
        destination: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
    /// The browser is connected; media is flowing.
    Connected,
    /// The avatar started speaking.
    Speaking,
    /// The avatar stopped speaking.
    Idle,
    /// The connection is over; drop the link.
    Closed,
}

/// One avatar's connection and media.
pub struct AvatarLink {
    peer: Peer,
    stream: AvatarStream,
    /// When the browser connected: stream time 0.
    started: Option<Instant>,
    outputs: VecDeque<LinkOutput>,
    made: Vec<StreamOutput>,
    failed: Option<String>,
}

impl AvatarLink {
    /// A link for an answered peer.
    pub fn new(peer: Peer, stream: AvatarStream) -> AvatarLink {
        AvatarLink { peer, stream, started: None, outputs: VecDeque::new(), made: Vec::new(), failed: None }
    }

    /// The peer's ICE ufrag (to route its connectivity checks).
    pub fn ufrag(&self) -> &str {
        self.peer.ufrag()
    }

    /// A datagram from the browser.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        self.peer.receive(now, source, destination, data);
        self.collect(now);
    }

    /// Time has passed: makes the media that is due and sends it.
    pub fn timeout(&mut self, now: Instant) {
        if now >= self.peer.deadline() {
            self.peer.timeout(now);
            self.collect(now);
        }
        let Some(start) = self.started else { return };
        let elapsed_ms = now.saturating_duration_since(start).as_secs_f64() * 1000.0;
        while self.stream.audio_clock_ms() <= elapsed_ms {
            if let Err(e) = self.stream.next_audio(&mut self.made) {
                self.fail(e);
                break;
            }
        }
        let mut made = 0;
        while self.stream.video_clock_ms() <= elapsed_ms && made < MAX_CATCH_UP {
            if let Err(e) = self.stream.next_video(&mut self.made) {
                self.fail(e);
                break;
            }
            made += 1;
        }
        if made == MAX_CATCH_UP {
            // Behind by more than a few frames: skip to now (the frames' RTP times keep the
            // picture in sync with the sound).
            self.stream.skip_video_until(elapsed_ms);
        }
        self.send_made(start);
        self.collect(now);
    }

    /// When [`AvatarLink::timeout`] is next due.
    pub fn deadline(&self) -> Instant {
        let peer = self.peer.deadline();
        match self.started {
            Some(start) => {
                let next_ms = self.stream.audio_clock_ms().min(self.stream.video_clock_ms());
                peer.min(start + Duration::from_secs_f64(next_ms / 1000.0))
            }
            None => peer,
        }
    }

    /// The stream (to queue speech, clear it, or look at it).
    pub fn stream(&mut self) -> &mut AvatarStream {
        &mut self.stream
    }

    /// Why the media stopped, if it failed (an encoder error); the link then closes.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Closes the connection.
    pub fn close(&mut self, now: Instant) {
        self.peer.close();
        self.collect(now);
    }

    /// The next thing to do or know.
    pub fn poll(&mut self) -> Option<LinkOutput> {
        self.outputs.pop_front()
    }

    fn fail(&mut self, message: String) {
        if self.failed.is_none() {
            self.failed = Some(message);
            self.peer.close();
        }
    }

    /// Sends what the stream made, with RTP times on the clock that started at `start`.
    fn send_made(&mut self, start: Instant) {
        for out in std::mem::take(&mut self.made) {
            match out {
                StreamOutput::Audio { data, at, .. } => {
                    let wallclock = start + Duration::from_secs_f64(at as f64 / 48_000.0);
                    self.peer.write_audio(wallclock, at, &data);
                }
                StreamOutput::Video { frame, at } => {
                    if !frame.data.is_empty() {
                        let wallclock = start + Duration::from_secs_f64(at as f64 / 90_000.0);
                        self.peer.write_video(wallclock, at, &frame.data);
                    }
                }
                StreamOutput::Speaking { at_ms } => {
                    self.peer.send_text(&channel_event("EVENT_TYPE_SWITCH_TO_SPEAKING", at_ms));
                    self.outputs.push_back(LinkOutput::Speaking);
                }
                StreamOutput::Idle { at_ms } => {
                    self.peer.send_text(&channel_event("EVENT_TYPE_SWITCH_TO_IDLE", at_ms));
                    self.outputs.push_back(LinkOutput::Idle);
                }
            }
        }
    }

    /// Moves the peer's outputs to the link's.
    fn collect(&mut self, now: Instant) {
        while let Some(out) = self.peer.poll() {
            match out {
                PeerOutput::Transmit { destination, data } => {
                    self.outputs.push_back(LinkOutput::Transmit { destination, data })
                }
                PeerOutput::Connected => {
                    if self.started.is_none() {
                        self.started = Some(now);
                        self.stream.force_key_frame();
                        self.outputs.push_back(LinkOutput::Connected);
                    }
                }
                PeerOutput::KeyFrameRequested => self.stream.force_key_frame(),
                PeerOutput::Closed => self.outputs.push_back(LinkOutput::Closed),
            }
        }
    }
}

/// A data-channel event as Azure's avatar sends them: `{"event": {"eventType", "offset"}}`
/// with the offset in seconds of stream time.
fn channel_event(kind: &str, at_ms: u64) -> String {
    format!(r#"{{"event":{{"eventType":"{kind}","offset":"{}.{:03}s"}}}}"#, at_ms / 1000, at_ms % 1000)
}
