//! [`Response`]: one response in progress — its language-model rounds, the message it writes
//! (spoken by a [`Speech`] when it has audio), the function calls it makes, the server-side
//! tools it runs between rounds, and its closing events with usage.
//!
//! A call of a tool the client declared is a response output item, answered by the client
//! after `response.done`. A call of a server-side tool (one of the session's
//! [`ToolSpec`]s that the client did not redeclare) runs inside brazen: the call and its output
//! become ordinary `function_call` / `function_call_output` conversation items (never output
//! items, so no client is asked to answer them), and the model then continues in the same
//! response, up to [`MAX_TOOL_ROUNDS`] rounds.

use crate::conversation::{Conversation, Entry, Position};
use crate::interim::{Fire, Interim};
use crate::out::Out;
use crate::playback::Playback;
use crate::speaker::{Speech, Voicing};
use crate::{JobId, Limits, Output};
use brazen_protocol::error::code;
use brazen_protocol::{
    Content, Item, ItemBody, ItemStatus, PartRef, ProtocolError, Response as ResponseObject, ResponseStatus, Role,
    ServerEvent, SessionConfig, ToolChoice, Usage,
};
use brazen_providers::{LlmEvent, LlmRequest, LlmUsage, ToolCall, ToolEvent, ToolSpec, schema};
use std::sync::Arc;
use std::time::Instant;

/// Output tokens per second of assistant audio, and input tokens per second of user audio, as
/// the Realtime API counts them.
const AUDIO_OUT_TOKENS_PER_S: f64 = 20.0;
const AUDIO_IN_TOKENS_PER_S: f64 = 10.0;
/// Most model rounds one response may take with server-side tools; the last is asked to answer
/// without tools.
pub const MAX_TOOL_ROUNDS: u32 = 8;

/// Offers the model the server-side `tools` beside the client's (a client tool of the same name
/// replaces one).
pub fn offer_tools(request: &mut LlmRequest, tools: &[ToolSpec]) {
    let declared: Vec<String> = request.tools.iter().map(|t| t.name.clone()).collect();
    request.tools.extend(tools.iter().filter(|t| !declared.contains(&t.definition.name)).map(|t| t.definition.clone()));
}

/// The session's pieces a response works on.
pub(crate) struct Ctx<'a> {
    /// The conversation.
    pub conversation: &'a mut Conversation,
    /// The output queue.
    pub out: &'a mut Out,
    /// The limits.
    pub limits: &'a Limits,
}

/// The assistant message a response writes.
struct MessageOut {
    item_id: String,
    output_index: u32,
    /// The text written (text modality).
    text: String,
    /// Its speech (audio modality).
    speech: Option<Speech>,
}

/// A call of a tool the client declared: an output item of the response.
struct CallOut {
    item_id: String,
    output_index: u32,
    call_id: String,
    name: String,
    arguments: String,
}

/// A call of a server-side tool in the current round.
struct ServerCall {
    call_id: String,
    name: String,
    arguments: String,
    /// Its job once it runs, and when it runs out of time.
    job: Option<(JobId, Instant)>,
}

/// How a response ends when nothing stops it first.
pub(crate) enum Step {
    /// It goes on.
    Continue,
    /// It failed.
    Fail(ProtocolError),
}

/// A response in progress.
pub(crate) struct Response {
    id: String,
    config: SessionConfig,
    tools: Arc<Vec<ToolSpec>>,
    in_conversation: bool,
    metadata: Option<serde_json::Value>,
    llm_job: Option<JobId>,
    /// It waits for transcriptions before its first round.
    waiting_for_asr: bool,
    /// The model has finished for good.
    llm_done: bool,
    hit_cap: bool,
    usage: LlmUsage,
    message: Option<MessageOut>,
    calls: Vec<CallOut>,
    server_calls: Vec<ServerCall>,
    /// Model rounds started.
    rounds: u32,
    /// A round after tools ran has written no text yet (its first text is set apart from the
    /// message's earlier text).
    new_round: bool,
    /// The calls and outputs of server-side tools of an out-of-band response (which are not in
    /// the conversation), for its next rounds.
    own_items: Vec<Item>,
    next_output_index: u32,
    /// The line it says while a tool runs or the model is slow (spoken responses with
    /// `interim_response` set).
    interim: Option<Interim>,
}

