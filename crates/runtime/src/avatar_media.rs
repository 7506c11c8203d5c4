//! The avatars' WebRTC media: one UDP port for every peer, and brazen's STUN responder on a port
//! of its own (the next one when it is free).
//!
//! A receiving thread reads the media port: an ICE check goes to the peer whose ufrag it names,
//! and the peer's address is remembered; other datagrams (DTLS, RTP, RTCP) go to the peer using
//! their source address. Each avatar runs on a thread of its own ([`AvatarLink`]: drawing,
//! encoding, str0m), sending straight from the shared socket, so a slow avatar never holds up
//! another one or the protocol.
//!
//! The STUN responder answers the Binding requests of browsers gathering their candidates against
//! the `stun:` server `session.updated` named, so gathering ends at once. It cannot share the
//! media port: a browser hands every packet from its STUN server's address to its STUN client,
//! so the answers to its ICE checks from that same address would never reach ICE.

use brazen_avatar::Backdrop;
use brazen_avatar::character::Rgba;
use brazen_engine::avatar_link::{AvatarCommand, AvatarEvent, AvatarFace};
use brazen_engine::avatar_photo::Portrait;
use brazen_media::stun::{self, Datagram};
use brazen_media::{
    AudioCodec, AvatarLink, AvatarStream, Face, LinkOutput, OfferError, Peer, StreamSettings, VideoSettings,
};
use brazen_protocol::avatar::{AvatarVideo, Background};
use brazen_providers::catch_panic;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// Frames per second of the avatars' video (Azure's rate).
const FPS: f32 = 25.0;
/// A peer that has not connected this long after its answer is dropped.
const CONNECT_WITHIN: Duration = Duration::from_secs(30);

/// An ICE server given to clients besides brazen's own STUN (e.g. a TURN relay for browsers
/// behind strict NATs), as `session.updated` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:`/`turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The TURN server's shared secret (coturn's `static-auth-secret`, the TURN REST API):
    /// clients then get credentials that expire ([`CREDENTIAL_LIFE`]) instead of a fixed
    /// password. Never sent to clients.
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
}

/// How long credentials made from a TURN secret last.
pub const CREDENTIAL_LIFE: Duration = Duration::from_secs(3600);

impl IceServer {
    /// The server as clients get it at `now`: with a shared secret, a user name that carries
    /// its expiry (`{unix time}:brazen`) and the base64 HMAC-SHA1 of it as the password.
    pub fn for_clients(&self, now: std::time::SystemTime) -> IceServer {
        let Some(secret) = &self.secret else { return self.clone() };
        let expires = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default() + CREDENTIAL_LIFE;
        let username = format!("{}:brazen", expires.as_secs());
        let credential = turn_password(secret, &username);
        IceServer { urls: self.urls.clone(), username: Some(username), credential: Some(credential), secret: None }
    }
}

/// The TURN REST API's password for `username`: base64(HMAC-SHA1(secret, username)).
fn turn_password(secret: &str, username: &str) -> String {
    use base64::Engine as _;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, username.as_bytes()).as_ref())
}

/// What an avatar's thread receives.
pub(crate) enum ToPeer {
    Packet {
        at: Instant,
        source: SocketAddr,
        data: Vec<u8>,
    },
    Command(AvatarCommand),
    /// The background picture, loaded.
    Backdrop(Arc<Backdrop>),
    /// A photo avatar's portrait, loaded.
    Portrait(Arc<Backdrop>),
}

/// The most messages an avatar's thread applies before its stream catches up with the clock (a
/// flood of packets never holds the media back for long).
const MAX_BATCH: usize = 64;

