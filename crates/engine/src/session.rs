//! [`Session`]: one conversation's state machine.

use crate::avatar_link::{AvatarCommand, AvatarEvent, AvatarFace, AvatarTransport, Link};
use crate::conversation::{Conversation, Entry, Position, not_found};
use crate::playback::{Playback, Segment, transcript_until};
use crate::text::{take_phrase, take_rest};
use crate::turn::{InputAudio, TurnEvent};
use crate::{Input, JobId, Limits, Output};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_audio::{Resampler, SampleFormat, Vad};
use brazen_avatar::character::Catalog;
use brazen_avatar::{LipSync, Phone};
use brazen_protocol::error::code;
use brazen_protocol::{
    AnimationOutputs, AudioFormat, ClientEvent, Content, ConversationMode, Item, ItemBody, ItemStatus, PartRef,
    ProtocolError, Response, ResponseOptions, ResponseStatus, Role, ServerEvent, SessionConfig, Usage,
};
use brazen_providers::{AsrEvent, AsrRequest, LlmEvent, LlmRequest, LlmUsage, TtsEvent, TtsRequest, WordTiming};
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// How to create a session.
pub struct SessionOptions {
    /// `sess_…`, unique on the server.
    pub session_id: String,
    /// The model name the client asked for.
    pub model: String,
    /// The voice-activity detector for server turn detection.
    pub vad: Box<dyn Vad>,
    /// Limits.
    pub limits: Limits,
    /// The avatar characters the server offers.
    pub avatars: std::sync::Arc<Catalog>,
    /// The ICE servers a client's avatar connection should use (`stun:`/`turn:` entries as
    /// `session.updated` lists them), given to sessions whose avatar names none.
    pub ice_servers: Vec<serde_json::Value>,
}

/// Output tokens per second of assistant audio, and input tokens per second of user audio, as
/// the Realtime API counts them.
const AUDIO_OUT_TOKENS_PER_S: f64 = 20.0;
const AUDIO_IN_TOKENS_PER_S: f64 = 10.0;
/// Shortest audio a manual commit accepts, in ms.
const MIN_COMMIT_MS: f64 = 100.0;
/// New speech between two transcript previews, in ms.
const PREVIEW_STEP_MS: f64 = 700.0;
/// A pause in the speech this long gets a preview of the whole turn so far (it is likely the
/// end of the turn, still being confirmed), in ms.
const PAUSE_PREVIEW_MS: f64 = 150.0;
/// Turns longer than this get no more previews (the final transcript still comes), in ms.
const PREVIEW_MAX_MS: f64 = 30_000.0;

struct AsrJob {
    item_id: String,
    audio_seconds: f64,
    /// Transcript already sent as deltas (from previews while the user spoke, or the engine's).
    sent: String,
    /// For a preview standing in as the final transcript: the turn's audio (and its rate), to
    /// transcribe after all if the preview comes back empty or fails (an engine may decline
    /// previews).
    fallback: Option<(Vec<i16>, u32)>,
}

/// A turn the detector is hearing: its item id (announced with `speech_started`) and the
/// previews of its transcript decoded while the user speaks.
struct SpeechTurn {
    item_id: String,
    /// The preview being decoded.
    preview_job: Option<JobId>,
    /// Samples of the turn the last preview was asked for.
    previewed_samples: usize,
    /// The preview asked for during the current pause: it holds every word of the turn if
    /// the turn ends without more speech, and then serves as its final transcript.
    covering: Option<Covering>,
    /// The last preview's words.
    words: Vec<String>,
    /// How many of them were sent as deltas (the stable prefix), and as what text.
    sent_words: usize,
    sent: String,
}

/// A preview of all the speech of a turn, asked for when the speaker paused.
struct Covering {
    job: JobId,
    /// Where the speech it holds ends (audio clock, ms).
    speech_end_ms: f64,
    /// Its transcript, once decoded.
    text: Option<String>,
}

struct TtsJob {
    job: JobId,
    phrase: String,
    started: bool,
}

/// The start of a synthesised phrase.
#[derive(Default)]
struct PhraseOut {
    text: String,
    /// The length of its audio synthesised so far, ms.
    duration_ms: f64,
    /// Its word timings, if the synthesiser gave them.
    words: Vec<WordTiming>,
    /// Its phonemes, if the synthesiser gave them (for lip-sync).
    phones: Vec<Phone>,
}

/// Synthesised output waiting for its time on the playback clock.
enum Paced {
    /// A phrase begins.
    Phrase(PhraseOut),
    /// Audio at the output rate, and its length in ms.
    Audio(Vec<i16>, f64),
}

struct MessageOut {
    item_id: String,
    output_index: u32,
    audio: bool,
    /// All text produced (text modality) or sent so far (audio transcript).
    text: String,
    /// Text not yet split into a phrase.
    pending: String,
    queue: VecDeque<String>,
    tts: Option<TtsJob>,
    resampler: Option<(u32, Resampler)>,
    /// Synthesised but not yet sent.
    paced: VecDeque<Paced>,
    /// Words of released phrases waiting for their audio: (start ms in the item's audio, timing).
    words: VecDeque<(f64, WordTiming)>,
    /// Milliseconds of audio sent.
    audio_ms: f64,
    segments: Vec<Segment>,
    /// The animation asked for, and its timeline (audio responses only).
    animation: AnimationOutputs,
    lipsync: Option<LipSync>,
}

impl MessageOut {
    /// Whether no phrase of the message has been sent, queued or started: the next one is its
    /// first (cut early, so the voice starts soon).
    fn nothing_spoken_yet(&self) -> bool {
        self.text.is_empty() && self.queue.is_empty() && self.tts.is_none() && self.paced.is_empty()
    }
}

struct CallOut {
    item_id: String,
    output_index: u32,
    call_id: String,
    name: String,
    arguments: String,
}

struct Active {
    id: String,
    config: SessionConfig,
    in_conversation: bool,
    metadata: Option<serde_json::Value>,
    llm_job: Option<JobId>,
    waiting_for_asr: bool,
    llm_done: bool,
    hit_cap: bool,
    llm_usage: LlmUsage,
    message: Option<MessageOut>,
    calls: Vec<CallOut>,
    next_output_index: u32,
}

/// One Realtime session: configuration, conversation, input audio, turn detection, responses.
///
/// Drive it with [`Session::handle`] and drain [`Session::poll_output`] after every call.
pub struct Session {
    config: SessionConfig,
    conversation_id: String,
    limits: Limits,
    avatars: std::sync::Arc<Catalog>,
    ice_servers: Vec<serde_json::Value>,
    link: Link,
    /// Whether the avatar's link (when not off) streams over the session's socket.
    link_over_websocket: bool,
    /// The scene controls the photo avatar runs with (to send changes on).
    avatar_scene: Option<brazen_avatar::Scene>,
    conversation: Conversation,
    input: InputAudio,
    speech: Option<SpeechTurn>,
    active: Option<Active>,
    playback: Option<Playback>,
    asr_jobs: HashMap<JobId, AsrJob>,
    outputs: VecDeque<Output>,
    tag: String,
    counter: u64,
    tokens: f64,
    tokens_at: Instant,
    rate_limited_at: Option<Instant>,
}

impl Session {
    /// A new session; `session.created` (and `conversation.created`) are ready to poll.
    pub fn new(options: SessionOptions, now: Instant) -> Self {
        let SessionOptions { session_id, model, vad, limits, avatars, ice_servers } = options;
        let tag: String = session_id.trim_start_matches("sess_").chars().take(12).collect();
        let config = SessionConfig::new(session_id, model);
        let input = InputAudio::new(vad, config.input_audio_format.sample_rate());
        let mut session = Session {
            conversation_id: format!("conv_{tag}"),
            config,
            limits,
            avatars,
            ice_servers,
            link: Link::Off,
            link_over_websocket: false,
            avatar_scene: None,
            conversation: Conversation::default(),
            input,
            speech: None,
            active: None,
            playback: None,
            asr_jobs: HashMap::new(),
            outputs: VecDeque::new(),
            tag,
            counter: 0,
            tokens: limits.burst,
            tokens_at: now,
            rate_limited_at: None,
        };
        session.emit(ServerEvent::SessionCreated(Box::new(session.config.clone())));
        let conversation_id = session.conversation_id.clone();
        session.emit(ServerEvent::ConversationCreated { conversation_id });
        session
    }

    /// The current configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Whether a response is in progress.
    pub fn has_active_response(&self) -> bool {
        self.active.is_some()
    }

    /// Number of conversation items.
    pub fn item_count(&self) -> usize {
        self.conversation.len()
    }