impl Response {
    /// A new response `id` with `config` (the session's, with the response's overrides).
    pub(crate) fn new(
        id: String,
        config: SessionConfig,
        tools: Arc<Vec<ToolSpec>>,
        in_conversation: bool,
        metadata: Option<serde_json::Value>,
        now: Instant,
    ) -> Self {
        let pick = id.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
        let interim = config.interim_response().filter(|_| config.has_audio()).map(|c| Interim::new(c, pick, now));
        Response {
            interim,
            id,
            config,
            tools,
            in_conversation,
            metadata,
            llm_job: None,
            waiting_for_asr: false,
            llm_done: false,
            hit_cap: false,
            usage: LlmUsage::default(),
            message: None,
            calls: Vec::new(),
            server_calls: Vec::new(),
            rounds: 0,
            new_round: false,
            own_items: Vec::new(),
            next_output_index: 0,
        }
    }

    /// Its id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The assistant message it is writing, if any.
    pub(crate) fn message_item(&self) -> Option<&str> {
        self.message.as_ref().map(|m| m.item_id.as_str())
    }

    /// Whether it waits for transcriptions before its first round.
    pub(crate) fn is_waiting_for_asr(&self) -> bool {
        self.waiting_for_asr
    }

    /// Makes it wait for transcriptions before its first round.
    pub(crate) fn wait_for_asr(&mut self) {
        self.waiting_for_asr = true;
    }

    /// The response object with `status`.
    pub(crate) fn object(
        &self,
        status: ResponseStatus,
        output: Vec<Item>,
        usage: Option<Usage>,
        conversation_id: &str,
    ) -> ResponseObject {
        ResponseObject {
            id: self.id.clone(),
            status,
            output,
            usage,
            conversation_id: self.in_conversation.then(|| conversation_id.to_owned()),
            modalities: self.config.modalities.clone(),
            voice: self.config.voice.clone(),
            output_audio_format: self.config.output_audio_format,
            temperature: self.config.temperature,
            max_output_tokens: self.config.max_output_tokens,
            metadata: self.metadata.clone(),
        }
    }

    /// The server-side tool `name`, unless the client declared a tool of that name (the
    /// client's wins).
    fn server_tool(&self, name: &str) -> Option<&ToolSpec> {
        if self.config.tools.iter().any(|t| t.name == name) {
            return None;
        }
        self.tools.iter().find(|t| t.definition.name == name)
    }

    /// Starts a model round over the conversation.
    pub(crate) fn start_llm(&mut self, ctx: &mut Ctx) {
        let job = ctx.out.next_job();
        self.waiting_for_asr = false;
        self.llm_job = Some(job);
        self.rounds += 1;
        self.new_round = self.rounds > 1;
        let mut items = ctx.conversation.items();
        items.extend(self.own_items.iter().cloned());
        let mut request = LlmRequest::new(&self.config, items);
        offer_tools(&mut request, &self.tools);
        if self.rounds > 1 {
            // After tools ran, the model chooses freely, and the last round answers in words.
            request.tool_choice = if self.rounds >= MAX_TOOL_ROUNDS { ToolChoice::None } else { ToolChoice::Auto };
        }
        ctx.out.push(Output::StartLlm(job, request));
    }

    /// An event of the model's job `job` (others are ignored).
    pub(crate) fn on_llm(&mut self, job: JobId, event: LlmEvent, now: Instant, ctx: &mut Ctx) -> Step {
        if let Some(interim) = self.interim.as_mut().filter(|i| i.job() == Some(job)) {
            if let Some(line) = interim.on_llm(event) {
                self.say_interim(line, ctx);
            }
            return Step::Continue;
        }
        if self.llm_job != Some(job) {
            return Step::Continue;
        }
        match event {
            LlmEvent::TextDelta(delta) => self.on_text(delta, ctx),
            LlmEvent::ToolCallStart { call_id, name } => self.on_call_start(call_id, name, ctx),
            LlmEvent::ToolCallArguments { call_id, delta } => self.on_call_arguments(call_id, delta, ctx),
            LlmEvent::Done { usage, hit_token_cap } => self.on_round_done(usage, hit_token_cap, now, ctx),
            LlmEvent::Failed(message) => {
                return Step::Fail(ProtocolError::server(
                    code::ENGINE_ERROR,
                    format!("The language model failed: {message}"),
                ));
            }
        }
        Step::Continue
    }