/// What reached an avatar's thread: the first message within `wait`, then every one already
/// waiting (at most [`MAX_BATCH`]), and whether the sender is gone. The thread applies them (up
/// to a close) before its stream catches up with the clock: under load, speech still waiting in
/// the channel would otherwise be played late, after silence in its place, and the avatar would
/// switch to idle between two queued speeches, or inside one.
pub(crate) fn arrived(rx: &mpsc::Receiver<ToPeer>, wait: Duration) -> (Vec<ToPeer>, bool) {
    let mut messages = Vec::new();
    match rx.recv_timeout(wait) {
        Ok(message) => messages.push(message),
        Err(RecvTimeoutError::Timeout) => return (messages, false),
        Err(RecvTimeoutError::Disconnected) => return (messages, true),
    }
    while messages.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(message) => messages.push(message),
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Disconnected) => return (messages, true),
        }
    }
    (messages, false)
}

/// Where datagrams go: peers by ufrag and by address, each with an id.
#[derive(Default)]
struct Routes {
    by_ufrag: HashMap<String, (u64, mpsc::Sender<ToPeer>)>,
    by_addr: HashMap<SocketAddr, (u64, mpsc::Sender<ToPeer>)>,
    next_id: u64,
}

impl Routes {
    fn remove(&mut self, id: u64) {
        self.by_ufrag.retain(|_, (i, _)| *i != id);
        self.by_addr.retain(|_, (i, _)| *i != id);
    }
}

/// The media port and its peers.
pub struct AvatarMedia {
    socket: Arc<UdpSocket>,
    /// The address browsers reach the media port at (the host candidate).
    public: SocketAddr,
    /// The address browsers reach the STUN responder at.
    stun: SocketAddr,
    routes: Arc<Mutex<Routes>>,
    extra_ice_servers: Vec<IceServer>,
}

