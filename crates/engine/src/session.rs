//! [`Session`]: one conversation's state machine — the router over its parts.
//!
//! Each part owns its state and reports what happened: the [`Listener`] (input audio, turn
//! detection, transcriptions), the active [`Response`] (model rounds, calls, server-side
//! tools, and its [`Speech`](crate::speaker::Speech)), the [`AvatarState`] and [`Flood`]
//! control. The session owns the configuration, the conversation and the client's
//! [`Playback`], and applies the rules that cut across parts: barge-in (speech stops the
//! response and cuts what was played), the automatic response at the end of a turn, the
//! language model's head start on what the user is saying, and the one path every job is
//! cancelled through ([`Session::close_response`]).

use crate::avatar_state::AvatarState;
use crate::conversation::{Conversation, Entry, Position, not_found};
use crate::flood::{Admit, Flood};
use crate::lifetime::Lifetime;
use crate::listener::{Heard, Listener};
use crate::out::Out;
use crate::playback::{Playback, transcript_until};
use crate::responder::{Ctx, Response, Step};
use crate::timers::{Timer, Timers};
use crate::turn::TurnEvent;
use crate::{Input, Limits, Output};
use brazen_audio::Vad;
use brazen_avatar::character::Catalog;
use brazen_protocol::error::code;
use brazen_protocol::read::Field;
use brazen_protocol::{
    ClientEvent, Content, ConversationMode, Item, ItemBody, ItemStatus, ProtocolError, ResponseOptions, ResponseStatus,
    Role, ServerEvent, SessionConfig, SessionPatch,
};
use brazen_providers::{LlmRequest, ToolSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An answer with less than this left to play is ending: speech then is a turn, not a
/// backchannel ([`Session::assistant_speaking`]).
const SPEAKING_TAIL: Duration = Duration::from_millis(500);

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
    pub avatars: Arc<Catalog>,
    /// The ICE servers a client's avatar connection should use (`stun:`/`turn:` entries as
    /// `session.updated` lists them), given to sessions whose avatar names none.
    pub ice_servers: Vec<serde_json::Value>,
    /// The tools that run inside brazen, offered to the model beside the client's (a client
    /// tool of the same name replaces one); their calls come out as [`Output::StartTool`].
    pub tools: Arc<Vec<ToolSpec>>,
    /// What the configuration starts as before the client changes it (an agent's
    /// instructions, voice, turn detection, …; a client secret's session), applied in order
    /// over the protocol's defaults.
    pub defaults: Vec<Arc<SessionPatch>>,
    /// The conversation so far, when the session continues a stored one (Voice Live's
    /// `conversation-id`): its items are added first, each announced as the client's own would
    /// be (`conversation.item.created`).
    pub history: Vec<Item>,
    /// The language model computes a prompt ahead ([`brazen_providers::Llm::computes_ahead`]):
    /// with semantic turn detection the user's words are previewed while they speak for it
    /// ([`Output::PrepareLlm`]), not only at pauses.
    pub llm_computes_ahead: bool,
}

/// One Realtime session: configuration, conversation, input audio, turn detection, responses.
///
/// Drive it with [`Session::handle`] and drain [`Session::poll_output`] after every call.
pub struct Session {
    config: SessionConfig,
    conversation_id: String,
    limits: Limits,
    tools: Arc<Vec<ToolSpec>>,
    conversation: Conversation,
    listener: Listener,
    /// The response in progress (boxed: an idle session holds only the pointer).
    active: Option<Box<Response>>,
    playback: Option<Playback>,
    avatar: AvatarState,
    flood: Flood,
    lifetime: Lifetime,
    timers: Timers,
    out: Out,
}

impl Session {
    /// A new session; `session.created` (and `conversation.created`) are ready to poll.
    pub fn new(options: SessionOptions, now: Instant) -> Self {
        let SessionOptions {
            session_id,
            model,
            vad,
            limits,
            avatars,
            ice_servers,
            tools,
            defaults,
            history,
            llm_computes_ahead,
        } = options;
        let tag: String = session_id.trim_start_matches("sess_").chars().take(12).collect();
        let mut config = SessionConfig::new(session_id, model);
        for patch in defaults {
            config.apply((*patch).clone());
        }
        let mut listener = Listener::new(vad, config.input_audio_format.sample_rate(), llm_computes_ahead);
        listener.follow_input_processing(&config);
        let mut session = Session {
            conversation_id: format!("conv_{tag}"),
            config,
            limits,
            tools,
            conversation: Conversation::default(),
            listener,
            active: None,
            playback: None,
            avatar: AvatarState::new(avatars, ice_servers),
            flood: Flood::new(&limits, now),
            lifetime: Lifetime::new(&limits, now),
            timers: Timers::default(),
            out: Out::new(tag),
        };
        session.out.emit(ServerEvent::SessionCreated(Box::new(session.config.clone())));
        let conversation_id = session.conversation_id.clone();
        session.out.emit(ServerEvent::ConversationCreated { conversation_id });
        for item in history {
            if let Err(e) = session.create_item(None, Some(item.id), item.body) {
                session.out.error(e);
            }
        }
        session.set_timers();
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

    /// The conversation item `id`, as it stands.
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.conversation.get(id).map(|e| &e.item)
    }

