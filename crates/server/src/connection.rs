//! One Realtime WebSocket: moves frames between the client and its engine [`Session`], and runs
//! the engine jobs the session asks for. All protocol rules live in the session; this loop only
//! reads, writes, spawns and cancels.

use crate::app::{AppState, SessionSlot};
use crate::avatar_media::AvatarHandle;
use axum::extract::ws::{Message, WebSocket};
use brazen_engine::avatar_link::{AvatarCommand, AvatarEvent, AvatarTransport};
use brazen_engine::{Input, JobId, Limits, Output, Session, SessionOptions};
use brazen_protocol::error::code;
use brazen_protocol::{ClientEvent, Dialect, ProtocolError, ServerEvent, client};
use brazen_providers::{AsrEvent, EngineStream, LlmEvent, ToolEvent, TtsEvent};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Read buffer per connection: small, so idle sessions cost little memory.
pub const READ_BUFFER: usize = 4 * 1024;
/// Client frames above this are answered with an `error` event (the session goes on).
pub const SOFT_FRAME_LIMIT: usize = 15 * 1024 * 1024;
/// Client frames above this close the connection (WebSocket status 1009): what one connection
/// may make the server hold for a frame it has not finished reading.
pub const HARD_FRAME_LIMIT: usize = 16 * 1024 * 1024;
/// Server frames are kept under this (the Python Voice Live SDK's limit is 4 MiB).
pub const MAX_SERVER_FRAME: usize = 4 * 1024 * 1024 - 4 * 1024;

enum JobEvent {
    Asr(AsrEvent),
    Llm(LlmEvent),
    Tts(TtsEvent),
    Tool(ToolEvent),
}

type Sink = SplitSink<WebSocket, Message>;

struct Driver {
    state: Arc<AppState>,
    session: Session,
    dialect: Dialect,
    tag: String,
    seq: u64,
    jobs: HashMap<JobId, AbortHandle>,
    job_tx: mpsc::UnboundedSender<(JobId, JobEvent)>,
    /// The avatar's connection, and its news (a new channel for each connection, so a closed
    /// one's last words never reach its successor).
    avatar: Option<AvatarHandle>,
    avatar_rx: Option<mpsc::UnboundedReceiver<AvatarEvent>>,
    /// Video bytes a WebSocket avatar sent that the loop has not taken yet.
    video_backlog: Arc<AtomicUsize>,
}

/// Serves one connection until the client leaves.
pub async fn run(socket: WebSocket, state: Arc<AppState>, slot: SessionSlot, dialect: Dialect, model: String) {
    let _slot = slot;
    let session_id = state.session_id();
    state.metrics.sessions_total.with_label_values(&[dialect.name()]).inc();
    tracing::info!(session = %session_id, dialect = dialect.name(), %model, "session opened");
    let limits = Limits {
        events_per_second: state.config.events_per_second,
        burst: state.config.event_burst,
        ..Limits::default()
    };
    let options = SessionOptions {
        session_id: session_id.clone(),
        model,
        vad: (state.engines.vad)(),
        limits,
        avatars: state.avatars.clone(),
        ice_servers: state.media.as_ref().map(|m| m.ice_servers()).unwrap_or_default(),
        tools: Arc::new(state.engines.tools.specs()),
    };
    let (job_tx, mut job_rx) = mpsc::unbounded_channel();
    let mut driver = Driver {
        session: Session::new(options, Instant::now()),
        tag: session_id.trim_start_matches("sess_").chars().take(8).collect(),
        state,
        dialect,
        seq: 0,
        jobs: HashMap::new(),
        job_tx,
        avatar: None,
        avatar_rx: None,
        video_backlog: Arc::new(AtomicUsize::new(0)),
    };
    let (mut sink, mut stream) = socket.split();
    if driver.flush(&mut sink).await.is_err() {
        return;
    }
    let mut closing = std::pin::pin!(driver.state.closing());
    loop {
        // Client frames first: a response.cancel already on the socket must win over the
        // engine events of the response it cancels.
        let timeout = driver.session.poll_timeout();
        let (input, from_client) = tokio::select! {
            biased;
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => (driver.read(text.as_str()), true),
                Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                    Ok(text) => (driver.read(text), true),
                    Err(_) => (Input::Invalid(ProtocolError::invalid(
                        code::UNSUPPORTED_FRAME,
                        "Binary frames must hold UTF-8 JSON events; send events as text frames.",
                    )), true),
                },
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    tracing::debug!(session = %session_id, "connection error: {e}");
                    if let Some((code, reason)) = close_code(e) {
                        close(&mut sink, code, reason).await;
                    }
                    break;
                }
            },
            () = &mut closing => {
                close(&mut sink, 1001, "The server is shutting down.").await;
                break;
            }
            Some((job, event)) = job_rx.recv() => (match event {
                JobEvent::Asr(e) => Input::Asr(job, e),
                JobEvent::Llm(e) => Input::Llm(job, e),
                JobEvent::Tts(e) => Input::Tts(job, e),
                JobEvent::Tool(e) => Input::Tool(job, e),
            }, false),
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
            driver.state.metrics.client_events_total.inc();
        }
        driver.session.handle(input, started);
        if driver.flush(&mut sink).await.is_err() {
            break;
        }
        if from_client {
            driver.state.metrics.handle_seconds.observe(started.elapsed().as_secs_f64());
        }
    }
    for (_, job) in driver.jobs.drain() {
        job.abort();
    }
    drop(driver);
    tracing::info!(session = %session_id, "session closed");
    return_memory();
}

