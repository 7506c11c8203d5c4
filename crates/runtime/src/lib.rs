//! brazen's runtime owns what runs a conversation once its frames arrive — the per-connection
//! driver over any transport ([`connection`]), the engine set ([`engines`]), the avatars' media
//! and STUN threads ([`avatar_media`], [`avatar_ws`]) and the picture fetcher ([`backgrounds`]) —
//! and may not touch HTTP, WebSocket libraries, authentication, configuration files or a metrics
//! format (those are the binary's, `brazen-server`).
//!
//! A transport (the server's WebSocket, a text chat, a relay, an in-process benchmark over
//! channels) admits a session on the shared [`Runtime`] ([`Runtime::admit_session`]) and hands
//! [`connection::drive`] a stream of [`connection::ClientFrame`]s and a sink of
//! [`connection::ServerFrame`]s. What the runtime counts goes to an [`Observer`].

#![warn(missing_docs)]

pub mod avatar_media;
pub mod avatar_ws;
pub mod backgrounds;
pub mod connection;
pub mod engines;

use brazen_avatar::character::Catalog;
use brazen_engine::Limits;
use brazen_protocol::Dialect;
use engines::Engines;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// What the runtime reports as it works (the server counts it in Prometheus metrics). Every
/// method does nothing unless implemented.
pub trait Observer: Send + Sync {
    /// A session was admitted ([`Runtime::admit_session`]): one more is open.
    fn session_admitted(&self) {}
    /// A session's slot was released: one fewer is open.
    fn session_released(&self) {}
    /// A session started speaking `dialect`.
    fn session_opened(&self, _dialect: Dialect) {}
    /// A client frame was received.
    fn client_event(&self) {}
    /// A server event was sent; `error` is the code of an `error` event.
    fn server_event(&self, _error: Option<&'static str>) {}
    /// Handling a client frame and sending every event it caused took this long.
    fn handled(&self, _elapsed: Duration) {}
}

/// An [`Observer`] that reports nowhere.
pub struct Unobserved;

impl Observer for Unobserved {}

/// Keeps each session's conversation as it happens (the server stores it in its database).
/// Called on the session's own task: implementations hand the work to another task rather than
/// wait on storage. Every method does nothing unless implemented.
pub trait Recorder: Send + Sync {
    /// Session `session` opened at `at_ms` (Unix milliseconds).
    fn opened(&self, _session: &str, _at_ms: i64) {}
    /// Session `session` opened at `at_ms` to continue the stored conversation `conversation`,
    /// whose items it starts with. What it says from now on belongs to that conversation.
    fn resumed(&self, _session: &str, _conversation: &str, _items: &[Restored], _at_ms: i64) {}
    /// An item of the session's conversation was added or changed: its latest version.
    fn item(&self, _session: &str, _item: &brazen_protocol::Item, _at_ms: i64) {}
    /// The session ended at `at_ms`.
    fn closed(&self, _session: &str, _at_ms: i64) {}
}

/// An item of a stored conversation a session continues: as the session holds it, where the
/// store keeps it, and when it first happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// The item (its id is the session's).
    pub item: brazen_protocol::Item,
    /// Its position in the stored conversation.
    pub seq: i64,
    /// When it first happened (Unix milliseconds).
    pub at_ms: i64,
}

/// A [`Recorder`] that keeps nothing.
pub struct Unrecorded;

impl Recorder for Unrecorded {}

/// What a runtime reports to and starts its sessions from, beside its engines.
#[derive(Clone)]
pub struct Hooks {
    /// Counts what the runtime does.
    pub observer: Arc<dyn Observer>,
    /// Keeps each session's conversation.
    pub recorder: Arc<dyn Recorder>,
    /// What every session's configuration starts as (an agent's instructions, voice, turn
    /// detection, …), applied before `session.created`; a client's `session.update` overrides it.
    pub session_defaults: Option<Arc<brazen_protocol::SessionPatch>>,
}

impl Default for Hooks {
    /// No observer, no recorder, the protocol's defaults.
    fn default() -> Self {
        Hooks { observer: Arc::new(Unobserved), recorder: Arc::new(Unrecorded), session_defaults: None }
    }
}

/// How many sessions the runtime takes and what each one may do.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuntimeLimits {
    /// Most concurrent sessions; [`Runtime::admit_session`] refuses more.
    pub max_sessions: usize,
    /// The limits each session's engine enforces on its client.
    pub session: Limits,
    /// How long a response in progress may go on when the process shuts down
    /// ([`Runtime::begin_closing`]) before its session is closed anyway.
    pub drain: Duration,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        RuntimeLimits { max_sessions: 10_000, session: Limits::default(), drain: Duration::from_secs(10) }
    }
}

/// What every session of a process shares: the engines, the avatar characters, the WebRTC media
/// port, the session count and the shutdown signal.
pub struct Runtime {
    /// The engines every session uses.
    pub engines: Engines,
    /// The avatar characters.
    pub avatars: Arc<Catalog>,
    /// The avatars' WebRTC media port (`None`: WebRTC avatars are off).
    pub media: Option<avatar_media::AvatarMedia>,
    /// The session count's bound and each session's limits.
    pub limits: RuntimeLimits,
    hooks: Hooks,
    sessions: AtomicUsize,
    ids: AtomicU64,
    random: RandomState,
    /// Turns true when the process shuts down: every session then closes its transport with
    /// 1001 (going away).
    closing: tokio::sync::watch::Sender<bool>,
}

impl Runtime {
    /// A runtime with these engines, characters, media port, limits and hooks.
    pub fn new(
        engines: Engines,
        avatars: Catalog,
        media: Option<avatar_media::AvatarMedia>,
        limits: RuntimeLimits,
        hooks: Hooks,
    ) -> Arc<Self> {
        Arc::new(Runtime {
            engines,
            avatars: Arc::new(avatars),
            media,
            limits,
            hooks,
            sessions: AtomicUsize::new(0),
            ids: AtomicU64::new(0),
            random: RandomState::new(),
            closing: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Where the runtime reports what it does.
    pub fn observer(&self) -> &dyn Observer {
        self.hooks.observer.as_ref()
    }

    /// Where sessions' conversations are kept.
    pub fn recorder(&self) -> &dyn Recorder {
        self.hooks.recorder.as_ref()
    }

    /// What every session's configuration starts as.
    pub fn session_defaults(&self) -> Option<&Arc<brazen_protocol::SessionPatch>> {
        self.hooks.session_defaults.as_ref()
    }

    /// A fresh, unguessable session id.
    pub fn session_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!("sess_{:016x}{:04x}", self.random.hash_one(n), n & 0xffff)
    }

    /// Tells every session the process is shutting down: each ends once its response in
    /// progress does (within [`RuntimeLimits::drain`]), with an `error` event and a close frame.
    pub fn begin_closing(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once the process begins shutting down.
    pub fn closing(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|closing| *closing).await.map(drop);
        }
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.sessions.load(Ordering::Acquire)
    }

    /// Counts a session in; `None` when the runtime is full.
    pub fn admit_session(self: &Arc<Self>) -> Option<SessionSlot> {
        let prev = self.sessions.fetch_add(1, Ordering::AcqRel);
        if prev >= self.limits.max_sessions {
            self.sessions.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        self.hooks.observer.session_admitted();
        Some(SessionSlot(self.clone()))
    }
}

/// A held place among the sessions; released on drop.
pub struct SessionSlot(Arc<Runtime>);

impl SessionSlot {
    /// The runtime the place is held in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.0
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::AcqRel);
        self.0.hooks.observer.session_released();
    }
}