    /// The conversation's items, oldest first.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.conversation.entries().map(|e| &e.item)
    }

    /// The next thing to do, if any. Drain it after every [`Session::handle`].
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop()
    }

    /// When the session next needs an [`Input::Tick`]: the earliest of its timers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Handles one input at time `now`. Once the session has ended ([`Output::Close`]), input
    /// is ignored.
    pub fn handle(&mut self, input: Input, now: Instant) {
        if self.lifetime.ended().is_some() {
            return;
        }
        match input {
            Input::Client(msg) => {
                if !matches!(msg.event, ClientEvent::InputAudioAppend { .. }) {
                    self.lifetime.touch(now);
                }
                if self.admit(now) {
                    let event_id = msg.event_id.clone();
                    if let Err(e) = self.on_client(msg.event, now) {
                        self.out.error(e.with_event_id(event_id.as_deref()));
                    }
                }
            }
            Input::Invalid(e) => {
                if self.admit(now) {
                    self.out.error(e);
                }
            }
            Input::Asr(job, event) => {
                let speaking = self.assistant_speaking(now);
                let (config, conversation, out) = (&self.config, &mut self.conversation, &mut self.out);
                let heard = self.listener.on_asr(job, event, config, conversation, speaking, out);
                let confirmed = self.interrupt_if_confirmed(now);
                self.on_heard(heard);
                if let Err(e) = self.end_turn_if_due(now, confirmed) {
                    self.out.error(e);
                }
            }
            Input::Turn(job, verdict) => {
                if self.listener.on_turn(job, verdict, &self.config, &mut self.out)
                    && let Err(e) = self.end_turn_if_due(now, false)
                {
                    self.out.error(e);
                }
            }
            Input::Llm(job, event) => {
                let mut ctx = Ctx { conversation: &mut self.conversation, out: &mut self.out, limits: &self.limits };
                if let Some(a) = self.active.as_deref_mut()
                    && let Step::Fail(error) = a.on_llm(job, event, now, &mut ctx)
                {
                    self.close_response(ResponseStatus::Failed { error });
                }
            }
            Input::Tts(job, event) => {
                if let Some(speech) =
                    self.active.as_deref_mut().filter(|a| a.owns_tts(job)).and_then(Response::speech_mut)
                    && let Err(error) = speech.on_tts(event, &self.limits, &mut self.out)
                {
                    self.close_response(ResponseStatus::Failed { error });
                }
            }
            Input::Tool(job, event) => {
                let mut ctx = Ctx { conversation: &mut self.conversation, out: &mut self.out, limits: &self.limits };
                if let Some(a) = self.active.as_deref_mut() {
                    a.on_tool(job, event, &mut ctx);
                }
            }
            Input::Avatar(event) => {
                let turn_id = self.playback.as_ref().map(|p| p.response_id.clone());
                self.avatar.on_event(event, &self.config, turn_id, &mut self.out);
            }
            Input::Tick => {
                let mut ctx = Ctx { conversation: &mut self.conversation, out: &mut self.out, limits: &self.limits };
                if let Some(a) = self.active.as_deref_mut() {
                    a.on_tick(now, &mut ctx);
                }
            }
            Input::Shutdown { deadline } => self.lifetime.drain(deadline),
        }
        self.release_audio(now);
        self.end_if_due(now);
        self.set_timers();
    }

    /// Ends the session if its lifetime says so (see [`Lifetime`]): the response in progress
    /// is cancelled, the client is told why, and the transport is closed.
    fn end_if_due(&mut self, now: Instant) {
        if self.assistant_speaking(now) || self.listener.hears_speech() {
            self.lifetime.touch(now);
        }
        let out = &mut self.out;
        let Some(end) = self.lifetime.poll(now, self.active.is_some(), &mut |event| out.emit(event)) else { return };
        self.close_response(ResponseStatus::Cancelled { reason: "session_ended" });
        self.out.error(Lifetime::error(end, &self.limits));
        self.out.push(Output::Close(end));
    }

    /// Flood control: whether to accept one more client event.
    fn admit(&mut self, now: Instant) -> bool {
        match self.flood.admit(now) {
            Admit::Yes => true,
            Admit::Drop => false,
            Admit::DropWithError(e) => {
                self.out.error(e);
                false
            }
        }
    }

    fn on_client(&mut self, event: ClientEvent, now: Instant) -> Result<(), ProtocolError> {
        match event {
            ClientEvent::SessionUpdate(patch) => self.update_session(*patch),
            ClientEvent::InputAudioAppend { audio } => self.append_audio(&audio, now),
            ClientEvent::InputAudioCommit => {
                let committed = self.listener.commit_manually(&self.config, &mut self.conversation, &mut self.out);
                self.interrupt_if_confirmed(now);
                committed
            }
            ClientEvent::InputAudioClear => {
                self.listener.clear(&mut self.out);
                self.out.emit(ServerEvent::InputAudioCleared);
                Ok(())
            }
            ClientEvent::ItemCreate { previous_item_id, id, body } => self.create_item(previous_item_id, id, body),
            ClientEvent::ItemRetrieve { item_id } => {
                let entry = self.conversation.get(&item_id).ok_or_else(|| not_found(&item_id, "item_id"))?;
                let item = entry.item.clone();
                self.out.emit(ServerEvent::ItemRetrieved { item });
                Ok(())
            }
            ClientEvent::ItemTruncate { item_id, content_index, audio_end_ms } => {
                self.truncate(&item_id, content_index, audio_end_ms as f64)
            }
            ClientEvent::ItemDelete { item_id } => {
                self.conversation.remove(&item_id).ok_or_else(|| not_found(&item_id, "item_id"))?;
                self.out.emit(ServerEvent::ItemDeleted { item_id });
                Ok(())
            }
            ClientEvent::ResponseCreate(options) => self.create_response(*options, now),
            ClientEvent::ResponseCancel { response_id } => {
                let active_id = self.active.as_deref().map(|a| a.id().to_owned());
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
                self.avatar.clear(&mut self.out);
                self.out.emit(ServerEvent::OutputAudioCleared { response_id });
                Ok(())
            }
            ClientEvent::AvatarConnect { client_sdp } => self.avatar.connect(&self.config, &client_sdp, &mut self.out),
        }
    }

    fn update_session(&mut self, patch: SessionPatch) -> Result<(), ProtocolError> {
        self.limits.check_patch(&patch, "session")?;
        let unacted = not_acted_on(&patch);
        if let Field::Set(avatar) = &patch.avatar {
            self.avatar.check(avatar)?;
        }
        let before = (self.config.input_audio_format, self.config.turn_detection.is_some());
        let prompt_before = (self.config.instructions.clone(), self.config.tools.clone());
        self.config.apply(patch);
        let after = (self.config.input_audio_format, self.config.turn_detection.is_some());
        self.avatar.complete(&mut self.config, &mut self.out);
        if before.0 != after.0 {
            self.listener.set_rate(self.config.input_audio_format.sample_rate(), &mut self.out);
        } else if before.1 != after.1 {
            self.listener.clear(&mut self.out);
        }
        self.listener.follow_input_processing(&self.config);
        self.out.emit(ServerEvent::SessionUpdated(Box::new(self.config.clone())));
        for message in unacted {
            self.out.emit(ServerEvent::Warning { code: "option_not_applied", message });
        }
        self.avatar.follow(&self.config, &mut self.out);
        if prompt_before != (self.config.instructions.clone(), self.config.tools.clone()) {
            self.prepare_llm(None);
        }
        Ok(())
    }

    /// Asks the language model to compute ahead the prompt of the conversation as it is, with
    /// `heard` as the user's next words when they are still speaking.
    fn prepare_llm(&mut self, heard: Option<String>) {
        let request = self.request_with(heard);
        self.out.push(Output::PrepareLlm(request));
    }

    /// Whether turns end by what was said ([`crate::end_of_turn`]).
    fn semantic(&self) -> bool {
        self.config.turn_detection.as_ref().and_then(crate::end_of_turn::Waits::of).is_some()
    }

    /// A request for the conversation as it is, with `heard` as the user's next words.
    fn request_with(&self, heard: Option<String>) -> LlmRequest {
        let mut items = self.conversation.items();
        if let Some(text) = heard {
            items.push(Item::message("preview", Role::User, vec![Content::InputText(text)], ItemStatus::Completed));
        }
        let mut request = LlmRequest::new(&self.config, items);
        crate::responder::offer_tools(&mut request, &self.tools);
        request
    }

    /// What the listener heard, for the rules that cut across parts.
    fn on_heard(&mut self, heard: Heard) {
        match heard {
            Heard::Nothing => {}
            // The model's head start on what the user is saying: the reply (and, with semantic
            // detection, a pause's judgement) then computes only the words since (the model
            // stops between two blocks of a pass when speech is being recognised).
            Heard::Preview(text) if self.active.is_none() => self.prepare_llm(Some(text)),
            Heard::Preview(_) => {}
            // The words of a pause being judged: the language model judges them first (it
            // computes the same prefix the prompt ahead then reuses).
            Heard::PauseWords(text) => {
                let job = self.out.next_job();
                self.listener.judge_words(job, &self.config);
                let request = self.request_with(Some(text.clone()));
                self.out.push(Output::StartLlmTurnCheck(job, request));
                if self.active.is_none() {
                    self.prepare_llm(Some(text));
                }
            }
            // A response that waited for the transcripts starts.
            Heard::Transcribed => {
                if !self.listener.is_transcribing() && self.active.as_deref().is_some_and(Response::is_waiting_for_asr)
                {
                    self.start_llm();
                }
            }
        }
    }

    fn append_audio(&mut self, bytes: &[u8], now: Instant) -> Result<(), ProtocolError> {
        let samples = self.listener.decode(&self.config, bytes, "audio")?;
        let events = self.listener.append(&self.limits, &self.config, &samples, now)?;
        for event in events {
            self.on_turn_event(event, now)?;
        }
        let speaking = self.assistant_speaking(now);
        self.listener.follow_held(&self.config, speaking, &mut self.out);
        let confirmed = self.interrupt_if_confirmed(now);
        self.listener.preview(&self.config, &mut self.out);
        if let Some(words) = self.listener.judge(&self.config, &mut self.out) {
            self.on_heard(Heard::PauseWords(words));
        }
        self.end_turn_if_due(now, confirmed)
    }

    /// What turn detection found: a turn begins (and may barge in) or ends (and may be
    /// answered).
    fn on_turn_event(&mut self, event: TurnEvent, now: Instant) -> Result<(), ProtocolError> {
        let detection = self.config.turn_detection.clone();
        match event {
            TurnEvent::SpeechStarted { audio_start_ms } => {
                let hold = self.ignores_fillers() && self.assistant_speaking(now);
                self.listener.speech_started(audio_start_ms, hold, &mut self.out);
                if !hold && detection.as_ref().is_some_and(|t| t.interrupt_response) {
                    self.barge_in(now);
                }
            }
            TurnEvent::SpeechStopped { audio_end_ms, speech_end_ms, turn_start_ms } => {
                let at = (audio_end_ms, speech_end_ms, turn_start_ms);
                let speaking = self.assistant_speaking(now);
                let (config, conversation, out) = (&self.config, &mut self.conversation, &mut self.out);
                let stopped = self.listener.speech_stopped(at, config, speaking, conversation, out);
                self.interrupt_if_confirmed(now);
                if stopped? && detection.as_ref().is_some_and(|t| t.create_response) && self.active.is_none() {
                    self.create_response(ResponseOptions::default(), now)?;
                }
            }
        }
        Ok(())
    }

    /// Whether fillers and backchannels are ignored while the assistant speaks
    /// (`turn_detection.remove_filler_words`, [`crate::backchannel`]).
    fn ignores_fillers(&self) -> bool {
        let detection = self.config.turn_detection.as_ref();
        detection.is_some_and(|t| t.extra.get("remove_filler_words").and_then(|v| v.as_bool()) == Some(true))
    }

    /// Whether the assistant is answering at `now`: its response is in progress (thinking, or
    /// sending audio a little ahead of the client's playback), or its audio has more than
    /// [`SPEAKING_TAIL`] left to play. Speech beginning then may be a backchannel; a filler
    /// said as the answer ends ("Yes." to "Shall I book it?") is a turn.
    fn assistant_speaking(&self, now: Instant) -> bool {
        self.active.is_some() || self.playback.as_ref().is_some_and(|p| p.is_playing(now + SPEAKING_TAIL))
    }

    /// Speech held back as a possible backchannel turned out to be more: it interrupts now.
    /// Returns whether it was announced.
    fn interrupt_if_confirmed(&mut self, now: Instant) -> bool {
        let confirmed = self.listener.take_confirmed();
        if confirmed && self.config.turn_detection.as_ref().is_some_and(|t| t.interrupt_response) {
            self.barge_in(now);
        }
        confirmed
    }

    /// A verdict or the pause's words came between two pieces of audio (semantic detection), or
    /// speech held back as a possible backchannel was just announced (`confirmed`), and the
    /// pause has already lasted the silence that ends it: the turn ends now.
    fn end_turn_if_due(&mut self, now: Instant, confirmed: bool) -> Result<(), ProtocolError> {
        if !(confirmed || self.semantic()) {
            return Ok(());
        }
        match self.listener.end_if_due(&self.config) {
            Some(event) => self.on_turn_event(event, now),
            None => Ok(()),
        }
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
                self.out.emit(ServerEvent::ItemTruncated {
                    item_id: playback.item_id.clone(),
                    content_index: playback.content_index,
                    audio_end_ms: played as u64,
                });
            }
        }
        if self.config.avatar.is_some() {
            self.avatar.clear(&mut self.out);
            self.out.emit(ServerEvent::OutputAudioCleared { response_id: Some(playback.response_id) });
        }
    }

    fn create_item(
        &mut self,
        previous_item_id: Option<String>,
        id: Option<String>,
        mut body: ItemBody,
    ) -> Result<(), ProtocolError> {
        self.limits.check_item(&body)?;
        let adding = crate::conversation::item_bytes(&Item {
            id: String::new(),
            status: ItemStatus::Completed,
            body: body.clone(),
        });
        self.limits.check_room(self.conversation.bytes(), adding)?;
        // Audio sent inside the item is transcribed like committed audio.
        let mut audio = None;
        if let ItemBody::Message { content, .. } = &mut body {
            for (i, part) in content.iter_mut().enumerate() {
                if let Content::InputAudio { audio: inline @ Some(_), transcript: None } = part {
                    let bytes = inline.take().unwrap_or_default();
                    let param = format!("item.content[{i}].audio");
                    let samples = self.listener.decode(&self.config, &bytes, &param)?;
                    self.listener.check_held(&self.limits, samples.len(), &param)?;
                    audio = Some(samples);
                }
            }
        }
        let id = match id {
            Some(id) => id,
            None => self.out.next_id("item"),
        };
        let item = Item { id: id.clone(), status: ItemStatus::Completed, body };
        let at = Position::from_previous(previous_item_id.as_deref());
        let rate = self.listener.rate();
        let mut entry = Entry::new(item.clone());
        entry.audio_ms = audio.as_ref().map_or(0.0, |s| s.len() as f64 * 1000.0 / rate as f64);
        let previous = self.conversation.insert(at, entry)?;
        self.out.announce(previous, item);
        if let Some(samples) = audio {
            self.listener.transcribe(id, samples, rate, String::new(), &self.config, &mut self.out);
        }
        Ok(())
    }

    fn truncate(&mut self, item_id: &str, content_index: u64, audio_end_ms: f64) -> Result<(), ProtocolError> {
        if self.active.as_deref().and_then(Response::message_item) == Some(item_id) {
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
        self.out.emit(ServerEvent::ItemTruncated {
            item_id: item_id.to_owned(),
            content_index: content_index as u32,
            audio_end_ms: audio_end_ms as u64,
        });
        Ok(())
    }

    fn create_response(&mut self, options: ResponseOptions, now: Instant) -> Result<(), ProtocolError> {
        if self.lifetime.draining() {
            return Err(ProtocolError::server(
                code::SERVER_SHUTTING_DOWN,
                "The server is shutting down and starts no new responses; reconnect to continue.",
            ));
        }
        if let Some(active) = &self.active {
            return Err(ProtocolError::invalid(
                code::ACTIVE_RESPONSE,
                format!("Conversation already has an active response in progress: {}.", active.id()),
            ));
        }
        self.limits.check_patch(&options.overrides, "response")?;
        if let Some(text) = &options.pre_generated_text {
            self.limits.check_text(text, "response.pre_generated_assistant_message")?;
        }
        let in_conversation = options.conversation == ConversationMode::Auto;
        if in_conversation {
            // The reply joins the conversation: there must be room for it.
            let adding = options.pre_generated_text.as_ref().map_or(0, String::len);
            self.limits.check_room(self.conversation.bytes(), adding)?;
        }
        let mut config = self.config.clone();
        config.apply(options.overrides);
        let id = self.out.next_id("resp");
        let response = Response::new(id, config, self.tools.clone(), in_conversation, options.metadata, now);
        let object = response.object(ResponseStatus::InProgress, Vec::new(), None, &self.conversation_id);
        self.out.emit(ServerEvent::ResponseCreated(Box::new(object)));
        let mut response = response;
        let mut ctx = Ctx { conversation: &mut self.conversation, out: &mut self.out, limits: &self.limits };
        if let Some(text) = options.pre_generated_text {
            response.write_all(text, &mut ctx);
        } else if self.listener.is_transcribing() {
            response.wait_for_asr();
        } else {
            response.start_llm(&mut ctx);
        }
        self.active = Some(Box::new(response));
        Ok(())
    }

    fn start_llm(&mut self) {
        let mut ctx = Ctx { conversation: &mut self.conversation, out: &mut self.out, limits: &self.limits };
        if let Some(a) = self.active.as_deref_mut() {
            a.start_llm(&mut ctx);
        }
    }

    /// Sends the active response's paced audio that is due, then ends the response if nothing
    /// is left to do.
    fn release_audio(&mut self, now: Instant) {
        let to_avatar = self.avatar.is_live();
        if let Some(speech) = self.active.as_deref_mut().and_then(Response::speech_mut) {
            let echo = self.listener.echo_mut();
            speech.release(now, &mut self.playback, to_avatar, echo, &self.limits, &mut self.out);
        }
        if let Some(status) = self.active.as_deref().and_then(Response::finished) {
            self.close_response(status);
        }
    }

    /// Sets the timers from the parts' deadlines.
    fn set_timers(&mut self) {
        let active = self.active.as_deref();
        self.timers.set(Timer::PacedAudio, active.and_then(|a| a.audio_due(self.playback.as_ref(), &self.limits)));
        self.timers.set(Timer::ToolDeadline, active.and_then(Response::tool_deadline));
        self.timers.set(Timer::Interim, active.and_then(Response::interim_deadline));
        self.timers.set(Timer::Lifetime, self.lifetime.deadline());
    }

    /// Ends the active response with `status`: the one path every response's jobs (model,
    /// synthesis, tools) are cancelled through.
    fn close_response(&mut self, status: ResponseStatus) {
        let Some(response) = self.active.take() else { return };
        // An answer given: the user speaks next, so the model computes the conversation so far
        // as the answer ends, and judges their first pause from their words alone.
        let answered = status == ResponseStatus::Completed && response.answers_in_conversation();
        let mut ctx = Ctx { conversation: &mut self.conversation, out: &mut self.out, limits: &self.limits };
        (*response).close(status, &self.conversation_id, &mut ctx);
        if answered {
            self.prepare_llm(None);
        }
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

/// The options of `patch` brazen accepts and echoes but does not act on yet, each said in a
/// sentence for a `warning` event (so a client never believes an option it set is working).
fn not_acted_on(patch: &SessionPatch) -> Vec<String> {
    let mut unacted = Vec::new();
    for (key, value) in &patch.extra {
        let Field::Set(value) = value else { continue };
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "input_audio_echo_cancellation"
                if value.get("type").and_then(|t| t.as_str()) != Some("server_echo_cancellation") =>
            {
                unacted.push(format!(
                    "input_audio_echo_cancellation type {} is not server_echo_cancellation: the assistant's voice is removed from the microphone audio as for server_echo_cancellation.",
                    value.get("type").unwrap_or(&serde_json::Value::Null)
                ))
            }
            "input_audio_noise_reduction"
                if !value.get("type").and_then(|t| t.as_str()).is_some_and(|t| {
                    matches!(t, "azure_deep_noise_suppression" | "near_field" | "far_field")
                }) =>
            {
                unacted.push(format!(
                    "input_audio_noise_reduction type {} is not one of azure_deep_noise_suppression, near_field, far_field: noise is suppressed as for near_field.",
                    value.get("type").unwrap_or(&serde_json::Value::Null)
                ))
            }
            _ => {}
        }
    }
    if let Field::Set(detection) = &patch.turn_detection
        && detection.kind == "semantic_vad"
        && let Some(eagerness) = detection.extra.get("eagerness")
        && !eagerness.as_str().is_some_and(|e| matches!(e, "auto" | "low" | "medium" | "high"))
    {
        unacted
            .push(format!("turn_detection.eagerness {eagerness} is not one of auto, low, medium, high: auto is used."));
    }
    unacted
}
