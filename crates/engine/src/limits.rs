//! The limits that protect the server from one client.

/// Limits that protect the server from one client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Sustained client events per second.
    pub events_per_second: f64,
    /// Events a client may send in a burst above the sustained rate.
    pub burst: f64,
    /// Most audio the input buffer holds without a commit, in ms.
    pub max_buffer_ms: f64,
    /// Longest text a client may send in one field (`instructions`, a message's text, a function
    /// call's arguments or output, a tool's definition, `pre_generated_assistant_message`), in
    /// bytes.
    pub max_text_bytes: usize,
    /// Most text the conversation's items may hold together, in bytes; an item past it is
    /// refused until the client deletes some.
    pub max_conversation_bytes: usize,
    /// Longest audio delta sent to the client, in ms.
    pub audio_delta_ms: f64,
    /// How far ahead of the client's playback audio is sent, in ms. Audio is paced on the
    /// playback clock, so a response is in progress while it is being spoken and a cancel or a
    /// barge-in cuts audio that was never sent.
    pub audio_lead_ms: f64,
    /// How much synthesised audio may wait unsent, in ms: past it the next phrase is
    /// synthesised only as the audio goes out, so a reply of any length holds bounded memory.
    pub synthesis_ahead_ms: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            events_per_second: 500.0,
            burst: 2_000.0,
            max_buffer_ms: 15.0 * 60_000.0,
            max_text_bytes: 256 * 1024,
            max_conversation_bytes: 16 * 1024 * 1024,
            audio_delta_ms: 200.0,
            audio_lead_ms: 500.0,
            synthesis_ahead_ms: 8_000.0,
        }
    }
}