    /// The next thing to do, if any. Drain it after every [`Session::handle`].
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Handles one input at time `now`.
    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Client(msg) => {
                if self.admit(now) {
                    let event_id = msg.event_id.clone();
                    if let Err(e) = self.on_client(msg.event, now) {
                        self.error(e.with_event_id(event_id.as_deref()));
                    }
                }
            }
            Input::Invalid(e) => {
                if self.admit(now) {
                    self.error(e);
                }
            }
            Input::Asr(job, event) => self.on_asr(job, event),
            Input::Llm(job, event) => self.on_llm(job, event),
            Input::Tts(job, event) => self.on_tts(job, event),
            Input::Avatar(event) => self.on_avatar(event),
            Input::Tick => {}
        }
        self.release_audio(now);
    }

    /// When the session next needs an [`Input::Tick`]: when paced audio is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let m = self.active.as_ref()?.message.as_ref()?;
        // Only audio waits for the playback clock (a phrase waits for its audio, which wakes
        // the session when it comes).
        if !matches!(m.paced.front(), Some(Paced::Audio(..))) {
            return None;
        }
        match &self.playback {
            Some(p) => p.drains_to(self.limits.audio_lead_ms),
            None => None,
        }
    }

    /// Token-bucket flood control: whether to accept one more client event.
    fn admit(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.tokens_at).as_secs_f64();
        self.tokens_at = now;
        self.tokens = (self.tokens + elapsed * self.limits.events_per_second).min(self.limits.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        // One error a second at most, so the answer to a flood is not a flood.
        if self.rate_limited_at.is_none_or(|t| now.saturating_duration_since(t).as_secs_f64() >= 1.0) {
            self.rate_limited_at = Some(now);
            self.error(ProtocolError::invalid(
                code::RATE_LIMIT_EXCEEDED,
                format!(
                    "Too many events: the limit is {} a second (bursts of {}); events are being dropped.",
                    self.limits.events_per_second, self.limits.burst
                ),
            ));
        }
        false
    }

    fn emit(&mut self, event: ServerEvent) {
        self.outputs.push_back(Output::Event(event));
    }

    fn error(&mut self, e: ProtocolError) {
        self.emit(ServerEvent::Error(e));
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}{:04}", self.tag, self.counter)
    }

    fn next_job(&mut self) -> JobId {
        self.counter += 1;
        self.counter
    }

    fn on_client(&mut self, event: ClientEvent, now: Instant) -> Result<(), ProtocolError> {
        match event {
            ClientEvent::SessionUpdate(patch) => self.update_session(*patch),
            ClientEvent::InputAudioAppend { audio } => self.append_audio(&audio, now),
            ClientEvent::InputAudioCommit => self.commit_manually(),
            ClientEvent::InputAudioClear => {
                self.input.clear();
                self.end_speech();
                self.emit(ServerEvent::InputAudioCleared);
                Ok(())
            }
            ClientEvent::ItemCreate { previous_item_id, id, body } => self.create_item(previous_item_id, id, body),
            ClientEvent::ItemRetrieve { item_id } => {
                let entry = self.conversation.get(&item_id).ok_or_else(|| not_found(&item_id, "item_id"))?;
                let item = entry.item.clone();
                self.emit(ServerEvent::ItemRetrieved { item });
                Ok(())
            }
            ClientEvent::ItemTruncate { item_id, content_index, audio_end_ms } => {
                self.truncate(&item_id, content_index, audio_end_ms as f64)
            }
            ClientEvent::ItemDelete { item_id } => {
                self.conversation.remove(&item_id).ok_or_else(|| not_found(&item_id, "item_id"))?;
                self.emit(ServerEvent::ItemDeleted { item_id });
                Ok(())
            }
            ClientEvent::ResponseCreate(options) => self.create_response(*options),
            ClientEvent::ResponseCancel { response_id } => {
                let active_id = self.active.as_ref().map(|a| a.id.clone());
                match (active_id, response_id) {
                    (Some(active), Some(asked)) if active != asked => Err(ProtocolError::invalid(
                        code::RESPONSE_CANCEL_NOT_ACTIVE,
                        format!("Response '{asked}' is not in progress (the active one is '{active}')."),
                    )
                    .with_param("response_id")),
                    (Some(_), _) => {
                        self.close_response(ResponseStatus::Cancelled { reason: "client_cancelled" });
                        Ok(())
                    }
                    (None, _) => Err(ProtocolError::invalid(
                        code::RESPONSE_CANCEL_NOT_ACTIVE,
                        "Cancellation failed: no active response found.",
                    )),
                }
            }
            ClientEvent::OutputAudioClear => {
                let response_id = self.playback.take().map(|p| p.response_id);
                self.clear_avatar();
                self.emit(ServerEvent::OutputAudioCleared { response_id });
                Ok(())
            }
            ClientEvent::AvatarConnect { client_sdp } => self.connect_avatar(&client_sdp),
        }
    }

    /// `session.avatar.connect`: checks the session can have a WebRTC avatar and asks the
    /// driver to answer the offer.
    fn connect_avatar(&mut self, client_sdp: &str) -> Result<(), ProtocolError> {
        let Some(avatar) = self.config.avatar.as_ref().filter(|a| a.is_object()) else {
            return Err(ProtocolError::invalid(
                code::AVATAR_NOT_CONFIGURED,
                "No avatar is configured: send session.update with an 'avatar' (e.g. {\"character\": \"lisa\"}) and wait for session.updated before session.avatar.connect.",
            ));
        };
        if avatar.get("output_protocol").and_then(serde_json::Value::as_str) == Some("websocket") {
            return Err(ProtocolError::invalid(
                code::INVALID_VALUE,
                "This session's avatar streams over the WebSocket ('output_protocol': 'websocket'): its video arrives as response.video.delta, with no session.avatar.connect. Set 'output_protocol' to 'webrtc' to connect over WebRTC.",
            )
            .with_param("session.avatar.output_protocol"));
        }
        if self.link != Link::Off {
            return Err(ProtocolError::invalid(
                code::AVATAR_ALREADY_CONNECTED,
                "The avatar is already connected (or connecting) on this session; open a new session to connect again.",
            ));
        }
        let offer_sdp = crate::avatar_link::read_offer(client_sdp)
            .map_err(|message| ProtocolError::invalid(code::INVALID_VALUE, message).with_param("client_sdp"))?;
        self.start_avatar(AvatarTransport::WebRtc { offer_sdp })
    }

    /// Whether the configured avatar's video goes over the session's socket.
    fn avatar_over_websocket(&self) -> bool {
        self.config.avatar.as_ref().and_then(|a| a.get("output_protocol")).and_then(|p| p.as_str()) == Some("websocket")
    }

    /// Asks the driver to start the configured avatar over `transport`.
    fn start_avatar(&mut self, transport: AvatarTransport) -> Result<(), ProtocolError> {
        let avatar = self.config.avatar.clone().unwrap_or_default();
        let text = |key: &str| avatar.get(key).and_then(serde_json::Value::as_str);
        let face = if crate::avatar_photo::is_photo(&avatar) {
            let photo = crate::avatar_photo::read(&avatar, &self.avatars)
                .map_err(|(param, message)| ProtocolError::invalid(code::INVALID_VALUE, message).with_param(param))?;
            self.avatar_scene = Some(photo.scene);
            AvatarFace::Photo(photo)
        } else {
            let chosen =
                self.avatars.choose(text("character").unwrap_or("lisa"), text("style")).map_err(|message| {
                    ProtocolError::invalid(code::AVATAR_VERIFICATION_FAILED, message)
                        .with_param("session.avatar.character")
                })?;
            self.avatar_scene = None;
            AvatarFace::Character(chosen.look)
        };
        let video = crate::avatar_video::AvatarVideo::read(avatar.get("video"), "session.avatar.video")
            .map_err(|(param, message)| ProtocolError::invalid(code::INVALID_VALUE, message).with_param(param))?;
        self.link = Link::Offered;
        self.link_over_websocket = matches!(transport, AvatarTransport::WebSocket);
        let seed = seed_of(&self.config.id);
        self.outputs.push_back(Output::Avatar(AvatarCommand::Connect { transport, face, video, seed }));
        Ok(())
    }

    /// News from the avatar's connection.
    fn on_avatar(&mut self, event: AvatarEvent) {
        match event {
            AvatarEvent::Answered(sdp) if self.link == Link::Offered => {
                self.link = Link::Live;
                let server_sdp = crate::avatar_link::encode_answer(&sdp);
                self.emit(ServerEvent::AvatarConnecting { server_sdp });
            }
            AvatarEvent::Started if self.link == Link::Offered => self.link = Link::Live,
            AvatarEvent::PictureFailed { param, message } if self.link != Link::Off => {
                self.error(ProtocolError::invalid(code::INVALID_VALUE, message).with_param(param));
            }
            AvatarEvent::Video(bytes) if self.link == Link::Live => {
                use base64::Engine as _;
                let delta = base64::engine::general_purpose::STANDARD.encode(bytes);
                self.emit(ServerEvent::VideoDelta { delta });
            }
            AvatarEvent::Refused { unsupported, message } if self.link == Link::Offered => {
                self.link = Link::Off;
                let code = if unsupported { code::UNSUPPORTED } else { code::INVALID_VALUE };
                let param = if self.avatar_over_websocket() { "session.avatar" } else { "client_sdp" };
                self.error(ProtocolError::invalid(code, message).with_param(param));
            }
            AvatarEvent::Speaking if self.link == Link::Live => {
                let turn_id = self.playback.as_ref().map(|p| p.response_id.clone());
                self.emit(ServerEvent::AvatarSpeaking { turn_id });
            }
            AvatarEvent::Idle if self.link == Link::Live => {
                let turn_id = self.playback.as_ref().map(|p| p.response_id.clone());
                self.emit(ServerEvent::AvatarIdle { turn_id });
            }
            AvatarEvent::Closed => self.link = Link::Off,
            _ => {}
        }
    }

    /// Completes a configured avatar for `session.updated`: the server's ICE servers when it
    /// names none (clients must use those), and how a transparent background is delivered
    /// (`transparency`); closes the connection of an avatar that was removed.
    fn complete_avatar(&mut self) {
        match self.config.avatar.as_mut().and_then(serde_json::Value::as_object_mut) {
            Some(avatar) => {
                let named = avatar.get("ice_servers").and_then(|v| v.as_array()).is_some_and(|a| !a.is_empty());
                if !named && !self.ice_servers.is_empty() {
                    avatar.insert("ice_servers".into(), serde_json::Value::Array(self.ice_servers.clone()));
                }
                let websocket = avatar.get("output_protocol").and_then(|p| p.as_str()) == Some("websocket");
                let video = crate::avatar_video::AvatarVideo::read(avatar.get("video"), "session.avatar.video");
                match video.map(|v| v.background) {
                    Ok(crate::avatar_video::Background::Color(c)) if c.0[3] < 255 => {
                        let [r, g, b, _] = c.0;
                        let how = if websocket {
                            serde_json::json!({"method": "alpha_below"})
                        } else {
                            serde_json::json!({"method": "chroma_key", "key_color": format!("#{r:02X}{g:02X}{b:02X}")})
                        };
                        avatar.insert("transparency".into(), how);
                    }
                    _ => {
                        avatar.remove("transparency");
                    }
                }
            }
            None if self.link != Link::Off => {
                self.link = Link::Off;
                self.outputs.push_back(Output::Avatar(AvatarCommand::Close));
            }
            None => {}
        }
    }

    /// Sends a running photo avatar its scene controls when a `session.update` changed them.
    fn update_scene(&mut self) {
        let Some(running) = self.avatar_scene.filter(|_| self.link != Link::Off) else { return };
        let Some(avatar) = self.config.avatar.as_ref().filter(|a| crate::avatar_photo::is_photo(a)) else { return };
        if let Ok(scene) = crate::avatar_photo::read_scene(avatar.get("scene"))
            && scene != running
        {
            self.avatar_scene = Some(scene);
            self.outputs.push_back(Output::Avatar(AvatarCommand::Scene(scene)));
        }
    }

    /// Drops the speech the avatar has not played yet.
    fn clear_avatar(&mut self) {
        if self.link == Link::Live {
            self.outputs.push_back(Output::Avatar(AvatarCommand::Clear));
        }
    }

    fn update_session(&mut self, patch: brazen_protocol::SessionPatch) -> Result<(), ProtocolError> {
        self.check_patch_size(&patch, "session")?;
        if let brazen_protocol::read::Field::Set(avatar) = &patch.avatar {
            self.check_avatar(avatar)?;
        }
        let before = (self.config.input_audio_format, self.config.turn_detection.is_some());
        let prompt_before = (self.config.instructions.clone(), self.config.tools.clone());
        self.config.apply(patch);
        let after = (self.config.input_audio_format, self.config.turn_detection.is_some());
        self.complete_avatar();
        if before.0 != after.0 {
            self.input.set_rate(self.config.input_audio_format.sample_rate());
            self.end_speech();
        } else if before.1 != after.1 {
            self.input.clear();
            self.end_speech();
        }
        self.emit(ServerEvent::SessionUpdated(Box::new(self.config.clone())));
        self.update_scene();
        // A WebSocket avatar needs no handshake: it starts with the session.update that asks for it,
        // replacing a WebRTC link (a client falling back when WebRTC cannot get through).
        if self.avatar_over_websocket()
            && (self.link == Link::Off || !self.link_over_websocket)
            && let Err(e) = self.start_avatar(AvatarTransport::WebSocket)
        {
            self.error(e);
        }
        if prompt_before != (self.config.instructions.clone(), self.config.tools.clone()) {
            self.prepare_llm(None);
        }
        Ok(())
    }

    /// Refuses a text longer than [`Limits::max_text_bytes`], naming the field.
    fn check_text(&self, text: &str, param: &str) -> Result<(), ProtocolError> {
        let limit = self.limits.max_text_bytes;
        if text.len() <= limit {
            return Ok(());
        }
        Err(ProtocolError::invalid(
            code::STRING_ABOVE_MAX_LENGTH,
            format!("'{param}' is {} bytes long; the most allowed is {limit} bytes.", text.len()),
        )
        .with_param(param))
    }

    /// Checks the texts of a `session.update`'s session or a `response.create`'s overrides
    /// (`path`): the instructions, the tools' definitions, the transcription prompt, the voice,
    /// the animation settings and the other fields kept as sent. (The avatar is bounded by the
    /// frame limit: its pictures may be `data:` URLs of up to 16 MiB.)
    fn check_patch_size(&self, patch: &brazen_protocol::SessionPatch, path: &str) -> Result<(), ProtocolError> {
        if let brazen_protocol::read::Field::Set(text) = &patch.instructions {
            self.check_text(text, &format!("{path}.instructions"))?;
        }
        use brazen_protocol::read::Field::Set;
        if let Set(t) = &patch.input_audio_transcription
            && let Some(prompt) = &t.prompt
        {
            self.check_text(prompt, &format!("{path}.input_audio_transcription.prompt"))?;
        }
        if let Set(voice) = &patch.voice {
            let extra = serde_json::Value::Object(voice.extra.clone()).to_string();
            self.check_text(&voice.name, &format!("{path}.voice"))?;
            self.check_text(&extra, &format!("{path}.voice"))?;
        }
        if let Set(animation) = &patch.animation {
            self.check_text(&animation.to_string(), &format!("{path}.animation"))?;
        }
        for (key, value) in &patch.extra {
            if let Set(value) = value {
                self.check_text(&value.to_string(), &format!("{path}.{key}"))?;
            }
        }
        if let brazen_protocol::read::Field::Set(tools) = &patch.tools {
            let total: usize =
                tools.iter().map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len()).sum();
            if total > self.limits.max_text_bytes {
                return Err(ProtocolError::invalid(
                    code::STRING_ABOVE_MAX_LENGTH,
                    format!(
                        "The tools' definitions are {total} bytes long together; the most allowed is {} bytes.",
                        self.limits.max_text_bytes
                    ),
                )
                .with_param(format!("{path}.tools")));
            }
        }
        Ok(())
    }

    /// Refuses to add `adding` bytes to a conversation that would then hold more than
    /// [`Limits::max_conversation_bytes`].
    fn check_room(&self, adding: usize) -> Result<(), ProtocolError> {
        let held = self.conversation.bytes();
        if held + adding <= self.limits.max_conversation_bytes {
            return Ok(());
        }
        Err(ProtocolError::invalid(
            code::SESSION_MEMORY_EXCEEDED,
            format!(
                "The conversation holds {held} bytes and this would add {adding} more; a session holds at most {} bytes. Delete items (conversation.item.delete) first.",
                self.limits.max_conversation_bytes
            ),
        ))
    }

    /// Checks an item's texts against [`Limits::max_text_bytes`].
    fn check_item_size(&self, body: &ItemBody) -> Result<(), ProtocolError> {
        match body {
            ItemBody::Message { content, .. } => {
                for (i, part) in content.iter().enumerate() {
                    if let Some(text) = part.text() {
                        self.check_text(text, &format!("item.content[{i}].text"))?;
                    }
                }
                Ok(())
            }
            ItemBody::FunctionCall { arguments, name, call_id } => {
                self.check_text(name, "item.name")?;
                self.check_text(call_id, "item.call_id")?;
                self.check_text(arguments, "item.arguments")
            }
            ItemBody::FunctionCallOutput { output, call_id } => {
                self.check_text(call_id, "item.call_id")?;
                self.check_text(output, "item.output")
            }
        }
    }

    /// Checks an `avatar` object's character and style against the server's characters (Azure's
    /// stock names are accepted): an unknown one is an error that lists the valid ones.
    fn check_avatar(&self, avatar: &serde_json::Value) -> Result<(), ProtocolError> {
        let text = |key: &str| -> Result<Option<&str>, ProtocolError> {
            match avatar.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(ProtocolError::invalid(
                    code::INVALID_TYPE,
                    format!("Invalid type for 'session.avatar.{key}': expected a string."),
                )
                .with_param(format!("session.avatar.{key}"))),
            }
        };
        let style = text("style")?;
        match text("type")? {
            None | Some("video-avatar") => {}
            Some("photo-avatar") => {
                crate::avatar_photo::read(avatar, &self.avatars).map_err(|(param, message)| {
                    ProtocolError::invalid(code::INVALID_VALUE, message).with_param(param)
                })?;
            }
            Some(other) => {
                return Err(ProtocolError::invalid(
                    code::INVALID_VALUE,
                    format!("'session.avatar.type' must be 'video-avatar' or 'photo-avatar', not {other:?}."),
                )
                .with_param("session.avatar.type"));
            }
        }
        match text("output_protocol")? {
            None | Some("webrtc") | Some("websocket") => {}
            Some(other) => {
                return Err(ProtocolError::invalid(
                    code::INVALID_VALUE,
                    format!("'session.avatar.output_protocol' must be 'webrtc' or 'websocket', not {other:?}."),
                )
                .with_param("session.avatar.output_protocol"));
            }
        }
        crate::avatar_video::AvatarVideo::read(avatar.get("video"), "session.avatar.video")
            .map_err(|(param, message)| ProtocolError::invalid(code::INVALID_VALUE, message).with_param(param))?;
        if avatar.get("customized").and_then(serde_json::Value::as_bool) == Some(true) {
            return Err(ProtocolError::invalid(
                code::AVATAR_VERIFICATION_FAILED,
                "Custom Azure avatars are not available here; brazen's characters are data files: add one to the characters folder and name it in 'character'.",
            )
            .with_param("session.avatar.customized"));
        }
        // A photo avatar's character is only a name: its portrait is the picture.
        let Some(character) = text("character")?.filter(|_| !crate::avatar_photo::is_photo(avatar)) else {
            return Ok(());
        };
        self.avatars.choose(character, style).map(|_| ()).map_err(|message| {
            let param =
                if message.starts_with("avatar style") { "session.avatar.style" } else { "session.avatar.character" };
            ProtocolError::invalid(code::AVATAR_VERIFICATION_FAILED, message).with_param(param)
        })
    }

    /// Asks the language model to compute ahead the prompt of the conversation as it is, with
    /// `heard` as the user's next words when they are still speaking.
    fn prepare_llm(&mut self, heard: Option<String>) {
        let mut items = self.conversation.items();
        if let Some(text) = heard {
            items.push(Item::message("preview", Role::User, vec![Content::InputText(text)], ItemStatus::Completed));
        }
        self.outputs.push_back(Output::PrepareLlm(LlmRequest::new(&self.config, items)));
    }

    fn decode_input(&self, bytes: &[u8], param: &str) -> Result<Vec<i16>, ProtocolError> {
        let format = sample_format(self.config.input_audio_format);
        let mut samples = Vec::with_capacity(bytes.len() / format.bytes_per_sample());
        format.decode_into(bytes, &mut samples).map_err(|e| {
            ProtocolError::invalid(code::INVALID_AUDIO, format!("Invalid audio for input format pcm16: {e}."))
                .with_param(param)
        })?;
        Ok(samples)
    }

    /// Refuses `samples` more audio (at the input rate) when the audio the session holds (the
    /// input buffer and the audio waiting to be transcribed) would pass
    /// [`Limits::max_buffer_ms`].
    fn check_audio_held(&self, samples: usize, param: &str) -> Result<(), ProtocolError> {
        let waiting_ms: f64 = self.asr_jobs.values().map(|j| j.audio_seconds * 1000.0).sum();
        let held_ms = self.input.buffered_ms() + waiting_ms;
        let added_ms = samples as f64 * 1000.0 / self.input.rate() as f64;
        if held_ms + added_ms <= self.limits.max_buffer_ms {
            return Ok(());
        }
        Err(ProtocolError::invalid(
            code::SESSION_MEMORY_EXCEEDED,
            format!(
                "The session already holds {:.0} s of audio (buffered or being transcribed) and this is {:.0} s more; the most is {:.0} s. Wait for the transcriptions, or commit or clear the buffer, first.",
                held_ms / 1000.0,
                added_ms / 1000.0,
                self.limits.max_buffer_ms / 1000.0
            ),
        )
        .with_param(param))
    }

    fn append_audio(&mut self, bytes: &[u8], now: Instant) -> Result<(), ProtocolError> {
        let samples = self.decode_input(bytes, "audio")?;
        let added_ms = samples.len() as f64 * 1000.0 / self.input.rate() as f64;
        if self.input.buffered_ms() + added_ms > self.limits.max_buffer_ms {
            return Err(ProtocolError::invalid(
                code::INVALID_AUDIO,
                format!(
                    "The input audio buffer is full ({} s); commit or clear it first.",
                    self.limits.max_buffer_ms / 1000.0
                ),
            )
            .with_param("audio"));
        }
        self.check_audio_held(samples.len(), "audio")?;
        let detection = self.config.turn_detection.clone();
        for event in self.input.append(&samples, detection.as_ref()) {
            match event {
                TurnEvent::SpeechStarted { audio_start_ms } => {
                    let item_id = self.next_id("item");
                    self.end_speech();
                    self.speech = Some(SpeechTurn {
                        item_id: item_id.clone(),
                        preview_job: None,
                        previewed_samples: 0,
                        covering: None,
                        words: Vec::new(),
                        sent_words: 0,
                        sent: String::new(),
                    });
                    self.emit(ServerEvent::SpeechStarted { audio_start_ms, item_id });
                    if detection.as_ref().is_some_and(|t| t.interrupt_response) {
                        self.barge_in(now);
                    }
                }
                TurnEvent::SpeechStopped { audio_end_ms, speech_end_ms, turn_start_ms } => {
                    // A preview asked for in this final pause already holds every word: it is
                    // the final transcript (kept running if it is still being decoded).
                    let covering = self.speech.as_mut().and_then(|t| {
                        let c = t.covering.take().filter(|c| c.speech_end_ms == speech_end_ms)?;
                        if t.preview_job == Some(c.job) {
                            t.preview_job = None;
                        }
                        Some(c)
                    });
                    let (item_id, sent) = self.end_speech().unwrap_or_else(|| (self.next_id("item"), String::new()));
                    self.emit(ServerEvent::SpeechStopped { audio_end_ms, item_id: item_id.clone() });
                    let (samples, _) = self.input.take(Some(turn_start_ms));
                    self.commit(item_id, samples, sent, covering)?;
                    if detection.as_ref().is_some_and(|t| t.create_response) && self.active.is_none() {
                        self.create_response(ResponseOptions::default())?;
                    }
                }
            }
        }
        if let Some(td) = &detection {
            self.preview(td.prefix_padding_ms as f64);
        }
        Ok(())
    }

    /// While the user speaks (and transcripts are asked for), decodes the turn so far every
    /// [`PREVIEW_STEP_MS`] of speech and once at each pause of [`PAUSE_PREVIEW_MS`], one preview
    /// at a time; what successive previews agree on is sent as transcription deltas. A pause's
    /// preview holds all the words of a turn that is about to end, so the language model can
    /// compute its prompt while the silence is still being confirmed.
    fn preview(&mut self, prefix_padding_ms: f64) {
        if self.config.input_audio_transcription.is_none() || !self.input.in_speech() {
            return;
        }
        let rate = self.input.rate();
        let pause_ms = self.input.pause_ms().unwrap_or(0.0);
        let pausing = pause_ms >= PAUSE_PREVIEW_MS;
        let Some(turn) = self.speech.as_mut() else { return };
        let step = (PREVIEW_STEP_MS * rate as f64 / 1000.0) as usize;
        let longest = (PREVIEW_MAX_MS * rate as f64 / 1000.0) as usize;
        let Some(samples) = self.input.speech_audio(prefix_padding_ms) else { return };
        // During a pause, once, if the last preview began before its words ended.
        let due = if pausing {
            let spoken = samples.len().saturating_sub((pause_ms * rate as f64 / 1000.0) as usize);
            turn.previewed_samples < spoken
        } else {
            samples.len() >= turn.previewed_samples + step
        };
        if turn.preview_job.is_some() || !due || samples.len() > longest {
            return;
        }
        turn.previewed_samples = samples.len();
        let samples = samples.to_vec();
        let item_id = turn.item_id.clone();
        let job = self.next_job();
        if let Some(turn) = self.speech.as_mut() {
            turn.preview_job = Some(job);
        }
        let request = self.asr_request(item_id, samples, rate, true);
        self.outputs.push_back(Output::StartAsr(job, request));
        if let (true, Some(speech_end_ms)) = (pausing, self.input.last_speech_ms())
            && let Some(turn) = self.speech.as_mut()
        {
            turn.covering = Some(Covering { job, speech_end_ms, text: None });
        }
    }

    /// A preview came back: sends the words it shares with the previous one as a delta.
    fn on_preview(&mut self, event: AsrEvent) {
        let Some(turn) = self.speech.as_mut() else { return };
        let text = match event {
            // A preview's partial words are not used: its whole text comes with `Done`.
            AsrEvent::Delta(_) => return,
            AsrEvent::Failed(_) => {
                // A failed preview cannot stand in for the final transcript.
                let job = turn.preview_job.take();
                if turn.covering.as_ref().is_some_and(|c| Some(c.job) == job) {
                    turn.covering = None;
                }
                return;
            }
            AsrEvent::Done(text) => text,
        };
        let job = turn.preview_job.take();
        if let Some(c) = turn.covering.as_mut().filter(|c| Some(c.job) == job) {
            c.text = Some(text.clone());
        }
        if !text.trim().is_empty() && self.active.is_none() {
            self.prepare_llm(Some(text.trim().to_owned()));
        }
        let Some(turn) = self.speech.as_mut() else { return };
        let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        let agreed = words.iter().zip(&turn.words).take_while(|(a, b)| same_word(a, b)).count();
        turn.words = words;
        if agreed <= turn.sent_words {
            return;
        }
        let new = turn.words[turn.sent_words..agreed].join(" ");
        let delta = if turn.sent.is_empty() { new } else { format!(" {new}") };
        turn.sent.push_str(&delta);
        turn.sent_words = agreed;
        let item_id = turn.item_id.clone();
        self.emit(ServerEvent::TranscriptionDelta { item_id, content_index: 0, delta });
    }

    /// The detected turn is over (committed or dropped): stops its preview and returns its item
    /// id and what was sent of its transcript.
    fn end_speech(&mut self) -> Option<(String, String)> {
        let turn = self.speech.take()?;
        if let Some(job) = turn.preview_job {
            self.outputs.push_back(Output::Cancel(job));
        }
        Some((turn.item_id, turn.sent))
    }

    /// The user spoke while the assistant was talking: stop the response and, if asked,
    /// truncate what was said at what the client had played.
    fn barge_in(&mut self, now: Instant) {
        if self.active.is_some() {
            self.close_response(ResponseStatus::Cancelled { reason: "turn_detected" });
        }
        let Some(playback) = self.playback.take() else { return };
        let auto_truncate = self.config.turn_detection.as_ref().is_some_and(|t| t.auto_truncate);
        if !playback.is_playing(now) {
            return;
        }
        if auto_truncate {
            let played = playback.played_ms(now).floor();
            let found = match self.conversation.get_mut(&playback.item_id) {
                Some(mut entry) => {
                    cut_audio(&mut entry, played);
                    true
                }
                None => false,
            };
            if found {
                self.emit(ServerEvent::ItemTruncated {
                    item_id: playback.item_id.clone(),
                    content_index: playback.content_index,
                    audio_end_ms: played as u64,
                });
            }
        }
        if self.config.avatar.is_some() {
            self.clear_avatar();
            self.emit(ServerEvent::OutputAudioCleared { response_id: Some(playback.response_id) });
        }
    }

    fn commit_manually(&mut self) -> Result<(), ProtocolError> {
        let buffered = self.input.buffered_ms();
        if buffered < MIN_COMMIT_MS {
            return Err(ProtocolError::invalid(
                code::INPUT_AUDIO_BUFFER_COMMIT_EMPTY,
                format!(
                    "Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of audio, but buffer only has {buffered:.2}ms of audio."
                ),
            ));
        }
        let (item_id, sent) = self.end_speech().unwrap_or_else(|| (self.next_id("item"), String::new()));
        let (samples, _) = self.input.take(None);
        self.commit(item_id, samples, sent, None)
    }

    /// Turns committed audio into a user item and starts its transcription (`sent`: what
    /// previews already sent of it).
    /// Commits a turn's audio as a user item and transcribes it (unless `covering`, a preview
    /// of all its speech, is its transcript).
    fn commit(
        &mut self,
        item_id: String,
        samples: Vec<i16>,
        sent: String,
        covering: Option<Covering>,
    ) -> Result<(), ProtocolError> {
        let item = Item::message(
            item_id.clone(),
            Role::User,
            vec![Content::InputAudio { audio: None, transcript: None }],
            ItemStatus::Completed,
        );
        let mut entry = Entry::new(item.clone());
        entry.audio_ms = samples.len() as f64 * 1000.0 / self.input.rate() as f64;
        let previous_item_id = self.conversation.insert(Position::End, entry)?;
        self.emit(ServerEvent::InputAudioCommitted {
            previous_item_id: previous_item_id.clone(),
            item_id: item_id.clone(),
        });
        self.announce_item(previous_item_id, item);
        let rate = self.input.rate();
        match covering {
            // A preview that gave words is the transcript.
            Some(Covering { job, text: Some(text), .. }) if !text.trim().is_empty() => {
                let audio_seconds = samples.len() as f64 / rate as f64;
                self.asr_jobs.insert(job, AsrJob { item_id, audio_seconds, sent, fallback: None });
                self.on_asr(job, AsrEvent::Done(text));
            }
            // One still being decoded becomes the final job, with the audio kept in case.
            Some(Covering { job, text: None, .. }) => {
                let audio_seconds = samples.len() as f64 / rate as f64;
                let fallback = Some((samples, rate));
                self.asr_jobs.insert(job, AsrJob { item_id, audio_seconds, sent, fallback });
            }
            _ => self.transcribe(item_id, samples, rate, sent),
        }
        Ok(())
    }

    fn announce_item(&mut self, previous_item_id: Option<String>, item: Item) {
        self.emit(ServerEvent::ItemCreated { previous_item_id: previous_item_id.clone(), item: item.clone() });
        self.emit(ServerEvent::ItemDone { previous_item_id, item });
    }

    fn transcribe(&mut self, item_id: String, samples: Vec<i16>, sample_rate: u32, sent: String) {
        let job = self.next_job();
        let audio_seconds = samples.len() as f64 / sample_rate as f64;
        self.asr_jobs.insert(job, AsrJob { item_id: item_id.clone(), audio_seconds, sent, fallback: None });
        let request = self.asr_request(item_id, samples, sample_rate, false);
        self.outputs.push_back(Output::StartAsr(job, request));
    }

    fn asr_request(&self, item_id: String, samples: Vec<i16>, sample_rate: u32, preview: bool) -> AsrRequest {
        let t = self.config.input_audio_transcription.as_ref();
        AsrRequest {
            item_id,
            samples,
            sample_rate,
            language: t.and_then(|t| t.language.clone()),
            prompt: t.and_then(|t| t.prompt.clone()),
            preview,
        }
    }

    fn create_item(
        &mut self,
        previous_item_id: Option<String>,
        id: Option<String>,
        mut body: ItemBody,
    ) -> Result<(), ProtocolError> {
        self.check_item_size(&body)?;
        let adding = crate::conversation::item_bytes(&Item {
            id: String::new(),
            status: ItemStatus::Completed,
            body: body.clone(),
        });
        self.check_room(adding)?;
        // Audio sent inside the item is transcribed like committed audio.
        let mut audio = None;
        if let ItemBody::Message { content, .. } = &mut body {
            for (i, part) in content.iter_mut().enumerate() {
                if let Content::InputAudio { audio: inline @ Some(_), transcript: None } = part {
                    let bytes = inline.take().unwrap_or_default();
                    let samples = self.decode_input(&bytes, &format!("item.content[{i}].audio"))?;
                    self.check_audio_held(samples.len(), &format!("item.content[{i}].audio"))?;
                    audio = Some(samples);
                }
            }
        }
        let id = match id {
            Some(id) => id,
            None => self.next_id("item"),
        };
        let item = Item { id: id.clone(), status: ItemStatus::Completed, body };
        let at = Position::from_previous(previous_item_id.as_deref());
        let mut entry = Entry::new(item.clone());
        entry.audio_ms = audio.as_ref().map_or(0.0, |s| s.len() as f64 * 1000.0 / self.input.rate() as f64);
        let previous = self.conversation.insert(at, entry)?;
        self.announce_item(previous, item);
        if let Some(samples) = audio {
            self.transcribe(id, samples, self.input.rate(), String::new());
        }
        Ok(())
    }

    fn truncate(&mut self, item_id: &str, content_index: u64, audio_end_ms: f64) -> Result<(), ProtocolError> {
        let producing = self.active.as_ref().and_then(|a| a.message.as_ref()).is_some_and(|m| m.item_id == item_id);
        if producing {
            // The client stopped playing an answer that is still being produced.
            self.close_response(ResponseStatus::Cancelled { reason: "client_cancelled" });
        }
        let mut entry = self.conversation.get_mut(item_id).ok_or_else(|| not_found(item_id, "item_id"))?;
        let has_audio = match &entry.item.body {
            ItemBody::Message { role: Role::Assistant, content } => {
                matches!(content.get(content_index as usize), Some(Content::Audio { .. }))
            }
            _ => false,
        };
        if !has_audio {
            return Err(ProtocolError::invalid(
                code::INVALID_TRUNCATE,
                format!("Item '{item_id}' has no assistant audio at content_index {content_index}."),
            )
            .with_param("content_index"));
        }
        if audio_end_ms > entry.audio_ms.ceil() {
            return Err(ProtocolError::invalid(
                code::INVALID_TRUNCATE,
                format!(
                    "audio_end_ms {audio_end_ms} is beyond the end of the item's audio ({} ms).",
                    entry.audio_ms.round()
                ),
            )
            .with_param("audio_end_ms"));
        }
        cut_audio(&mut entry, audio_end_ms);
        drop(entry);
        if self.playback.as_ref().is_some_and(|p| p.item_id == item_id) {
            self.playback = None;
        }
        self.emit(ServerEvent::ItemTruncated {
            item_id: item_id.to_owned(),
            content_index: content_index as u32,
            audio_end_ms: audio_end_ms as u64,
        });
        Ok(())
    }

    fn create_response(&mut self, options: ResponseOptions) -> Result<(), ProtocolError> {
        if let Some(active) = &self.active {
            return Err(ProtocolError::invalid(
                code::ACTIVE_RESPONSE,
                format!("Conversation already has an active response in progress: {}.", active.id),
            ));
        }
        self.check_patch_size(&options.overrides, "response")?;
        if let Some(text) = &options.pre_generated_text {
            self.check_text(text, "response.pre_generated_assistant_message")?;
        }
        if options.conversation == ConversationMode::Auto {
            // The reply joins the conversation: there must be room for it.
            self.check_room(options.pre_generated_text.as_ref().map_or(0, String::len))?;
        }
        let mut config = self.config.clone();
        config.apply(options.overrides);
        let id = self.next_id("resp");
        let active = Active {
            id,
            config,
            in_conversation: options.conversation == ConversationMode::Auto,
            metadata: options.metadata,
            llm_job: None,
            waiting_for_asr: false,
            llm_done: false,
            hit_cap: false,
            llm_usage: LlmUsage::default(),
            message: None,
            calls: Vec::new(),
            next_output_index: 0,
        };
        let response = self.response_object(&active, ResponseStatus::InProgress, Vec::new(), None);
        self.active = Some(active);
        self.emit(ServerEvent::ResponseCreated(Box::new(response)));
        if let Some(text) = options.pre_generated_text {
            self.on_llm_text(text);
            self.on_llm_done(LlmUsage::default(), false);
        } else if self.asr_jobs.is_empty() {
            self.start_llm();
        } else if let Some(a) = self.active.as_mut() {
            a.waiting_for_asr = true;
        }
        Ok(())
    }

    fn response_object(&self, a: &Active, status: ResponseStatus, output: Vec<Item>, usage: Option<Usage>) -> Response {
        Response {
            id: a.id.clone(),
            status,
            output,
            usage,
            conversation_id: a.in_conversation.then(|| self.conversation_id.clone()),
            modalities: a.config.modalities.clone(),
            voice: a.config.voice.clone(),
            output_audio_format: a.config.output_audio_format,
            temperature: a.config.temperature,
            max_output_tokens: a.config.max_output_tokens,
            metadata: a.metadata.clone(),
        }
    }

    fn start_llm(&mut self) {
        let job = self.next_job();
        let items = self.conversation.items();
        let Some(a) = self.active.as_mut() else { return };
        a.waiting_for_asr = false;
        a.llm_job = Some(job);
        let request = LlmRequest::new(&a.config, items);
        self.outputs.push_back(Output::StartLlm(job, request));
    }

    fn on_asr(&mut self, job: JobId, event: AsrEvent) {
        if self.speech.as_ref().is_some_and(|t| t.preview_job == Some(job)) {
            return self.on_preview(event);
        }
        let report = self.config.input_audio_transcription.is_some();
        let declined = match &event {
            AsrEvent::Done(text) => text.trim().is_empty(),
            AsrEvent::Failed(_) => true,
            AsrEvent::Delta(_) => false,
        };
        if declined && let Some((samples, rate)) = self.asr_jobs.get_mut(&job).and_then(|a| a.fallback.take()) {
            // The preview standing in for the final transcript gave nothing: transcribe the turn.
            if let Some(asr) = self.asr_jobs.remove(&job) {
                self.transcribe(asr.item_id, samples, rate, asr.sent);
            }
            return;
        }
        let Some(asr) = self.asr_jobs.get_mut(&job) else { return };
        let item_id = asr.item_id.clone();
        match event {
            AsrEvent::Delta(delta) => {
                asr.sent.push_str(&delta);
                if report {
                    self.emit(ServerEvent::TranscriptionDelta { item_id, content_index: 0, delta });
                }
                return;
            }
            AsrEvent::Done(transcript) => {
                let audio_seconds = asr.audio_seconds;
                // The rest of the transcript, when it continues what was sent.
                let rest = transcript.strip_prefix(asr.sent.as_str()).filter(|r| !r.is_empty()).map(str::to_owned);
                if let Some(mut entry) = self.conversation.get_mut(&item_id) {
                    set_user_transcript(&mut entry.item, &transcript);
                }
                if report {
                    if let Some(delta) = rest {
                        self.emit(ServerEvent::TranscriptionDelta {
                            item_id: item_id.clone(),
                            content_index: 0,
                            delta,
                        });
                    }
                    self.emit(ServerEvent::TranscriptionCompleted {
                        item_id,
                        content_index: 0,
                        transcript,
                        audio_seconds,
                    });
                }
            }
            AsrEvent::Failed(message) => {
                if report {
                    let error = ProtocolError::server(code::ENGINE_ERROR, format!("Transcription failed: {message}"));
                    self.emit(ServerEvent::TranscriptionFailed { item_id, content_index: 0, error });
                }
            }
        }
        self.asr_jobs.remove(&job);
        if self.asr_jobs.is_empty() && self.active.as_ref().is_some_and(|a| a.waiting_for_asr) {
            self.start_llm();
        }
    }

    fn on_llm(&mut self, job: JobId, event: LlmEvent) {
        if self.active.as_ref().and_then(|a| a.llm_job) != Some(job) || self.active.as_ref().is_some_and(|a| a.llm_done)
        {
            return;
        }
        match event {
            LlmEvent::TextDelta(delta) => self.on_llm_text(delta),
            LlmEvent::ToolCallStart { call_id, name } => self.on_call_start(call_id, name),
            LlmEvent::ToolCallArguments { call_id, delta } => self.on_call_arguments(call_id, delta),
            LlmEvent::Done { usage, hit_token_cap } => self.on_llm_done(usage, hit_token_cap),
            LlmEvent::Failed(message) => {
                let error = ProtocolError::server(code::ENGINE_ERROR, format!("The language model failed: {message}"));
                self.close_response(ResponseStatus::Failed { error });
            }
        }
    }

    fn open_message(&mut self) {
        let item_id = self.next_id("item");
        let last = self.conversation.last_id();
        let Some(a) = self.active.as_mut() else { return };
        if a.message.is_some() {
            return;
        }
        let audio = a.config.has_audio();
        let output_index = a.next_output_index;
        a.next_output_index += 1;
        let message = MessageOut {
            item_id: item_id.clone(),
            output_index,
            audio,
            text: String::new(),
            pending: String::new(),
            queue: VecDeque::new(),
            tts: None,
            resampler: None,
            paced: VecDeque::new(),
            words: VecDeque::new(),
            audio_ms: 0.0,
            segments: Vec::new(),
            animation: if audio { a.config.animation_outputs() } else { AnimationOutputs::default() },
            lipsync: None,
        };
        let response_id = a.id.clone();
        let in_conversation = a.in_conversation;
        let part = if audio { Content::Audio { transcript: String::new() } } else { Content::Text(String::new()) };
        let item = Item::message(item_id.clone(), Role::Assistant, Vec::new(), ItemStatus::InProgress);
        a.message = Some(message);
        self.emit(ServerEvent::OutputItemAdded { response_id: response_id.clone(), output_index, item: item.clone() });
        if in_conversation {
            let mut stored = item.clone();
            stored.body = ItemBody::Message { role: Role::Assistant, content: vec![part.clone()] };
            if self.conversation.insert(Position::End, Entry::new(stored)).is_ok() {
                self.emit(ServerEvent::ItemCreated { previous_item_id: last, item });
            }
        }
        let at = PartRef { response_id, item_id, output_index, content_index: 0 };
        self.emit(ServerEvent::ContentPartAdded { at, part });
    }

    fn on_llm_text(&mut self, delta: String) {
        if delta.is_empty() {
            return;
        }
        self.open_message();
        let Some(a) = self.active.as_mut() else { return };
        let Some(m) = a.message.as_mut() else { return };
        if m.audio {
            m.pending.push_str(&delta);
            loop {
                let first = m.nothing_spoken_yet();
                let Some(phrase) = take_phrase(&mut m.pending, first) else { break };
                m.queue.push_back(phrase);
            }
            self.pump_tts();
        } else {
            m.text.push_str(&delta);
            let at = PartRef {
                response_id: a.id.clone(),
                item_id: m.item_id.clone(),
                output_index: m.output_index,
                content_index: 0,
            };
            self.emit(ServerEvent::TextDelta { at, delta });
        }
    }

    fn on_call_start(&mut self, call_id: String, name: String) {
        let item_id = self.next_id("item");
        let last = self.conversation.last_id();
        let Some(a) = self.active.as_mut() else { return };
        let output_index = a.next_output_index;
        a.next_output_index += 1;
        let item = Item {
            id: item_id.clone(),
            status: ItemStatus::InProgress,
            body: ItemBody::FunctionCall { call_id: call_id.clone(), name: name.clone(), arguments: String::new() },
        };
        a.calls.push(CallOut { item_id, output_index, call_id, name, arguments: String::new() });
        let response_id = a.id.clone();
        let in_conversation = a.in_conversation;
        self.emit(ServerEvent::OutputItemAdded { response_id, output_index, item: item.clone() });
        if in_conversation && self.conversation.insert(Position::End, Entry::new(item.clone())).is_ok() {
            self.emit(ServerEvent::ItemCreated { previous_item_id: last, item });
        }
    }

    fn on_call_arguments(&mut self, call_id: String, delta: String) {
        let Some(a) = self.active.as_mut() else { return };
        let response_id = a.id.clone();
        let Some(call) = a.calls.iter_mut().find(|c| c.call_id == call_id) else { return };
        call.arguments.push_str(&delta);
        let event = ServerEvent::FunctionCallArgumentsDelta {
            response_id,
            item_id: call.item_id.clone(),
            output_index: call.output_index,
            call_id,
            delta,
        };
        self.emit(event);
    }

    fn on_llm_done(&mut self, usage: LlmUsage, hit_token_cap: bool) {
        let Some(a) = self.active.as_mut() else { return };
        a.llm_done = true;
        a.llm_job = None;
        a.llm_usage = usage;
        a.hit_cap = hit_token_cap;
        if let Some(m) = a.message.as_mut() {
            let first = m.nothing_spoken_yet();
            m.queue.extend(take_rest(&mut m.pending, first));
        }
        self.pump_tts();
        self.try_finish();
    }

    /// Starts synthesising the next queued phrase if none is being synthesised and the audio
    /// synthesised but not yet sent is under [`Limits::synthesis_ahead_ms`] (a long reply is
    /// synthesised as it is spoken, not all at once into memory).
    fn pump_tts(&mut self) {
        let ahead_limit = self.limits.synthesis_ahead_ms;
        let Some(m) = self.active.as_ref().and_then(|a| a.message.as_ref()) else { return };
        let unsent_ms: f64 = m.paced.iter().map(|p| if let Paced::Audio(_, ms) = p { *ms } else { 0.0 }).sum();
        if m.tts.is_some() || m.queue.is_empty() || unsent_ms >= ahead_limit {
            return;
        }
        let job = self.next_job();
        let Some(a) = self.active.as_mut() else { return };
        let voice = a.config.voice.clone();
        let Some(m) = a.message.as_mut() else { return };
        let Some(phrase) = m.queue.pop_front() else { return };
        m.tts = Some(TtsJob { job, phrase: phrase.clone(), started: false });
        self.outputs.push_back(Output::StartTts(job, TtsRequest { text: phrase, voice }));
    }

    fn on_tts(&mut self, job: JobId, event: TtsEvent) {
        let current = self.active.as_ref().and_then(|a| a.message.as_ref()).and_then(|m| m.tts.as_ref()).map(|t| t.job);
        if current != Some(job) {
            return;
        }
        match event {
            TtsEvent::Audio { sample_rate: 0, .. } => {
                let error = ProtocolError::server(code::ENGINE_ERROR, "Speech synthesis returned audio at 0 Hz.");
                self.close_response(ResponseStatus::Failed { error });
            }
            TtsEvent::Audio { samples, sample_rate } => self.on_tts_audio(samples, sample_rate),
            TtsEvent::Words(words) => {
                if let Some(p) = self.phrase_out() {
                    p.words = words;
                }
            }
            TtsEvent::Phones(phones) => {
                if let Some(p) = self.phrase_out() {
                    p.phones = phones;
                }
            }
            TtsEvent::Done => {
                self.end_tts_audio();
                if let Some(m) = self.active.as_mut().and_then(|a| a.message.as_mut()) {
                    m.tts = None;
                }
                self.pump_tts();
                self.try_finish();
            }
            TtsEvent::Failed(message) => {
                let error = ProtocolError::server(code::ENGINE_ERROR, format!("Speech synthesis failed: {message}"));
                self.close_response(ResponseStatus::Failed { error });
            }
        }
    }

    /// The marker of the phrase being synthesised, queued when its first timing or audio
    /// comes.
    fn phrase_out(&mut self) -> Option<&mut PhraseOut> {
        let m = self.active.as_mut()?.message.as_mut()?;
        let tts = m.tts.as_mut()?;
        if !tts.started {
            tts.started = true;
            m.paced.push_back(Paced::Phrase(PhraseOut { text: tts.phrase.clone(), ..PhraseOut::default() }));
        }
        m.paced.iter_mut().rev().find_map(|p| if let Paced::Phrase(p) = p { Some(p) } else { None })
    }

    /// Converts synthesised audio to the output rate and queues it for pacing.
    fn on_tts_audio(&mut self, samples: Vec<i16>, sample_rate: u32) {
        self.phrase_out();
        let Some(a) = self.active.as_mut() else { return };
        let out_rate = a.config.output_audio_format.sample_rate();
        let Some(m) = a.message.as_mut() else { return };
        if m.resampler.as_ref().is_none_or(|(rate, _)| *rate != sample_rate) {
            m.resampler = Some((sample_rate, Resampler::new(sample_rate, out_rate)));
        }
        let mut converted = Vec::with_capacity(samples.len());
        if let Some((_, r)) = m.resampler.as_mut() {
            r.process_i16(&samples, &mut converted);
        }
        self.queue_audio(converted);
    }

    /// The phrase's audio is complete: releases what the resampler held back for look-ahead.
    fn end_tts_audio(&mut self) {
        let Some(m) = self.active.as_mut().and_then(|a| a.message.as_mut()) else { return };
        let mut tail = Vec::new();
        if let Some((_, r)) = m.resampler.as_mut() {
            r.flush_i16(&mut tail);
        }
        self.queue_audio(tail);
    }

    /// Applies the volume, encodes audio at the output rate and queues it for pacing.
    fn queue_audio(&mut self, mut converted: Vec<i16>) {
        let delta_ms = self.limits.audio_delta_ms;
        let Some(a) = self.active.as_mut() else { return };
        let format = a.config.output_audio_format;
        let gain = a.config.voice.gain();
        let Some(m) = a.message.as_mut() else { return };
        if converted.is_empty() {
            return;
        }
        let out_rate = format.sample_rate();
        if gain < 1.0 {
            converted.iter_mut().for_each(|s| *s = (*s as f32 * gain) as i16);
        }
        // The phrase's segment spans all of its audio, sent or not, so a cut inside it keeps a
        // proportional share of its words.
        let synthesised = converted.len() as f64 * 1000.0 / out_rate as f64;
        match m.paced.iter_mut().rev().find_map(|p| if let Paced::Phrase(p) = p { Some(p) } else { None }) {
            Some(p) => p.duration_ms += synthesised,
            None => {
                if let Some(seg) = m.segments.last_mut() {
                    seg.duration_ms += synthesised;
                }
            }
        }
        let chunk = ((delta_ms * out_rate as f64 / 1000.0) as usize).max(1);
        for piece in converted.chunks(chunk) {
            let ms = piece.len() as f64 * 1000.0 / out_rate as f64;
            m.paced.push_back(Paced::Audio(piece.to_vec(), ms));
        }
    }

    /// Sends queued transcript and audio while the client's buffer is under the lead. A phrase
    /// with word timings releases each word (transcript delta, and timestamp when asked) as the
    /// audio that holds it goes out; a phrase without them releases its text before its audio.
    fn release_audio(&mut self, now: Instant) {
        let lead = self.limits.audio_lead_ms;
        let to_avatar = self.link == Link::Live;
        let Some(a) = self.active.as_mut() else { return };
        let timestamps = a.config.output_audio_timestamp_types.iter().any(|t| t == "word");
        let format = a.config.output_audio_format;
        // Over WebRTC the avatar plays the audio; the socket gets it only when asked to audit it.
        let audio_events = !to_avatar
            || a.config.avatar.as_ref().and_then(|v| v.get("output_audit_audio")).and_then(|v| v.as_bool())
                == Some(true);
        let response_id = a.id.clone();
        let Some(m) = a.message.as_mut() else { return };
        if m.paced.is_empty() && m.words.is_empty() {
            return;
        }
        let at = PartRef {
            response_id: response_id.clone(),
            item_id: m.item_id.clone(),
            output_index: m.output_index,
            content_index: 0,
        };
        if self.playback.as_ref().is_none_or(|p| p.item_id != m.item_id) {
            self.playback = Some(Playback::new(response_id, m.item_id.clone(), 0));
        }
        let Some(playback) = self.playback.as_mut() else { return };
        let mut events = Vec::new();
        let mut avatar = Vec::new();
        let say = |m: &mut MessageOut, text: &str, start_ms: f64, duration_ms: f64, events: &mut Vec<ServerEvent>| {
            let delta = if m.text.is_empty() { text.to_owned() } else { format!(" {text}") };
            m.text.push_str(&delta);
            m.segments.push(Segment { start_ms, duration_ms, text: text.to_owned() });
            events.push(ServerEvent::AudioTranscriptDelta { at: at.clone(), delta });
        };
        loop {
            // Words are due once the audio they start in goes out; when synthesis has finished
            // and everything is sent, the rest are due (a timing may end past the audio).
            let held = matches!(m.paced.front(), Some(Paced::Audio(..))) && playback.ahead_ms(now) >= lead;
            let sent_until = match m.paced.front() {
                Some(Paced::Audio(_, ms)) if !held => m.audio_ms + ms,
                None if m.tts.is_none() => f64::INFINITY,
                _ => m.audio_ms,
            };
            while m.words.front().is_some_and(|(start, _)| *start < sent_until) {
                let Some((start, w)) = m.words.pop_front() else { break };
                say(m, &w.text, start, w.duration_ms, &mut events);
                if timestamps {
                    events.push(ServerEvent::AudioTimestampDelta {
                        at: at.clone(),
                        audio_offset_ms: start.round() as u64,
                        audio_duration_ms: w.duration_ms.round() as u64,
                        text: w.text,
                    });
                }
            }
            match m.paced.front() {
                None => break,
                // A phrase starts with its audio: its timings may still be coming until then.
                Some(Paced::Phrase(_)) if m.paced.len() == 1 && m.tts.is_some() => break,
                Some(Paced::Phrase(_)) => {
                    let Some(Paced::Phrase(p)) = m.paced.pop_front() else { break };
                    if p.words.is_empty() {
                        say(m, &p.text, m.audio_ms, p.duration_ms, &mut events);
                    } else {
                        let base = m.audio_ms;
                        m.words.extend(p.words.iter().map(|w| (base + w.start_ms, w.clone())));
                    }
                    let end = p.phones.last().map_or(0.0, |l| l.start_ms + l.duration_ms);
                    if to_avatar {
                        avatar.push(AvatarCommand::Phrase { duration_ms: end, phones: p.phones.clone() });
                    }
                    if m.animation != AnimationOutputs::default() {
                        let seed = seed_of(&m.item_id);
                        let lipsync = m.lipsync.get_or_insert_with(|| LipSync::new(seed, 0.0));
                        lipsync.add_phrase(m.audio_ms, end, &p.phones);
                    }
                    continue;
                }
                Some(Paced::Audio(_, _)) if held => break,
                Some(Paced::Audio(..)) => {
                    let Some(Paced::Audio(pcm, ms)) = m.paced.pop_front() else { break };
                    m.audio_ms += ms;
                    playback.sent(ms, now);
                    if audio_events {
                        let delta = B64.encode(sample_format(format).encode(&pcm));
                        events.push(ServerEvent::AudioDelta { at: at.clone(), delta });
                    }
                    if to_avatar {
                        avatar.push(AvatarCommand::Audio { samples: pcm, sample_rate: format.sample_rate() });
                    }
                    if let Some(lipsync) = m.lipsync.as_mut() {
                        animate(lipsync, m.animation, m.audio_ms, &at, &mut events);
                    }
                }
            }
        }
        for e in events {
            self.emit(e);
        }
        self.outputs.extend(avatar.into_iter().map(Output::Avatar));
        self.pump_tts();
        self.try_finish();
    }

    fn try_finish(&mut self) {
        let Some(a) = self.active.as_ref() else { return };
        let speaking = a
            .message
            .as_ref()
            .is_some_and(|m| m.tts.is_some() || !m.queue.is_empty() || !m.paced.is_empty() || !m.words.is_empty());
        if a.llm_done && !speaking {
            let status = if a.hit_cap {
                ResponseStatus::Incomplete { reason: "max_output_tokens" }
            } else {
                ResponseStatus::Completed
            };
            self.close_response(status);
        }
    }

    /// Ends the active response with `status`: stops its jobs, closes its items and sends
    /// `response.done`.
    fn close_response(&mut self, status: ResponseStatus) {
        let Some(mut a) = self.active.take() else { return };
        if let Some(job) = a.llm_job.take() {
            self.outputs.push_back(Output::Cancel(job));
        }
        if let Some(tts) = a.message.as_mut().and_then(|m| m.tts.take()) {
            self.outputs.push_back(Output::Cancel(tts.job));
        }
        let item_status =
            if status == ResponseStatus::Completed { ItemStatus::Completed } else { ItemStatus::Incomplete };
        let mut output: Vec<(u32, Item)> = Vec::new();
        if let Some(m) = a.message.take() {
            let at = PartRef {
                response_id: a.id.clone(),
                item_id: m.item_id.clone(),
                output_index: m.output_index,
                content_index: 0,
            };
            let part = if m.audio {
                self.emit(ServerEvent::AudioDone { at: at.clone() });
                if m.animation.visemes {
                    self.emit(ServerEvent::AnimationVisemeDone { at: at.clone() });
                }
                if m.animation.blendshapes {
                    self.emit(ServerEvent::AnimationBlendshapesDone { at: at.clone() });
                }
                if a.config.output_audio_timestamp_types.iter().any(|t| t == "word") {
                    self.emit(ServerEvent::AudioTimestampDone { at: at.clone() });
                }
                self.emit(ServerEvent::AudioTranscriptDone { at: at.clone(), transcript: m.text.clone() });
                Content::Audio { transcript: m.text.clone() }
            } else {
                self.emit(ServerEvent::TextDone { at: at.clone(), text: m.text.clone() });
                Content::Text(m.text.clone())
            };
            self.emit(ServerEvent::ContentPartDone { at, part: part.clone() });
            let item = Item::message(m.item_id.clone(), Role::Assistant, vec![part], item_status);
            if let Some(mut entry) = self.conversation.get_mut(&m.item_id) {
                entry.item = item.clone();
                entry.audio_ms = m.audio_ms;
                entry.segments = m.segments;
            }
            output.push((m.output_index, item));
        }
        for call in std::mem::take(&mut a.calls) {
            self.emit(ServerEvent::FunctionCallArgumentsDone {
                response_id: a.id.clone(),
                item_id: call.item_id.clone(),
                output_index: call.output_index,
                call_id: call.call_id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
            });
            let item = Item {
                id: call.item_id.clone(),
                status: item_status,
                body: ItemBody::FunctionCall { call_id: call.call_id, name: call.name, arguments: call.arguments },
            };
            if let Some(mut entry) = self.conversation.get_mut(&call.item_id) {
                entry.item = item.clone();
            }
            output.push((call.output_index, item));
        }
        output.sort_by_key(|(i, _)| *i);
        for (output_index, item) in &output {
            self.emit(ServerEvent::OutputItemDone {
                response_id: a.id.clone(),
                output_index: *output_index,
                item: item.clone(),
            });
            if a.in_conversation && self.conversation.contains(&item.id) {
                let previous_item_id = self.conversation.previous_id(&item.id);
                self.emit(ServerEvent::ItemDone { previous_item_id, item: item.clone() });
            }
        }
        let usage = self.usage(&a, &output);
        let response = self.response_object(&a, status, output.into_iter().map(|(_, i)| i).collect(), Some(usage));
        self.emit(ServerEvent::ResponseDone(Box::new(response)));
    }

    fn usage(&self, a: &Active, output: &[(u32, Item)]) -> Usage {
        let audio_out_ms: f64 =
            output.iter().filter_map(|(_, i)| self.conversation.get(&i.id)).map(|e| e.audio_ms).sum();
        let input_audio_seconds: f64 = self
            .conversation
            .entries()
            .filter(|e| e.item.role() == Some(Role::User))
            .map(|e| e.audio_ms / 1000.0)
            .sum();
        Usage {
            input_text_tokens: a.llm_usage.input_tokens,
            input_audio_tokens: (input_audio_seconds * AUDIO_IN_TOKENS_PER_S) as u64,
            cached_tokens: a.llm_usage.cached_tokens,
            output_text_tokens: a.llm_usage.output_tokens,
            output_audio_tokens: (audio_out_ms / 1000.0 * AUDIO_OUT_TOKENS_PER_S).round() as u64,
        }
    }
}

