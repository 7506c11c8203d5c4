//! One Realtime connection over any transport: moves frames between the client and its engine
//! [`Session`], and runs the engine jobs the session asks for. All protocol rules live in the
//! session; this loop only reads, writes, spawns and cancels.
//!
//! A transport hands [`drive`] the client's frames as a stream of [`ClientFrame`]s (the stream
//! ends when the client leaves) and takes the server's as a sink of [`ServerFrame`]s. The
//! server's WebSocket is one such transport; tokio channels are another:
//!
//! ```no_run
//! # async fn demo(runtime: std::sync::Arc<brazen_runtime::Runtime>) {
//! use brazen_runtime::connection::{self, ClientFrame, ConnectionOptions, ServerFrame};
//! use futures_util::{sink, stream};
//! let (to_server, from_client) = tokio::sync::mpsc::channel::<ClientFrame>(16);
//! let (to_client, mut from_server) = tokio::sync::mpsc::channel::<ServerFrame>(16);
//! let frames_in = stream::unfold(from_client, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
//! let frames_out = sink::unfold(to_client, |tx, frame| async move { tx.send(frame).await.map(|()| tx) });
//! let slot = runtime.admit_session().expect("room for a session");
//! tokio::spawn(connection::drive(frames_in, frames_out, slot, ConnectionOptions::default()));
//! # drop((to_server, from_server.recv().await));
//! # }
//! ```

use crate::avatar_media::AvatarHandle;
use crate::{Runtime, SessionSlot};
use brazen_engine::avatar_link::{AvatarCommand, AvatarEvent, AvatarTransport};
use brazen_engine::{Input, JobId, Output, Session, SessionEnd, SessionOptions};
use brazen_protocol::error::code;
use brazen_protocol::{ClientEvent, Dialect, ProtocolError, ServerEvent, client};
use brazen_providers::{
    AsrEvent, EngineStream, LlmEvent, ToolEvent, TtsEvent, TurnVerdict, catch_panic, panic_message,
};
use bytes::Bytes;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use std::collections::HashMap;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Client frames above this are answered with an `error` event (the session goes on).
pub const SOFT_FRAME_LIMIT: usize = 15 * 1024 * 1024;
/// Client frames above this close the connection (WebSocket status 1009): what one connection
/// may make the server hold for a frame it has not finished reading. The transport enforces it
/// while reading (and reports [`ClientFrame::Failed`] with [`Close::TOO_LARGE`]).
pub const HARD_FRAME_LIMIT: usize = 16 * 1024 * 1024;
/// Server frames are kept under this (the Python Voice Live SDK's limit is 4 MiB).
pub const MAX_SERVER_FRAME: usize = 4 * 1024 * 1024 - 4 * 1024;

/// A close frame: a WebSocket status code and its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    /// The status code (1001: going away, 1009: too big, …).
    pub code: u16,
    /// Why, for the peer.
    pub reason: &'static str,
}

impl Close {
    /// The server is shutting down (1001).
    pub const GOING_AWAY: Close = Close { code: 1001, reason: "The server is shutting down." };
    /// A frame over [`HARD_FRAME_LIMIT`] (1009).
    pub const TOO_LARGE: Close = Close { code: 1009, reason: "The frame is over 16 MiB, the most this server reads." };
    /// A frame that breaks the WebSocket protocol (1002).
    pub const PROTOCOL: Close = Close { code: 1002, reason: "The frame breaks the WebSocket protocol." };
    /// A text frame that is not UTF-8 (1007).
    pub const NOT_UTF8: Close = Close { code: 1007, reason: "A text frame is not UTF-8." };
    /// The session reached its maximum length (1000).
    pub const EXPIRED: Close = Close { code: 1000, reason: "The session reached its maximum length." };
    /// The session was idle for too long (1000).
    pub const IDLE: Close = Close { code: 1000, reason: "The session was idle for too long." };

    /// The close frame for a session that ended on its own.
    pub fn for_end(end: SessionEnd) -> Close {
        match end {
            SessionEnd::MaxLength => Close::EXPIRED,
            SessionEnd::Idle => Close::IDLE,
            SessionEnd::ShuttingDown => Close::GOING_AWAY,
        }
    }
}