    /// Opens the assistant message (on its first text).
    fn open_message(&mut self, ctx: &mut Ctx) {
        if self.message.is_some() {
            return;
        }
        let item_id = ctx.out.next_id("item");
        let last = ctx.conversation.last_id();
        let audio = self.config.has_audio();
        let output_index = self.next_output_index;
        self.next_output_index += 1;
        let at = PartRef { response_id: self.id.clone(), item_id: item_id.clone(), output_index, content_index: 0 };
        let speech = audio.then(|| Speech::new(at.clone(), Voicing::of(&self.config)));
        self.message = Some(MessageOut { item_id: item_id.clone(), output_index, text: String::new(), speech });
        let part = if audio { Content::Audio { transcript: String::new() } } else { Content::Text(String::new()) };
        let item = Item::message(item_id, Role::Assistant, Vec::new(), ItemStatus::InProgress);
        ctx.out.emit(ServerEvent::OutputItemAdded { response_id: self.id.clone(), output_index, item: item.clone() });
        if self.in_conversation {
            let mut stored = item.clone();
            stored.body = ItemBody::Message { role: Role::Assistant, content: vec![part.clone()] };
            if ctx.conversation.insert(Position::End, Entry::new(stored)).is_ok() {
                ctx.out.emit(ServerEvent::ItemCreated { previous_item_id: last, item });
            }
        }
        ctx.out.emit(ServerEvent::ContentPartAdded { at, part });
    }

    /// A message written in advance (`pre_generated_assistant_message`): the whole text, and
    /// no model round.
    pub(crate) fn write_all(&mut self, text: String, ctx: &mut Ctx) {
        self.on_text(text, ctx);
        if let Some(speech) = self.speech_mut() {
            speech.end_text(ctx.limits, ctx.out);
        }
        self.llm_done = true;
    }

    /// More text: spoken, or sent as text deltas.
    fn on_text(&mut self, mut delta: String, ctx: &mut Ctx) {
        if delta.is_empty() {
            return;
        }
        if !delta.trim().is_empty()
            && let Some(job) = self.interim.as_mut().and_then(Interim::answer_started)
        {
            ctx.out.push(Output::Cancel(job));
        }
        self.open_message(ctx);
        let Some(m) = self.message.as_mut() else { return };
        if std::mem::take(&mut self.new_round)
            && m.speech.is_none()
            && !m.text.is_empty()
            && !m.text.ends_with(char::is_whitespace)
            && !delta.starts_with(char::is_whitespace)
        {
            delta.insert(0, ' ');
        }
        match m.speech.as_mut() {
            Some(speech) => speech.push_text(&delta, ctx.limits, ctx.out),
            None => {
                m.text.push_str(&delta);
                let at = PartRef {
                    response_id: self.id.clone(),
                    item_id: m.item_id.clone(),
                    output_index: m.output_index,
                    content_index: 0,
                };
                ctx.out.emit(ServerEvent::TextDelta { at, delta });
            }
        }
    }

    fn on_call_start(&mut self, call_id: String, name: String, ctx: &mut Ctx) {
        if self.server_tool(&name).is_some() {
            self.server_calls.push(ServerCall { call_id, name, arguments: String::new(), job: None });
            return;
        }
        let item_id = ctx.out.next_id("item");
        let last = ctx.conversation.last_id();
        let output_index = self.next_output_index;
        self.next_output_index += 1;
        let item = Item {
            id: item_id.clone(),
            status: ItemStatus::InProgress,
            body: ItemBody::FunctionCall { call_id: call_id.clone(), name: name.clone(), arguments: String::new() },
        };
        self.calls.push(CallOut { item_id, output_index, call_id, name, arguments: String::new() });
        ctx.out.emit(ServerEvent::OutputItemAdded { response_id: self.id.clone(), output_index, item: item.clone() });
        if self.in_conversation && ctx.conversation.insert(Position::End, Entry::new(item.clone())).is_ok() {
            ctx.out.emit(ServerEvent::ItemCreated { previous_item_id: last, item });
        }
    }

