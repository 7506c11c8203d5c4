//! The sans-IO conversation engine of brazen: one session's protocol rules as a state
//! machine, which never touches a socket, a thread or the wall clock.
//!
//! A [`Session`] is a plain state machine. It owns the session configuration, the conversation,
//! the input audio buffer with turn detection, the response lifecycle, function calling and
//! barge-in. It has no sockets, threads, async runtime or wall clock: everything arrives as an
//! [`Input`] with the current time, and everything it wants done comes out of
//! [`Session::poll_output`] as an [`Output`]:
//!
//! - [`Output::Event`]: a protocol event to send to the client;
//! - [`Output::StartAsr`] / [`Output::StartLlm`] / [`Output::StartTts`] / [`Output::StartTool`]:
//!   work for an engine or a server-side tool (see `brazen_providers`); the driver runs it and
//!   feeds each streamed result back as [`Input::Asr`] / [`Input::Llm`] / [`Input::Tts`] /
//!   [`Input::Tool`] with the same job id;
//! - [`Output::Cancel`]: stop a job (drop its stream); late results for it are ignored;
//! - [`Output::PrepareLlm`]: a hint that the language model will likely be asked for this
//!   conversation soon (it may compute the prompt ahead); nothing comes back;
//! - [`Output::Avatar`]: work for the avatar's media connection (see [`avatar_link`]); news
//!   from it comes back as [`Input::Avatar`];
//! - [`Output::Close`]: the session is over (its maximum length, its idle timeout, or the
//!   server's shutdown, [`Input::Shutdown`]); close the transport.
//!
//! The driver's loop is therefore (str0m's): **after every [`Session::handle`], drain
//! [`Session::poll_output`] until it returns `None`; then wait for the next input or until
//! [`Session::poll_timeout`], and at that time hand in [`Input::Tick`].** The session never acts
//! on its own, so a driver that keeps this invariant misses nothing, and a test that keeps it
//! runs on a fake clock:
//!
//! ```
//! use brazen_engine::{Input, Output, Session, SessionOptions, Limits};
//! use brazen_protocol::client;
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let mut session = Session::new(
//!     SessionOptions {
//!         session_id: "sess_demo".into(),
//!         model: "echo".into(),
//!         vad: Box::new(brazen_audio::EnergyVad),
//!         limits: Limits::default(),
//!         avatars: std::sync::Arc::new(brazen_avatar::character::Catalog::built_in()),
//!         ice_servers: Vec::new(),
//!         tools: Default::default(),
//!         defaults: Vec::new(),
//!         history: Vec::new(),
//!         llm_computes_ahead: false,
//!     },
//!     now,
//! );
//! let frame = r#"{"type":"response.create","response":{"modalities":["text"]}}"#;
//! session.handle(Input::Client(client::parse(frame).unwrap()), now);
//! while let Some(output) = session.poll_output() {
//!     match output {
//!         Output::Event(event) => { /* encode in the connection's dialect and send */ }
//!         Output::StartLlm(job, request) => { /* run the model; feed Input::Llm(job, …) */ }
//!         _ => {}
//!     }
//! }
//! ```
//!
//! Time is only an input, so tests drive sessions with a fake clock and scripted engine events,
//! faster than real time. Audio samples are the clock of speech: turn detection places
//! `audio_start_ms` / `audio_end_ms` on the input audio, and barge-in truncates the assistant's
//! audio at the last sample the client could have played (see [`playback`]).

pub mod avatar_link;
pub mod avatar_photo;
mod avatar_state;
pub mod backchannel;
pub mod conversation;
mod echo;
pub mod end_of_turn;
pub mod flood;
mod interim;
mod io;
mod lifetime;
mod limits;
mod listener;
mod out;
pub mod playback;
mod responder;
mod session;
mod sound_end;
mod speaker;
pub mod text;
mod timers;
pub mod turn;

pub use io::{Input, JobId, Output, SessionEnd};
pub use limits::Limits;
pub use responder::{MAX_TOOL_ROUNDS, offer_tools};
pub use session::{Session, SessionOptions};

/// A seed for an avatar's idle motion or a message's lip-sync from a name (FNV-1a): the same
/// name, the same motion.
pub(crate) fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// How samples of a wire format are laid out in bytes.
pub(crate) fn sample_format(format: brazen_protocol::AudioFormat) -> brazen_audio::SampleFormat {
    match format {
        brazen_protocol::AudioFormat::Pcm16 { .. } => brazen_audio::SampleFormat::Pcm16,
        brazen_protocol::AudioFormat::G711Ulaw => brazen_audio::SampleFormat::Ulaw,
        brazen_protocol::AudioFormat::G711Alaw => brazen_audio::SampleFormat::Alaw,
    }
}