/// How samples of a wire format are laid out in bytes.
/// A seed for an avatar's idle motion from a name (FNV-1a): the same name, the same motion.
fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn sample_format(format: AudioFormat) -> SampleFormat {
    match format {
        AudioFormat::Pcm16 { .. } => SampleFormat::Pcm16,
        AudioFormat::G711Ulaw => SampleFormat::Ulaw,
        AudioFormat::G711Alaw => SampleFormat::Alaw,
    }
}

/// Cuts an assistant item's audio (and transcript) at `end_ms`.
fn cut_audio(entry: &mut Entry, end_ms: f64) {
    let transcript = transcript_until(&entry.segments, end_ms);
    entry.audio_ms = end_ms.min(entry.audio_ms);
    entry.segments.retain(|s| s.start_ms < end_ms);
    if let Some(last) = entry.segments.last_mut() {
        last.duration_ms = last.duration_ms.min(end_ms - last.start_ms);
    }
    if let ItemBody::Message { content, .. } = &mut entry.item.body {
        for part in content.iter_mut() {
            if let Content::Audio { transcript: t } = part {
                *t = transcript.clone();
            }
        }
    }
    entry.item.status = ItemStatus::Incomplete;
}

/// Whether two words of successive previews are the same word (case and punctuation aside).
fn same_word(a: &str, b: &str) -> bool {
    let key = |w: &str| w.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    key(a) == key(b)
}