    fn on_call_arguments(&mut self, call_id: String, delta: String, ctx: &mut Ctx) {
        if let Some(call) = self.server_calls.iter_mut().find(|c| c.call_id == call_id && c.job.is_none()) {
            call.arguments.push_str(&delta);
            return;
        }
        let Some(call) = self.calls.iter_mut().find(|c| c.call_id == call_id) else { return };
        call.arguments.push_str(&delta);
        ctx.out.emit(ServerEvent::FunctionCallArgumentsDelta {
            response_id: self.id.clone(),
            item_id: call.item_id.clone(),
            output_index: call.output_index,
            call_id,
            delta,
        });
    }

    /// A model round ended: its server-side calls run, or the model is done.
    fn on_round_done(&mut self, usage: LlmUsage, hit_token_cap: bool, now: Instant, ctx: &mut Ctx) {
        self.llm_job = None;
        self.usage.input_tokens += usage.input_tokens;
        self.usage.cached_tokens += usage.cached_tokens;
        self.usage.output_tokens += usage.output_tokens;
        self.hit_cap = hit_token_cap;
        if let Some(speech) = self.message.as_mut().and_then(|m| m.speech.as_mut()) {
            speech.end_text(ctx.limits, ctx.out);
        }
        if self.server_calls.is_empty() || hit_token_cap {
            self.server_calls.clear();
            self.llm_done = true;
            return;
        }
        let mut refused = Vec::new();
        for i in 0..self.server_calls.len() {
            let spec = self.server_tool(&self.server_calls[i].name);
            let timeout = spec.map(|t| t.timeout).unwrap_or_default();
            let checked =
                spec.map(|t| schema::check_arguments(&t.definition.parameters, &self.server_calls[i].arguments));
            let item_id = ctx.out.next_id("item");
            let call = &mut self.server_calls[i];
            let item = Item {
                id: item_id,
                status: ItemStatus::Completed,
                body: ItemBody::FunctionCall {
                    call_id: call.call_id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                },
            };
            let job = ctx.out.next_job();
            call.job = Some((job, now + timeout));
            let request = ToolCall {
                call_id: call.call_id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
                session_id: self.config.id.clone(),
            };
            self.add_item(item, ctx);
            match checked {
                Some(Err(message)) => {
                    refused.push((job, format!("Invalid arguments for '{}': {message}", request.name)))
                }
                _ => ctx.out.push(Output::StartTool(job, request)),
            }
        }
        let nothing_said =
            self.message.as_ref().is_none_or(|m| m.speech.as_ref().is_none_or(Speech::nothing_spoken_yet));
        if let Some(fire) = self.interim.as_mut().filter(|_| nothing_said).and_then(Interim::on_tool_started) {
            self.on_interim(fire, ctx);
        }
        // A call whose arguments break the tool's schema never runs: the model gets the reason.
        for (job, message) in refused {
            self.on_tool(job, ToolEvent::Failed(message), ctx);
        }
    }

    /// Adds an item the response made for a server-side tool: to the conversation (announced),
    /// or to its own items when it is out of band.
    fn add_item(&mut self, item: Item, ctx: &mut Ctx) {
        if !self.in_conversation {
            self.own_items.push(item);
            return;
        }
        if let Ok(previous) = ctx.conversation.insert(Position::End, Entry::new(item.clone())) {
            ctx.out.announce(previous, item);
        }
    }

    /// A server-side tool's result for `job` (others are ignored): its output joins the
    /// conversation, and once the round's calls are all answered the model goes on.
    pub(crate) fn on_tool(&mut self, job: JobId, event: ToolEvent, ctx: &mut Ctx) {
        let Some(call) = self.server_calls.iter_mut().find(|c| c.job.is_some_and(|(j, _)| j == job)) else { return };
        call.job = None;
        let output = match event {
            ToolEvent::Done(output) => output,
            ToolEvent::Failed(message) => serde_json::json!({ "error": message }).to_string(),
        };
        let call_id = call.call_id.clone();
        self.server_calls.retain(|c| c.call_id != call_id || c.job.is_some());
        let item = Item {
            id: ctx.out.next_id("item"),
            status: ItemStatus::Completed,
            body: ItemBody::FunctionCallOutput { call_id, output },
        };
        self.add_item(item, ctx);
        if !self.server_calls.is_empty() {
            return;
        }
        if self.calls.is_empty() {
            self.start_llm(ctx);
        } else {
            // The client has calls of its own to answer: it continues after `response.done`.
            self.llm_done = true;
        }
    }