/// This machine's address for outgoing traffic (no packet is sent), or loopback.
fn outgoing_ip() -> IpAddr {
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

impl AvatarMedia {
    /// Binds `bind` (port 0: any free one) for the media and the next port (or any free one)
    /// for STUN, and starts receiving; browsers are told to reach them at `public` (default: the
    /// bound address, or this machine's outgoing address when bound to every interface).
    pub fn bind(bind: SocketAddr, public: Option<IpAddr>, extra_ice_servers: Vec<IceServer>) -> std::io::Result<Self> {
        let socket = Arc::new(UdpSocket::bind(bind)?);
        let local = socket.local_addr()?;
        let stun_socket = UdpSocket::bind(SocketAddr::new(local.ip(), local.port().wrapping_add(1)))
            .or_else(|_| UdpSocket::bind(SocketAddr::new(local.ip(), 0)))?;
        let ip = public.unwrap_or(if local.ip().is_unspecified() { outgoing_ip() } else { local.ip() });
        let media = AvatarMedia {
            socket: socket.clone(),
            public: SocketAddr::new(ip, local.port()),
            stun: SocketAddr::new(ip, stun_socket.local_addr()?.port()),
            routes: Arc::new(Mutex::new(Routes::default())),
            extra_ice_servers,
        };
        let routes = media.routes.clone();
        std::thread::Builder::new().name("avatar-media-rx".into()).spawn(move || receive(&socket, &routes))?;
        std::thread::Builder::new().name("avatar-stun".into()).spawn(move || answer_stun(&stun_socket))?;
        Ok(media)
    }

    /// The address browsers reach the media port at.
    pub fn public_addr(&self) -> SocketAddr {
        self.public
    }

    /// The address browsers reach the STUN responder at.
    pub fn stun_addr(&self) -> SocketAddr {
        self.stun
    }

    /// The ICE servers for `session.updated`: brazen's STUN, then the configured ones (with
    /// credentials that expire for a TURN server given by its shared secret).
    pub fn ice_servers(&self) -> Vec<serde_json::Value> {
        let own =
            IceServer { urls: vec![format!("stun:{}", self.stun)], username: None, credential: None, secret: None };
        let now = std::time::SystemTime::now();
        std::iter::once(own)
            .chain(self.extra_ice_servers.iter().map(|s| s.for_clients(now)))
            .filter_map(|s| serde_json::to_value(s).ok())
            .collect()
    }

    /// Answers `offer` and starts the avatar: its commands go through the returned handle, its
    /// news comes back on `events`. `seed` makes its idle motion its own.
    pub fn connect(
        &self,
        offer: &str,
        face: AvatarFace,
        video: &AvatarVideo,
        seed: u64,
        events: UnboundedSender<AvatarEvent>,
    ) -> Result<(AvatarHandle, String), AvatarEvent> {
        let now = Instant::now();
        let (peer, answer) = Peer::answer(offer, self.public, now).map_err(|e| match e {
            OfferError::Malformed(message) => AvatarEvent::Refused { unsupported: false, message },
            OfferError::Codecs(message) => AvatarEvent::Refused { unsupported: true, message },
        })?;
        let stream = AvatarStream::new(&stream_settings(&face, video, seed, AudioCodec::Opus)).map_err(cannot_start)?;
        let link = AvatarLink::new(peer, stream);
        let (handle, rx) = AvatarHandle::channel();
        let id = {
            let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
            routes.next_id += 1;
            let id = routes.next_id;
            routes.by_ufrag.insert(link.ufrag().to_owned(), (id, handle.tx.clone()));
            id
        };
        handle.load_pictures(&face, video, &events);
        let socket = self.socket.clone();
        let routes = self.routes.clone();
        let local = self.public;
        std::thread::Builder::new()
            .name("avatar-peer".into())
            .spawn(move || {
                // What browsers send reaches str0m on this thread: a panic in it ends this
                // avatar's connection alone, as if the browser had left.
                if let Err(panic) = catch_panic(|| run_peer(link, &rx, &socket, local, &events)) {
                    tracing::error!("an avatar connection failed unexpectedly: {panic}");
                    let _ = events.send(AvatarEvent::Closed);
                }
                routes.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
            })
            .map_err(|e| cannot_start(e.to_string()))?;
        Ok((handle, answer))
    }

    /// Peers connected or connecting.
    pub fn peers(&self) -> usize {
        self.routes.lock().map(|r| r.by_ufrag.len()).unwrap_or(0)
    }
}

/// How an avatar's stream is drawn and encoded, from the session's video settings.
pub(crate) fn stream_settings(face: &AvatarFace, video: &AvatarVideo, seed: u64, audio: AudioCodec) -> StreamSettings {
    let background = match &video.background {
        Background::Color(c) => *c,
        // Under a picture (and until it is loaded): a plain light colour.
        Background::Image(_) => Rgba([245, 245, 245, 255]),
    };
    let face = match face {
        AvatarFace::Character(look) => Face::Character(look.clone()),
        AvatarFace::Photo(photo) => Face::Photo { mouth: photo.mouth, scene: photo.scene },
    };
    StreamSettings {
        face,
        picture: video.resolution,
        crop: video.crop,
        background,
        video: VideoSettings { fps: FPS, bitrate: video.bitrate, gop: video.gop_size },
        audio,
        alpha_below: false,
        seed,
    }
}

/// The refusal of an avatar whose stream cannot start (`message` says why).
pub(crate) fn cannot_start(message: String) -> AvatarEvent {
    AvatarEvent::Refused { unsupported: true, message: format!("The avatar cannot start: {message}.") }
}

/// Applies a speech command to an avatar's stream (closing is the caller's).
pub(crate) fn apply(stream: &mut AvatarStream, command: AvatarCommand) {
    match command {
        AvatarCommand::Phrase { duration_ms, phones } => stream.phrase(duration_ms, &phones),
        AvatarCommand::Audio { samples, sample_rate } => stream.audio(&samples, sample_rate),
        AvatarCommand::Clear => stream.clear(),
        AvatarCommand::Scene(scene) => stream.set_scene(scene),
        AvatarCommand::Close | AvatarCommand::Connect { .. } => {}
    }
}

/// A session's hold on its avatar: commands go to the avatar's thread; dropping it closes the
/// connection.
pub struct AvatarHandle {
    tx: mpsc::Sender<ToPeer>,
}

impl AvatarHandle {
    /// A handle sending on `tx`, and the avatar thread's end.
    pub(crate) fn channel() -> (AvatarHandle, mpsc::Receiver<ToPeer>) {
        let (tx, rx) = mpsc::channel();
        (AvatarHandle { tx }, rx)
    }

    /// Loads the pictures the avatar needs (a background `video` names, a photo avatar's
    /// portrait) for it; one that cannot be used is reported on `events`.
    pub(crate) fn load_pictures(&self, face: &AvatarFace, video: &AvatarVideo, events: &UnboundedSender<AvatarEvent>) {
        if let Background::Image(url) = &video.background {
            self.load(url, "session.avatar.video.background.image_url", ToPeer::Backdrop, events);
        }
        if let AvatarFace::Photo(photo) = face {
            match &photo.portrait {
                Portrait::Url(url) => self.load(url, "session.avatar.photo_url", ToPeer::Portrait, events),
                Portrait::Installed(picture) => {
                    let _ = self.tx.send(ToPeer::Portrait(picture.clone()));
                }
            }
        }
    }

    fn load(
        &self,
        url: &str,
        param: &'static str,
        deliver: fn(Arc<Backdrop>) -> ToPeer,
        events: &UnboundedSender<AvatarEvent>,
    ) {
        let (tx, events) = (self.tx.clone(), events.clone());
        crate::backgrounds::load_in_background(url.to_owned(), move |loaded| {
            let _ = match loaded {
                Ok(picture) => tx.send(deliver(picture)).map_err(|_| ()),
                Err(message) => {
                    events.send(AvatarEvent::PictureFailed { param: param.into(), message }).map_err(|_| ())
                }
            };
        });
    }

    /// Passes a command on (lost if the avatar has gone: its `Closed` is on the way).
    pub fn send(&self, command: AvatarCommand) {
        let _ = self.tx.send(ToPeer::Command(command));
    }
}

impl Drop for AvatarHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(ToPeer::Command(AvatarCommand::Close));
    }
}