/// The close frame for a failed read, if the connection can still take one: 1009 for a frame
/// over [`HARD_FRAME_LIMIT`], 1002 for a broken frame, 1007 for text that is not UTF-8.
fn close_code(e: axum::Error) -> Option<(u16, &'static str)> {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => Some((1009, "The frame is over 16 MiB, the most this server reads.")),
        tungstenite::Error::Protocol(_) => Some((1002, "The frame breaks the WebSocket protocol.")),
        tungstenite::Error::Utf8(_) => Some((1007, "A text frame is not UTF-8.")),
        _ => None,
    }
}

/// Sends a close frame (best effort: the peer may be gone).
async fn close(sink: &mut Sink, code: u16, reason: &'static str) {
    let frame = axum::extract::ws::CloseFrame { code, reason: reason.into() };
    let _ = sink.send(Message::Close(Some(frame))).await;
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
    async fn flush(&mut self, sink: &mut Sink) -> Result<(), axum::Error> {
        let mut sent = false;
        while let Some(output) = self.session.poll_output() {
            match output {
                Output::Event(event) => {
                    if let Some(frame) = self.encode(&event) {
                        sink.feed(Message::Text(frame.into())).await?;
                        sent = true;
                    }
                }
                Output::StartAsr(job, request) => {
                    let stream = self.state.engines.asr.transcribe(request);
                    self.spawn(job, stream, JobEvent::Asr);
                }
                Output::StartLlm(job, request) => {
                    let stream = self.state.engines.llm.generate(request);
                    self.spawn(job, stream, JobEvent::Llm);
                }
                Output::StartTts(job, request) => {
                    let stream = self.state.engines.tts.synthesize(request);
                    self.spawn(job, stream, JobEvent::Tts);
                }
                Output::StartTool(job, call) => {
                    let stream = self.state.engines.tools.call(call);
                    self.spawn(job, stream, JobEvent::Tool);
                }
                Output::PrepareLlm(request) => self.state.engines.llm.prepare(request),
                Output::Avatar(command) => self.avatar(command),
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

    /// Carries out an avatar command: a connect answers the offer on the media port, or starts
    /// the stream over the socket (the answer, the start or the refusal comes back as the
    /// avatar's first news).
    fn avatar(&mut self, command: AvatarCommand) {
        match command {
            AvatarCommand::Connect { transport, face, video, seed } => {
                self.avatar = None;
                let (tx, rx) = mpsc::unbounded_channel();
                let result = match (transport, &self.state.media) {
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
        self.state.metrics.server_events_total.inc();
        if let ServerEvent::Error(e) = event {
            self.state.metrics.errors_total.with_label_values(&[e.code]).inc();
        }
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

    fn spawn<E: Send + 'static>(&mut self, job: JobId, mut stream: EngineStream<E>, wrap: fn(E) -> JobEvent) {
        let tx = self.job_tx.clone();
        let handle = tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                if tx.send((job, wrap(event))).is_err() {
                    break;
                }
            }
        });
        self.jobs.insert(job, handle.abort_handle());
    }
}