/// A frame from the client. `T` is the transport's text type (a WebSocket library's UTF-8
/// bytes, or `String`), so a frame of megabytes reaches the parser without a copy.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame<T = String> {
    /// A text frame: one JSON event.
    Text(T),
    /// A binary frame: read as a text frame when it is UTF-8, refused otherwise.
    Binary(Bytes),
    /// The transport failed; the connection ends, with this close frame sent first when the
    /// transport can still take one.
    Failed {
        /// The close frame to answer with ([`Close::TOO_LARGE`], [`Close::PROTOCOL`],
        /// [`Close::NOT_UTF8`]), if any.
        close: Option<Close>,
        /// What went wrong, for the log.
        error: String,
    },
}

/// A frame to the client.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerFrame {
    /// A text frame: one JSON event.
    Text(String),
    /// The connection ends with this close frame.
    Close(Close),
}

/// What a connection starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionOptions {
    /// The dialect the client asked for (a `session.update`'s shape may switch it later).
    pub dialect: Dialect,
    /// The model the client named (`model` / `deployment`), echoed in the session.
    pub model: String,
    /// What this session's configuration starts as, over the runtime's defaults (a client
    /// secret's session); the client's `session.update` overrides it.
    pub session: Option<Arc<brazen_protocol::SessionPatch>>,
    /// The session's id when it was given out before (a client secret's session); `None`: a
    /// fresh one ([`Runtime::session_id`]).
    pub session_id: Option<String>,
    /// The stored conversation this session continues, if any.
    pub resume: Option<Resume>,
}

/// A stored conversation a new session continues (Voice Live's `conversation-id`): another
/// connection's, perhaps on another node that went away.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    /// The conversation's id in the store.
    pub conversation_id: String,
    /// Its items, oldest first.
    pub items: Vec<crate::Restored>,
}

impl Default for ConnectionOptions {
    /// GA, model `brazen`, the runtime's defaults.
    fn default() -> Self {
        ConnectionOptions {
            dialect: Dialect::Ga,
            model: "brazen".into(),
            session: None,
            session_id: None,
            resume: None,
        }
    }
}

struct Driver {
    runtime: Arc<Runtime>,
    session: Session,
    dialect: Dialect,
    tag: String,
    seq: u64,
    jobs: HashMap<JobId, AbortHandle>,
    job_tx: mpsc::UnboundedSender<Input>,
    /// The avatar's connection, and its news (a new channel for each connection, so a closed
    /// one's last words never reach its successor).
    avatar: Option<AvatarHandle>,
    avatar_rx: Option<mpsc::UnboundedReceiver<AvatarEvent>>,
    /// Video bytes a WebSocket avatar sent that the loop has not taken yet.
    video_backlog: Arc<AtomicUsize>,
    /// The session ended on its own ([`Output::Close`]).
    ended: Option<SessionEnd>,
}