fn set_user_transcript(item: &mut Item, transcript: &str) {
    if let ItemBody::Message { content, .. } = &mut item.body {
        for part in content.iter_mut() {
            if let Content::InputAudio { transcript: t, .. } = part {
                *t = Some(transcript.to_owned());
            }
        }
    }
}

/// The lip-sync of the audio sent up to `audio_ms` (on the item's audio clock) as the events
/// the session asked for: viseme changes, and blendshape frames at 60 fps.
fn animate(
    lipsync: &mut LipSync,
    outputs: AnimationOutputs,
    audio_ms: f64,
    at: &PartRef,
    events: &mut Vec<ServerEvent>,
) {
    lipsync.extend_audio(audio_ms);
    let visemes = lipsync.take_visemes(audio_ms);
    if outputs.visemes {
        events.extend(visemes.into_iter().map(|v| ServerEvent::AnimationVisemeDelta {
            at: at.clone(),
            audio_offset_ms: v.audio_offset_ms,
            viseme_id: v.viseme_id,
        }));
    }
    let (frame_index, frames) = lipsync.take_frames(audio_ms);
    if outputs.blendshapes && !frames.is_empty() {
        let frames = frames.iter().map(|f| f.to_vec()).collect();
        events.push(ServerEvent::AnimationBlendshapesDelta { at: at.clone(), frame_index, frames });
    }
}