/// Reads the media port until the process ends.
fn receive(socket: &UdpSocket, routes: &Mutex<Routes>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, source) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            // ICMP errors surface as failed reads on some systems: keep reading.
            Err(e) => {
                tracing::debug!("media port read: {e}");
                continue;
            }
        };
        let data = &buf[..n];
        let at = Instant::now();
        let target = match stun::classify(data) {
            // Not the STUN server's port.
            Datagram::StunServerRequest => continue,
            Datagram::Ice(ufrag) => {
                let mut r = routes.lock().unwrap_or_else(|e| e.into_inner());
                let found = r.by_ufrag.get(ufrag).cloned();
                if let Some(peer) = &found {
                    r.by_addr.insert(source, peer.clone());
                }
                found
            }
            Datagram::Other => routes.lock().unwrap_or_else(|e| e.into_inner()).by_addr.get(&source).cloned(),
        };
        if let Some((id, tx)) = target
            && tx.send(ToPeer::Packet { at, source, data: data.to_vec() }).is_err()
        {
            routes.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        }
    }
}

/// Answers STUN Binding requests on `socket` with the address they came from, until the process
/// ends.
fn answer_stun(socket: &UdpSocket) {
    let mut buf = [0u8; 1024];
    loop {
        let Ok((n, source)) = socket.recv_from(&mut buf) else { continue };
        if stun::classify(&buf[..n]) == Datagram::StunServerRequest
            && let Some(reply) = stun::binding_success(&buf[..n], source)
        {
            let _ = socket.send_to(&reply, source);
        }
    }
}