/// Serves one connection in the place `slot` holds until the client leaves (its frames end), the
/// transport fails, or the session ends on its own: at its maximum length, idle, or when the
/// runtime shuts down (the response in progress may finish within
/// [`crate::RuntimeLimits::drain`]). A session that ends says why in an `error` event and is
/// sent the matching [`Close`].
pub async fn drive<T, O>(
    frames_in: impl Stream<Item = ClientFrame<T>>,
    frames_out: O,
    slot: SessionSlot,
    options: ConnectionOptions,
) where
    T: Deref<Target = str>,
    O: Sink<ServerFrame>,
{
    let runtime = slot.runtime().clone();
    let _slot = slot;
    let ConnectionOptions { dialect, model, session, session_id, resume } = options;
    let session_id = session_id.unwrap_or_else(|| runtime.session_id());
    runtime.observer().session_opened(dialect);
    tracing::info!(session = %session_id, dialect = dialect.name(), %model, "session opened");
    let options = SessionOptions {
        session_id: session_id.clone(),
        model,
        vad: (runtime.engines.vad)(),
        limits: runtime.limits.session,
        avatars: runtime.avatars.clone(),
        ice_servers: runtime.media.as_ref().map(|m| m.ice_servers()).unwrap_or_default(),
        tools: Arc::new(runtime.engines.tools.specs()),
        defaults: runtime.session_defaults().cloned().into_iter().chain(session).collect(),
        history: resume.as_ref().map(|r| r.items.iter().map(|i| i.item.clone()).collect()).unwrap_or_default(),
        llm_computes_ahead: runtime.engines.llm.computes_ahead(),
    };
    match &resume {
        Some(r) => {
            tracing::info!(session = %session_id, conversation = %r.conversation_id, items = r.items.len(), "session continues a stored conversation");
            runtime.recorder().resumed(&session_id, &r.conversation_id, &r.items, unix_ms());
        }
        None => runtime.recorder().opened(&session_id, unix_ms()),
    }
    let (job_tx, mut job_rx) = mpsc::unbounded_channel();
    let mut driver = Driver {
        session: Session::new(options, Instant::now()),
        tag: session_id.trim_start_matches("sess_").chars().take(8).collect(),
        runtime,
        dialect,
        seq: 0,
        jobs: HashMap::new(),
        job_tx,
        avatar: None,
        avatar_rx: None,
        video_backlog: Arc::new(AtomicUsize::new(0)),
        ended: None,
    };
    let mut stream = std::pin::pin!(frames_in);
    let mut sink = std::pin::pin!(frames_out);
    if driver.flush(sink.as_mut()).await.is_err() {
        return;
    }
    let mut closing = std::pin::pin!(driver.runtime.closing());
    let mut shutting_down = false;
    loop {
        // Client frames first: a response.cancel already on the socket must win over the
        // engine events of the response it cancels.
        let timeout = driver.session.poll_timeout();
        let (input, from_client) = tokio::select! {
            biased;
            frame = stream.next() => match frame {
                Some(ClientFrame::Text(text)) => (driver.read(&text), true),
                Some(ClientFrame::Binary(bytes)) => match std::str::from_utf8(&bytes) {
                    Ok(text) => (driver.read(text), true),
                    Err(_) => (Input::Invalid(ProtocolError::invalid(
                        code::UNSUPPORTED_FRAME,
                        "Binary frames must hold UTF-8 JSON events; send events as text frames.",
                    )), true),
                },
                None => break,
                Some(ClientFrame::Failed { close, error }) => {
                    tracing::debug!(session = %session_id, "connection error: {error}");
                    if let Some(close) = close {
                        let _ = sink.send(ServerFrame::Close(close)).await;
                    }
                    break;
                }
            },
            () = &mut closing, if !shutting_down => {
                shutting_down = true;
                (Input::Shutdown { deadline: Instant::now() + driver.runtime.limits.drain }, false)
            }
            Some(input) = job_rx.recv() => {
                if let Input::Asr(job, event) = &input {
                    tracing::debug!(session = %session_id, "transcript of job {job:?}: {event:?}");
                }
                (input, false)
            }
            event = next_avatar_event(&mut driver.avatar_rx) => {
                if let AvatarEvent::Video(bytes) = &event {
                    driver.video_backlog.fetch_sub(bytes.len(), Ordering::Relaxed);
                }
                (Input::Avatar(event), false)
            }
            () = sleep_until(timeout) => (Input::Tick, false),
        };
        let started = Instant::now();
        if from_client {
            driver.runtime.observer().client_event();
        }
        driver.session.handle(input, started);
        if driver.flush(sink.as_mut()).await.is_err() {
            break;
        }
        if let Some(end) = driver.ended {
            tracing::info!(session = %session_id, "session ended: {end:?}");
            let _ = sink.send(ServerFrame::Close(Close::for_end(end))).await;
            break;
        }
        if from_client {
            driver.runtime.observer().handled(started.elapsed());
        }
    }
    for (_, job) in driver.jobs.drain() {
        job.abort();
    }
    // The conversation as it ended (items the client never saw finish, transcripts that came
    // without events), then the end.
    let recorder = driver.runtime.recorder();
    let at = unix_ms();
    for item in driver.session.items() {
        recorder.item(&session_id, item, at);
    }
    recorder.closed(&session_id, at);
    drop(driver);
    tracing::info!(session = %session_id, "session closed");
    return_memory();
}