    /// Acts on a fired interim trigger: says a fixed line, or asks the model for one (the
    /// conversation so far, the session's instructions and tools, so a local model's computed
    /// prompt stays valid, then the interim instructions; no tool calls).
    fn on_interim(&mut self, fire: Fire, ctx: &mut Ctx) {
        match fire {
            Fire::Say(line) => self.say_interim(line, ctx),
            Fire::Write { instructions, max_tokens } => {
                let job = ctx.out.next_job();
                let mut items = ctx.conversation.items();
                items.extend(self.own_items.iter().cloned());
                items.push(Item::message(
                    ctx.out.next_id("item"),
                    Role::System,
                    vec![Content::InputText(instructions)],
                    ItemStatus::Completed,
                ));
                let mut request = LlmRequest::new(&self.config, items);
                offer_tools(&mut request, &self.tools);
                request.tool_choice = ToolChoice::None;
                request.max_output_tokens = Some(max_tokens);
                if let Some(interim) = self.interim.as_mut() {
                    interim.writing(job);
                }
                ctx.out.push(Output::StartLlm(job, request));
            }
        }
    }

    /// Speaks an interim line as a phrase of its own; the answer continues after it in the same
    /// message.
    fn say_interim(&mut self, line: String, ctx: &mut Ctx) {
        self.open_message(ctx);
        if let Some(speech) = self.speech_mut() {
            speech.push_text(&line, ctx.limits, ctx.out);
            speech.end_text(ctx.limits, ctx.out);
        }
    }

    /// When the interim line's latency trigger fires.
    pub(crate) fn interim_deadline(&self) -> Option<Instant> {
        self.interim.as_ref()?.deadline()
    }

    /// Time passed: tools whose time is up are stopped, and the interim line's latency trigger
    /// fires when it is due.
    pub(crate) fn on_tick(&mut self, now: Instant, ctx: &mut Ctx) {
        self.expire_tools(now, ctx);
        if let Some(fire) = self.interim.as_mut().and_then(|i| i.on_tick(now)) {
            self.on_interim(fire, ctx);
        }
    }

    /// When the next server-side tool call runs out of time.
    pub(crate) fn tool_deadline(&self) -> Option<Instant> {
        self.server_calls.iter().filter_map(|c| c.job.map(|(_, at)| at)).min()
    }

    /// Stops the tool calls whose time is up at `now`; each is answered with a timeout error.
    fn expire_tools(&mut self, now: Instant, ctx: &mut Ctx) {
        let expired: Vec<(JobId, String)> = self
            .server_calls
            .iter()
            .filter_map(|c| c.job.filter(|(_, at)| *at <= now).map(|(job, _)| (job, c.name.clone())))
            .collect();
        for (job, name) in expired {
            ctx.out.push(Output::Cancel(job));
            let timeout = self.server_tool(&name).map(|t| t.timeout.as_secs_f64()).unwrap_or_default();
            self.on_tool(job, ToolEvent::Failed(format!("The tool '{name}' did not answer within {timeout} s.")), ctx);
        }
    }

    /// Whether `job` is the synthesis of its speech.
    pub(crate) fn owns_tts(&self, job: JobId) -> bool {
        self.speech().is_some_and(|s| s.owns(job))
    }

    /// Its speech, when it speaks.
    pub(crate) fn speech(&self) -> Option<&Speech> {
        self.message.as_ref()?.speech.as_ref()
    }

    /// Its speech, to feed or release.
    pub(crate) fn speech_mut(&mut self) -> Option<&mut Speech> {
        self.message.as_mut()?.speech.as_mut()
    }

    /// When its paced audio is next due.
    pub(crate) fn audio_due(&self, playback: Option<&Playback>, limits: &Limits) -> Option<Instant> {
        self.speech()?.due(playback, limits)
    }

    /// How it ends if nothing is left to do: the model is done and everything is spoken.
    pub(crate) fn finished(&self) -> Option<ResponseStatus> {
        if !self.llm_done || self.speech().is_some_and(Speech::is_busy) {
            return None;
        }
        Some(if self.hit_cap {
            ResponseStatus::Incomplete { reason: "max_output_tokens" }
        } else {
            ResponseStatus::Completed
        })
    }