/// Runs one avatar until it closes.
fn run_peer(
    mut link: AvatarLink,
    rx: &mpsc::Receiver<ToPeer>,
    socket: &UdpSocket,
    local: SocketAddr,
    events: &UnboundedSender<AvatarEvent>,
) {
    let born = Instant::now();
    let mut connected = false;
    let mut closing = false;
    loop {
        let wait = link.deadline().saturating_duration_since(Instant::now()).min(Duration::from_millis(100));
        let (messages, gone) = arrived(rx, wait);
        for message in messages {
            match message {
                ToPeer::Packet { at, source, data } => link.receive(at, source, local, &data),
                ToPeer::Command(AvatarCommand::Close) => closing = true,
                ToPeer::Command(command) => apply(link.stream(), command),
                ToPeer::Backdrop(backdrop) => link.stream().set_backdrop(&backdrop),
                ToPeer::Portrait(portrait) => link.stream().set_portrait(&portrait),
            }
            if closing {
                break;
            }
        }
        if closing || gone {
            link.close(Instant::now());
            closing = true;
        }
        link.timeout(Instant::now());
        let mut closed = closing;
        while let Some(out) = link.poll() {
            match out {
                LinkOutput::Transmit { destination, data } => {
                    if let Err(e) = socket.send_to(&data, destination) {
                        tracing::debug!("media send to {destination}: {e}");
                    }
                }
                LinkOutput::Connected => {
                    connected = true;
                    tracing::info!(connect_ms = born.elapsed().as_millis() as u64, "avatar connected");
                }
                LinkOutput::Speaking => {
                    let _ = events.send(AvatarEvent::Speaking);
                }
                LinkOutput::Idle => {
                    let _ = events.send(AvatarEvent::Idle);
                }
                LinkOutput::Closed => closed = true,
            }
        }
        if !connected && born.elapsed() > CONNECT_WITHIN {
            tracing::info!("avatar peer never connected; dropped");
            closed = true;
        }
        if closed {
            if let Some(reason) = link.failure() {
                tracing::warn!("avatar stopped: {reason}");
            }
            let _ = events.send(AvatarEvent::Closed);
            return;
        }
    }
}

#[cfg(test)]
mod turn_tests {
    use super::*;

    #[test]
    fn a_turn_secret_gives_credentials_that_expire() {
        let server = IceServer {
            urls: vec!["turn:relay.example:3478".into()],
            username: None,
            credential: None,
            secret: Some("north".into()),
        };
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let given = server.for_clients(now);
        assert_eq!(given.username.as_deref(), Some("1700003600:brazen"));
        assert_eq!(given.credential.as_deref(), Some(turn_password("north", "1700003600:brazen").as_str()));
        // RFC 2202's HMAC-SHA1 test case 2 (effcdf6a…7c79), in base64.
        assert_eq!(turn_password("Jefe", "what do ya want for nothing?"), "7/zfauXrL6LSdBbV8YTfnCWafHk=");
        let json = serde_json::to_value(&given).unwrap();
        assert!(json.get("secret").is_none(), "the secret is never sent: {json}");
        let fixed = IceServer { secret: None, username: Some("u".into()), credential: Some("p".into()), ..server };
        assert_eq!(fixed.for_clients(now), fixed, "fixed credentials are given as they are");
    }
}

#[cfg(test)]
mod arrival_tests {
    use super::*;

    #[test]
    fn every_waiting_message_is_taken_at_once_and_a_gone_sender_after_them() {
        let (tx, rx) = mpsc::channel();
        assert!(matches!(arrived(&rx, Duration::from_millis(1)), (m, false) if m.is_empty()));
        // Speech queued while the thread was busy: all of it, in order, in one go.
        for n in 0..3 {
            tx.send(ToPeer::Command(AvatarCommand::Audio { samples: vec![n], sample_rate: 24_000 })).unwrap();
        }
        let (messages, gone) = arrived(&rx, Duration::from_millis(1));
        let samples: Vec<i16> = messages
            .iter()
            .map(|m| match m {
                ToPeer::Command(AvatarCommand::Audio { samples, .. }) => samples[0],
                _ => -1,
            })
            .collect();
        assert_eq!((samples, gone), (vec![0, 1, 2], false));
        // A flood is taken in batches, so the stream keeps up with the clock meanwhile.
        for _ in 0..MAX_BATCH + 5 {
            tx.send(ToPeer::Command(AvatarCommand::Clear)).unwrap();
        }
        drop(tx);
        assert!(matches!(arrived(&rx, Duration::from_millis(1)), (m, false) if m.len() == MAX_BATCH));
        assert!(matches!(arrived(&rx, Duration::from_millis(1)), (m, true) if m.len() == 5));
        assert!(matches!(arrived(&rx, Duration::from_millis(1)), (m, true) if m.is_empty()));
    }
}