/// Gives the memory freed by a closed session back to the system (glibc keeps freed memory in
/// its arenas otherwise, so a server that once held a large session would stay large). Runs at
/// most once a second, on a blocking thread.
fn return_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static PENDING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if PENDING.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::task::spawn_blocking(|| {
            std::thread::sleep(std::time::Duration::from_secs(1));
            PENDING.store(false, Ordering::Release);
            // SAFETY: malloc_trim only walks glibc's own heap; it has no preconditions.
            unsafe { libc::malloc_trim(0) };
        });
    }
}

/// The avatar's next news, or never when there is no avatar.
async fn next_avatar_event(rx: &mut Option<mpsc::UnboundedReceiver<AvatarEvent>>) -> AvatarEvent {
    match rx {
        Some(rx) => match rx.recv().await {
            Some(event) => event,
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever when there is nothing to wait for.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// Turns a text frame into an input. A `session.update` in the GA shape switches the
    /// connection to GA; one in the flat shape switches a GA connection to the beta (Voice Live
    /// connections keep their dialect).
    fn read(&mut self, text: &str) -> Input {
        if text.len() > SOFT_FRAME_LIMIT {
            return Input::Invalid(ProtocolError::invalid(
                code::FRAME_TOO_LARGE,
                format!("The event is {} bytes; the limit is {SOFT_FRAME_LIMIT} bytes (15 MiB).", text.len()),
            ));
        }
        match client::parse(text) {
            Ok(msg) => {
                if let ClientEvent::SessionUpdate(patch) = &msg.event {
                    if patch.ga_shape {
                        self.dialect = Dialect::Ga;
                    } else if patch.flat_shape && self.dialect == Dialect::Ga {
                        self.dialect = Dialect::Beta;
                    }
                }
                Input::Client(msg)
            }
            Err(e) => Input::Invalid(e),
        }
    }

    /// Carries out everything the session asked for; sends its events.
    /// Every job the session starts is spawned here: a new kind of job is one more arm.
    async fn flush<O: Sink<ServerFrame>>(&mut self, mut sink: Pin<&mut O>) -> Result<(), O::Error> {
        let mut sent = false;
        while let Some(output) = self.session.poll_output() {
            let engines = &self.runtime.engines;
            match output {
                Output::Event(event) => {
                    self.record(&event);
                    if let Some(frame) = self.encode(&event) {
                        sink.feed(ServerFrame::Text(frame)).await?;
                        sent = true;
                    }
                }
                Output::StartAsr(job, request) => {
                    tracing::debug!(
                        session = %self.session.config().id,
                        "transcribing {:.2} s as job {job:?} (preview: {})",
                        request.samples.len() as f64 / f64::from(request.sample_rate),
                        request.preview
                    );
                    let stream = guarded("speech recogniser", || engines.asr.transcribe(request));
                    self.spawn(job, stream, Input::Asr, "speech recogniser");
                }
                Output::StartTurnCheck(job, request) => {
                    let stream = guarded("end-of-turn model", || engines.turn.judge(request));
                    self.spawn(job, stream, Input::Turn, "end-of-turn model");
                }
                Output::StartLlmTurnCheck(job, request) => {
                    let stream = guarded("language model", || engines.llm.end_of_turn(request));
                    self.spawn(job, stream, Input::Turn, "language model");
                }
                Output::StartLlm(job, request) => {
                    let stream = guarded("language model", || engines.llm.generate(request));
                    self.spawn(job, stream, Input::Llm, "language model");
                }
                Output::StartTts(job, request) => {
                    let stream = guarded("speech synthesiser", || engines.tts.synthesize(request));
                    self.spawn(job, stream, Input::Tts, "speech synthesiser");
                }
                Output::StartTool(job, call) => {
                    let stream = guarded("tool", || engines.tools.call(call));
                    self.spawn(job, stream, Input::Tool, "tool");
                }
                // Hints: an engine that panics on one is logged and ignored.
                Output::PrepareLlm(request) => hint("language model", || engines.llm.prepare(request)),
                Output::Avatar(command) => self.avatar(command),
                Output::Close(end) => self.ended = Some(end),
                Output::Cancel(job) => {
                    if let Some(handle) = self.jobs.remove(&job) {
                        handle.abort();
                    }
                }
            }
        }
        self.jobs.retain(|_, h| !h.is_finished());
        if sent {
            sink.flush().await?;
        }
        Ok(())
    }

    /// Hands the recorder the item an event added or changed, as the conversation holds it.
    fn record(&self, event: &ServerEvent) {
        let id = match event {
            ServerEvent::ItemCreated { item, .. }
            | ServerEvent::ItemDone { item, .. }
            | ServerEvent::OutputItemDone { item, .. } => &item.id,
            ServerEvent::TranscriptionCompleted { item_id, .. } | ServerEvent::ItemTruncated { item_id, .. } => item_id,
            _ => return,
        };
        if let Some(item) = self.session.item(id) {
            self.runtime.recorder().item(self.session.config().id.as_str(), item, unix_ms());
        }
    }

    /// Carries out an avatar command: a connect answers the offer on the media port, or starts
    /// the stream over the socket (the answer, the start or the refusal comes back as the
    /// avatar's first news).
    fn avatar(&mut self, command: AvatarCommand) {
        match command {
            AvatarCommand::Connect { transport, face, video, seed } => {
                self.avatar = None;
                let (tx, rx) = mpsc::unbounded_channel();
                let result = match (transport, &self.runtime.media) {
                    (AvatarTransport::WebSocket, _) => {
                        self.video_backlog = Arc::new(AtomicUsize::new(0));
                        crate::avatar_ws::start(face, &video, seed, tx.clone(), self.video_backlog.clone())
                            .map(|h| (h, AvatarEvent::Started))
                    }
                    (AvatarTransport::WebRtc { offer_sdp }, Some(media)) => media
                        .connect(&offer_sdp, face, &video, seed, tx.clone())
                        .map(|(h, answer)| (h, AvatarEvent::Answered(answer))),
                    (AvatarTransport::WebRtc { .. }, None) => Err(AvatarEvent::Refused {
                        unsupported: true,
                        message: "WebRTC avatars are off on this server (no media port); 'output_protocol': 'websocket' works without one.".into(),
                    }),
                };
                let first = match result {
                    Ok((handle, first)) => {
                        self.avatar = Some(handle);
                        first
                    }
                    Err(refused) => refused,
                };
                let _ = tx.send(first);
                self.avatar_rx = Some(rx);
            }
            AvatarCommand::Close => self.avatar = None,
            other => {
                if let Some(avatar) = &self.avatar {
                    avatar.send(other);
                }
            }
        }
    }

    fn encode(&mut self, event: &ServerEvent) -> Option<String> {
        self.seq += 1;
        let event_id = format!("event_{}_{}", self.tag, self.seq);
        let frame = event.encode(self.dialect, &event_id)?;
        if tracing::enabled!(tracing::Level::DEBUG) {
            let kind = event.wire_type(self.dialect).unwrap_or("event");
            if !kind.ends_with(".delta") {
                let head = frame.char_indices().nth(400).map_or(frame.as_str(), |(at, _)| &frame[..at]);
                tracing::debug!(session = %self.session.config().id, "sent {kind}: {head}");
            }
        }
        self.runtime.observer().server_event(match event {
            ServerEvent::Error(e) => Some(e.code),
            _ => None,
        });
        if frame.len() <= MAX_SERVER_FRAME {
            return Some(frame);
        }
        let kind = event.wire_type(self.dialect).unwrap_or("event");
        let error = ProtocolError::server(
            code::FRAME_TOO_LARGE,
            format!("A {kind} event of {} bytes was not sent: server frames are kept under 4 MiB.", frame.len()),
        );
        ServerEvent::Error(error).encode(self.dialect, &event_id)
    }

    /// Runs a job's stream on a task of its own; each event comes back as the input `wrap` makes.
    /// An engine that panics, or whose stream ends before its last event (a worker thread that
    /// died), is answered for: the job fails with a message naming `engine`, so the response
    /// (or the transcript, the verdict) fails and the session goes on.
    fn spawn<E: JobEvent>(
        &mut self,
        job: JobId,
        mut stream: EngineStream<E>,
        wrap: fn(JobId, E) -> Input,
        engine: &'static str,
    ) {
        let tx = self.job_tx.clone();
        let session = self.session.config().id.clone();
        let handle = tokio::spawn(async move {
            let failure = loop {
                match std::panic::AssertUnwindSafe(stream.next()).catch_unwind().await {
                    Ok(Some(event)) => {
                        let last = event.is_last();
                        if tx.send(wrap(job, event)).is_err() || last {
                            return;
                        }
                    }
                    Ok(None) => break format!("the {engine} stopped before finishing its work"),
                    Err(panic) => break format!("the {engine} failed unexpectedly: {}", panic_message(panic.as_ref())),
                }
            };
            tracing::error!(%session, "job {job}: {failure}");
            let _ = tx.send(wrap(job, E::failed(failure)));
        });
        self.jobs.insert(job, handle.abort_handle());
    }
}

/// The stream `start` makes, or, when it panics instead, a stream of one failure naming
/// `engine`: a job that cannot even start fails alone.
fn guarded<E: JobEvent>(engine: &'static str, start: impl FnOnce() -> EngineStream<E>) -> EngineStream<E> {
    match catch_panic(start) {
        Ok(stream) => stream,
        Err(panic) => {
            let failure = format!("the {engine} failed unexpectedly: {panic}");
            tracing::error!("{failure}");
            Box::pin(futures_util::stream::iter([E::failed(failure)]))
        }
    }
}

/// Runs a hint to an engine (nothing comes back); a panic in it is logged, not the session's end.
fn hint(engine: &'static str, give: impl FnOnce()) {
    if let Err(panic) = catch_panic(give) {
        tracing::error!("the {engine} failed unexpectedly on a hint: {panic}");
    }
}

/// An engine job's event, as the driver sees it: whether it ends the job, and the failure to
/// report for an engine that stopped before its last event.
trait JobEvent: Send + 'static {
    /// Whether this is the job's last event (its result or its failure).
    fn is_last(&self) -> bool;
    /// The job failed with this message.
    fn failed(message: String) -> Self;
}

impl JobEvent for AsrEvent {
    fn is_last(&self) -> bool {
        matches!(self, AsrEvent::Done(_) | AsrEvent::Failed(_))
    }
    fn failed(message: String) -> Self {
        AsrEvent::Failed(message)
    }
}

impl JobEvent for LlmEvent {
    fn is_last(&self) -> bool {
        matches!(self, LlmEvent::Done { .. } | LlmEvent::Failed(_))
    }
    fn failed(message: String) -> Self {
        LlmEvent::Failed(message)
    }
}

impl JobEvent for TtsEvent {
    fn is_last(&self) -> bool {
        matches!(self, TtsEvent::Done | TtsEvent::Failed(_))
    }
    fn failed(message: String) -> Self {
        TtsEvent::Failed(message)
    }
}

impl JobEvent for ToolEvent {
    fn is_last(&self) -> bool {
        matches!(self, ToolEvent::Done(_) | ToolEvent::Failed(_))
    }
    fn failed(message: String) -> Self {
        ToolEvent::Failed(message)
    }
}

impl JobEvent for TurnVerdict {
    fn is_last(&self) -> bool {
        true
    }
    fn failed(message: String) -> Self {
        TurnVerdict::Failed(message)
    }
}

/// Now, in Unix milliseconds (what the recorder is told).
fn unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RuntimeLimits;
    use crate::engines::Engines;
    use brazen_avatar::character::Catalog;
    use futures_util::{sink, stream};
    use std::time::Duration;

    /// A connection over tokio channels, as a text chat or a benchmark would drive one: the
    /// client's end (frames to send, frames received) and the driver's task.
    fn connect(
        runtime: &Arc<Runtime>,
    ) -> (mpsc::Sender<ClientFrame>, mpsc::Receiver<ServerFrame>, tokio::task::JoinHandle<()>) {
        let (to_server, from_client) = mpsc::channel::<ClientFrame>(16);
        let (to_client, from_server) = mpsc::channel::<ServerFrame>(64);
        let frames_in = stream::unfold(from_client, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
        let frames_out = sink::unfold(to_client, |tx, frame| async move { tx.send(frame).await.map(|()| tx) });
        let slot = runtime.admit_session().expect("room");
        let options = ConnectionOptions { dialect: Dialect::Beta, model: "m".into(), ..ConnectionOptions::default() };
        (to_server, from_server, tokio::spawn(drive(frames_in, frames_out, slot, options)))
    }

    fn runtime(max_sessions: usize) -> Arc<Runtime> {
        let limits = RuntimeLimits { max_sessions, ..RuntimeLimits::default() };
        Runtime::new(Engines::echo(), Catalog::built_in(), None, limits, crate::Hooks::default())
    }

    /// The next frame, in time.
    async fn next(rx: &mut mpsc::Receiver<ServerFrame>) -> Option<ServerFrame> {
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("a frame in time")
    }

    /// The next event of type `kind` (others are passed over), as JSON.
    async fn event(rx: &mut mpsc::Receiver<ServerFrame>, kind: &str) -> serde_json::Value {
        loop {
            match next(rx).await {
                Some(ServerFrame::Text(text)) => {
                    let event: serde_json::Value = serde_json::from_str(&text).unwrap();
                    if event["type"] == kind {
                        return event;
                    }
                }
                other => panic!("expected {kind}, got {other:?}"),
            }
        }
    }

    /// The close frame, after any events.
    async fn close(rx: &mut mpsc::Receiver<ServerFrame>) -> Close {
        loop {
            match next(rx).await {
                Some(ServerFrame::Text(_)) => {}
                Some(ServerFrame::Close(close)) => return close,
                None => panic!("the connection ended without a close frame"),
            }
        }
    }

    /// Keeps what it is told, as lines.
    #[derive(Default)]
    struct Notes(std::sync::Mutex<Vec<String>>);

    impl crate::Recorder for Notes {
        fn opened(&self, session: &str, _at: i64) {
            self.0.lock().unwrap().push(format!("opened {session}"));
        }
        fn item(&self, _session: &str, item: &brazen_protocol::Item, _at: i64) {
            let text = match &item.body {
                brazen_protocol::ItemBody::Message { role, content } => format!(
                    "{role:?}: {}",
                    content.iter().filter_map(brazen_protocol::Content::text).collect::<Vec<_>>().join(" ")
                ),
                other => format!("{other:?}"),
            };
            self.0.lock().unwrap().push(format!("{} {text}", item.id));
        }
        fn closed(&self, session: &str, _at: i64) {
            self.0.lock().unwrap().push(format!("closed {session}"));
        }
    }

    #[tokio::test]
    async fn the_recorder_hears_every_item_as_it_happens_and_the_end() {
        let notes = Arc::new(Notes::default());
        let defaults = serde_json::json!({"instructions": "Be brief.", "modalities": ["text"]});
        let patch =
            brazen_protocol::SessionPatch::read(brazen_protocol::read::Obj::expect(&defaults, "session").unwrap())
                .unwrap();
        let hooks = crate::Hooks {
            recorder: notes.clone(),
            session_defaults: Some(Arc::new(patch)),
            ..crate::Hooks::default()
        };
        let runtime = Runtime::new(Engines::echo(), Catalog::built_in(), None, RuntimeLimits::default(), hooks);
        let (tx, mut rx, task) = connect(&runtime);
        let created = event(&mut rx, "session.created").await;
        assert_eq!(created["session"]["instructions"], "Be brief.", "the defaults start the session");
        let item = r#"{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text","text":"hello there"}]}}"#;
        tx.send(ClientFrame::Text(item.into())).await.unwrap();
        tx.send(ClientFrame::Text(r#"{"type":"response.create"}"#.into())).await.unwrap();
        event(&mut rx, "response.done").await;
        let during = notes.0.lock().unwrap().clone();
        assert!(during[0].starts_with("opened sess_"), "{during:?}");
        assert!(during.iter().any(|n| n.ends_with("User: hello there")), "{during:?}");
        assert!(during.iter().any(|n| n.contains("Assistant: ")), "the reply, before the session ends: {during:?}");
        drop(tx);
        task.await.unwrap();
        let after = notes.0.lock().unwrap().clone();
        assert!(after.last().unwrap().starts_with("closed sess_"), "{after:?}");
    }

    #[tokio::test]
    async fn a_connection_over_channels_speaks_the_protocol_and_closes_on_shutdown() {
        let runtime = runtime(1);
        let (tx, mut rx, task) = connect(&runtime);
        assert!(runtime.admit_session().is_none(), "the one place is held");
        event(&mut rx, "session.created").await;
        tx.send(ClientFrame::Text(r#"{"type": "session.update", "session": {"instructions": "hi"}}"#.into()))
            .await
            .unwrap();
        assert_eq!(event(&mut rx, "session.updated").await["session"]["instructions"], "hi");
        tx.send(ClientFrame::Binary(Bytes::from_static(&[0xff, 0xfe]))).await.unwrap();
        assert_eq!(event(&mut rx, "error").await["error"]["code"], code::UNSUPPORTED_FRAME);
        tx.send(ClientFrame::Text("x".repeat(SOFT_FRAME_LIMIT + 1))).await.unwrap();
        assert_eq!(event(&mut rx, "error").await["error"]["code"], code::FRAME_TOO_LARGE);
        runtime.begin_closing();
        // Nothing in progress: told why at once, then closed.
        assert_eq!(event(&mut rx, "error").await["error"]["code"], code::SERVER_SHUTTING_DOWN);
        assert_eq!(close(&mut rx).await, Close::GOING_AWAY);
        task.await.unwrap();
        assert_eq!(runtime.open_sessions(), 0);
        drop(tx);
    }

    /// A language model whose stream panics when its instructions say "panic", which panics
    /// instead of making one for "refuse", and otherwise stops after a word without finishing
    /// (as a worker thread that died would).
    struct Broken;

    impl brazen_providers::Llm for Broken {
        fn generate(&self, request: brazen_providers::LlmRequest) -> EngineStream<LlmEvent> {
            if request.instructions == "panic" {
                Box::pin(stream::poll_fn(|_| panic!("the weights are gone")))
            } else if request.instructions == "refuse" {
                panic!("no stream today")
            } else {
                Box::pin(stream::iter([LlmEvent::TextDelta("Half".into())]))
            }
        }
    }

    #[tokio::test]
    async fn an_engine_that_panics_or_stops_fails_its_response_and_the_session_goes_on() {
        let engines = Engines { llm: Arc::new(Broken), ..Engines::echo() };
        let runtime =
            Runtime::new(engines, Catalog::built_in(), None, RuntimeLimits::default(), crate::Hooks::default());
        let (tx, mut rx, task) = connect(&runtime);
        event(&mut rx, "session.created").await;
        for (instructions, message) in [
            ("panic", "the language model failed unexpectedly: the weights are gone"),
            ("refuse", "the language model failed unexpectedly: no stream today"),
            ("stop", "stopped before finishing"),
        ] {
            let create = serde_json::json!({"type": "response.create", "response": {"modalities": ["text"], "instructions": instructions}});
            tx.send(ClientFrame::Text(create.to_string())).await.unwrap();
            let done = event(&mut rx, "response.done").await;
            assert_eq!(done["response"]["status"], "failed", "{done}");
            let error = done["response"]["status_details"]["error"].to_string();
            assert!(error.contains(message), "{error}");
        }
        // The session goes on.
        tx.send(ClientFrame::Text(r#"{"type": "session.update", "session": {"instructions": "still here"}}"#.into()))
            .await
            .unwrap();
        assert_eq!(event(&mut rx, "session.updated").await["session"]["instructions"], "still here");
        drop(tx);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_transport_is_answered_with_its_close_code() {
        let runtime = runtime(10);
        let (tx, mut rx, task) = connect(&runtime);
        event(&mut rx, "session.created").await;
        let failed = ClientFrame::Failed { close: Some(Close::TOO_LARGE), error: "capacity".into() };
        tx.send(failed).await.unwrap();
        assert_eq!(close(&mut rx).await, Close::TOO_LARGE);
        task.await.unwrap();
        // A client that just leaves ends its session too.
        let (tx, mut rx, task) = connect(&runtime);
        event(&mut rx, "session.created").await;
        drop(tx);
        task.await.unwrap();
        assert_eq!(runtime.open_sessions(), 0);
    }
}