    /// Whether it answers the user in the conversation: a message of its own there, and no call
    /// the client is to answer (the user speaks next).
    pub(crate) fn answers_in_conversation(&self) -> bool {
        self.in_conversation && self.message.is_some() && self.calls.is_empty()
    }

    /// Ends it with `status`: stops its jobs, closes its items and sends `response.done`.
    pub(crate) fn close(mut self, status: ResponseStatus, conversation_id: &str, ctx: &mut Ctx) {
        if let Some(job) = self.llm_job.take() {
            ctx.out.push(Output::Cancel(job));
        }
        if let Some(job) = self.interim.as_ref().and_then(Interim::job) {
            ctx.out.push(Output::Cancel(job));
        }
        for call in &self.server_calls {
            if let Some((job, _)) = call.job {
                ctx.out.push(Output::Cancel(job));
            }
        }
        let item_status =
            if status == ResponseStatus::Completed { ItemStatus::Completed } else { ItemStatus::Incomplete };
        let mut output: Vec<(u32, Item)> = Vec::new();
        if let Some(m) = self.message.take() {
            let at = PartRef {
                response_id: self.id.clone(),
                item_id: m.item_id.clone(),
                output_index: m.output_index,
                content_index: 0,
            };
            let (part, spoken) = match m.speech {
                Some(speech) => {
                    let spoken = speech.close(ctx.out);
                    (Content::Audio { transcript: spoken.transcript.clone() }, Some(spoken))
                }
                None => {
                    ctx.out.emit(ServerEvent::TextDone { at: at.clone(), text: m.text.clone() });
                    (Content::Text(m.text), None)
                }
            };
            ctx.out.emit(ServerEvent::ContentPartDone { at, part: part.clone() });
            let item = Item::message(m.item_id.clone(), Role::Assistant, vec![part], item_status);
            if let Some(mut entry) = ctx.conversation.get_mut(&m.item_id) {
                entry.item = item.clone();
                if let Some(spoken) = spoken {
                    entry.audio_ms = spoken.audio_ms;
                    entry.segments = spoken.segments;
                }
            }
            output.push((m.output_index, item));
        }
        for call in std::mem::take(&mut self.calls) {
            ctx.out.emit(ServerEvent::FunctionCallArgumentsDone {
                response_id: self.id.clone(),
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
            if let Some(mut entry) = ctx.conversation.get_mut(&call.item_id) {
                entry.item = item.clone();
            }
            output.push((call.output_index, item));
        }
        output.sort_by_key(|(i, _)| *i);
        for (output_index, item) in &output {
            ctx.out.emit(ServerEvent::OutputItemDone {
                response_id: self.id.clone(),
                output_index: *output_index,
                item: item.clone(),
            });
            if self.in_conversation && ctx.conversation.contains(&item.id) {
                let previous_item_id = ctx.conversation.previous_id(&item.id);
                ctx.out.emit(ServerEvent::ItemDone { previous_item_id, item: item.clone() });
            }
        }
        let usage = self.usage_of(&output, ctx.conversation);
        let response = self.object(status, output.into_iter().map(|(_, i)| i).collect(), Some(usage), conversation_id);
        ctx.out.emit(ServerEvent::ResponseDone(Box::new(response)));
    }

    fn usage_of(&self, output: &[(u32, Item)], conversation: &Conversation) -> Usage {
        let audio_out_ms: f64 = output.iter().filter_map(|(_, i)| conversation.get(&i.id)).map(|e| e.audio_ms).sum();
        let input_audio_seconds: f64 =
            conversation.entries().filter(|e| e.item.role() == Some(Role::User)).map(|e| e.audio_ms / 1000.0).sum();
        Usage {
            input_text_tokens: self.usage.input_tokens,
            input_audio_tokens: (input_audio_seconds * AUDIO_IN_TOKENS_PER_S) as u64,
            cached_tokens: self.usage.cached_tokens,
            output_text_tokens: self.usage.output_tokens,
            output_audio_tokens: (audio_out_ms / 1000.0 * AUDIO_OUT_TOKENS_PER_S).round() as u64,
        }
    }
}
