//! Wire types of the Azure Voice Live / OpenAI Realtime protocol, read, checked and encoded; it
//! sits below every other brazen crate and depends on none.
//!
//! brazen speaks three dialects of one protocol over a WebSocket of JSON text frames:
//!
//! - **Voice Live** (`/voice-live/realtime`): OpenAI's beta event names plus Voice Live's
//!   extras (avatar, animation, Azure voices, `warning`).
//! - **OpenAI beta** (`OpenAI-Beta: realtime=v1`): `response.audio.delta`, flat session.
//! - **OpenAI GA**: `response.output_audio.delta`, `conversation.item.added/done`, nested session.
//!
//! Reading is tolerant ([`client::parse`]); writing is strict and complete
//! ([`server::ServerEvent::encode`]). Nothing here does I/O.

pub mod avatar;
pub mod client;
pub mod error;
pub mod interim;
pub mod item;
pub mod read;
pub mod response;
pub mod server;
pub mod session;

pub use avatar::AvatarConfig;
pub use client::{ClientEvent, ClientMessage};
pub use error::ProtocolError;
pub use interim::{InterimResponse, InterimSource};
pub use item::{Content, Item, ItemBody, ItemStatus, Role};
pub use response::{ConversationMode, Response, ResponseOptions, ResponseStatus, Usage};
pub use server::{PartRef, ServerEvent};
pub use session::{
    AnimationOutputs, AudioFormat, Modality, SessionConfig, SessionPatch, Tool, ToolChoice, TurnDetection, Voice,
};

/// Which dialect of the protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Azure Voice Live: beta event names and Voice Live extras.
    VoiceLive,
    /// OpenAI Realtime beta (`OpenAI-Beta: realtime=v1`).
    Beta,
    /// OpenAI Realtime GA.
    Ga,
}

impl Dialect {
    /// A short lowercase name, for logs and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::VoiceLive => "voice_live",
            Dialect::Beta => "openai_beta",
            Dialect::Ga => "openai_ga",
        }
    }
}
