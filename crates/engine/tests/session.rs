//! The conversation rules, exercised through `Session`'s public surface with a fake clock and
//! scripted engine results.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_audio::Vad;
use brazen_engine::{Input, JobId, Limits, Output, Session, SessionOptions};
use brazen_protocol::{Content, Dialect, ItemBody, ResponseStatus, ServerEvent, client};
use brazen_providers::{AsrEvent, LlmEvent, LlmUsage, TtsEvent, TurnVerdict};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A detector whose speech probability is the value of the frame's last sample, so a test
/// chooses the probability by the constant it sends (the last, as the detector's resampler lags
/// half a millisecond).
struct ProbeVad;

impl Vad for ProbeVad {
    fn sample_rate(&self) -> u32 {
        16_000
    }
    fn frame_len(&self) -> usize {
        320
    }
    fn process(&mut self, frame: &[f32]) -> f32 {
        frame[frame.len() - 1].clamp(0.0, 1.0)
    }
    fn reset(&mut self) {}
}

/// [`ProbeVad`] that goes on hearing speech for [`LAG_FRAMES`] frames (100 ms) after it stops,
/// as Silero does (60–110 ms).
struct LaggingVad {
    /// Frames since the last one the probe called speech.
    since_speech: usize,
}

/// Frames [`LaggingVad`] hears after the speech.
const LAG_FRAMES: usize = 5;

impl Vad for LaggingVad {
    fn sample_rate(&self) -> u32 {
        16_000
    }
    fn frame_len(&self) -> usize {
        320
    }
    fn process(&mut self, frame: &[f32]) -> f32 {
        self.since_speech = if frame[frame.len() - 1] >= 0.5 { 0 } else { self.since_speech + 1 };
        if self.since_speech <= LAG_FRAMES { 1.0 } else { 0.0 }
    }
    fn reset(&mut self) {
        self.since_speech = LAG_FRAMES + 1;
    }
}

struct Harness {
    session: Session,
    now: Instant,
    out: Vec<Output>,
}

impl Harness {
    /// A session with the default limits, save its length and idle timeout (the tests of
    /// those set them).
    fn new() -> Self {
        Self::with_limits(unlimited())
    }

    fn with_limits(limits: Limits) -> Self {
        Self::with_options(limits, Vec::new())
    }

    /// A session on a server that gives avatars these ICE servers.
    fn with_ice_servers(ice_servers: Vec<Value>) -> Self {
        Self::with_options(unlimited(), ice_servers)
    }

    /// A session on a server with these server-side tools.
    fn with_tools(tools: Vec<brazen_providers::ToolSpec>) -> Self {
        Self::build(unlimited(), Vec::new(), tools, true)
    }

    /// A session whose language model computes nothing ahead (a remote one).
    fn with_a_remote_llm() -> Self {
        Self::build(unlimited(), Vec::new(), Vec::new(), false)
    }

    /// A session whose detector hears speech 100 ms after it stops ([`LaggingVad`]).
    fn with_a_lagging_vad() -> Self {
        Self::build_with(
            unlimited(),
            Vec::new(),
            Vec::new(),
            true,
            Box::new(LaggingVad { since_speech: LAG_FRAMES + 1 }),
        )
    }

    fn with_options(limits: Limits, ice_servers: Vec<Value>) -> Self {
        Self::build(limits, ice_servers, Vec::new(), true)
    }

    fn build(
        limits: Limits,
        ice_servers: Vec<Value>,
        tools: Vec<brazen_providers::ToolSpec>,
        llm_computes_ahead: bool,
    ) -> Self {
        Self::build_with(limits, ice_servers, tools, llm_computes_ahead, Box::new(ProbeVad))
    }

    fn build_with(
        limits: Limits,
        ice_servers: Vec<Value>,
        tools: Vec<brazen_providers::ToolSpec>,
        llm_computes_ahead: bool,
        vad: Box<dyn Vad>,
    ) -> Self {
        let now = Instant::now();
        let session = Session::new(
            SessionOptions {
                session_id: "sess_test".into(),
                model: "m".into(),
                vad,
                limits,
                avatars: std::sync::Arc::new(brazen_avatar::character::Catalog::built_in()),
                ice_servers,
                tools: std::sync::Arc::new(tools),
                defaults: Vec::new(),
                history: Vec::new(),
                llm_computes_ahead,
            },
            now,
        );
        let mut h = Harness { session, now, out: Vec::new() };
        h.drain();
        h.out.clear();
        h
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut new = Vec::new();
        while let Some(o) = self.session.poll_output() {
            new.push(o);
        }
        self.out.extend(new.iter().cloned());
        new
    }

    fn input(&mut self, input: Input) -> Vec<Output> {
        self.session.handle(input, self.now);
        self.drain()
    }

    fn send(&mut self, event: Value) -> Vec<Output> {
        let input = match client::parse(&event.to_string()) {
            Ok(msg) => Input::Client(msg),
            Err(e) => Input::Invalid(e),
        };
        self.input(input)
    }

    /// Lets `ms` pass, ticking every 10 ms as a driver would (paced audio goes out).
    fn advance(&mut self, ms: u64) -> Vec<Output> {
        let mut out = Vec::new();
        for _ in 0..ms / 10 {
            self.now += Duration::from_millis(10);
            out.extend(self.input(Input::Tick));
        }
        out
    }

    /// Appends `ms` of 24 kHz audio whose detector probability is `p`, in 100 ms chunks.
    fn audio(&mut self, ms: usize, p: f32) -> Vec<Output> {
        self.audio_in(ms, 100, p)
    }

    /// `ms` of 24 kHz audio at level `p`, appended in chunks of `chunk_ms`.
    fn audio_in(&mut self, ms: usize, chunk_ms: usize, p: f32) -> Vec<Output> {
        let value = (p * 32_767.0) as i16;
        let bytes: Vec<u8> = std::iter::repeat_n(value, 24 * chunk_ms).flat_map(|s| s.to_le_bytes()).collect();
        let chunk = json!({"type": "input_audio_buffer.append", "audio": B64.encode(bytes)});
        (0..ms / chunk_ms).flat_map(|_| self.send(chunk.clone())).collect()
    }
}

/// The default limits with no maximum length or idle timeout.
fn unlimited() -> Limits {
    Limits { max_session_ms: f64::INFINITY, idle_timeout_ms: f64::INFINITY, ..Limits::default() }
}

fn events(outputs: &[Output]) -> Vec<ServerEvent> {
    outputs.iter().filter_map(|o| if let Output::Event(e) = o { Some(e.clone()) } else { None }).collect()
}

fn types(outputs: &[Output]) -> Vec<&'static str> {
    events(outputs).iter().filter_map(|e| e.wire_type(Dialect::Beta)).collect()
}

fn errors(outputs: &[Output]) -> Vec<(String, Option<String>, Option<String>)> {
    events(outputs)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Error(e) => Some((e.code.to_owned(), e.param, e.event_id)),
            _ => None,
        })
        .collect()
}

fn llm_job(outputs: &[Output]) -> (JobId, brazen_providers::LlmRequest) {
    outputs
        .iter()
        .find_map(|o| if let Output::StartLlm(j, r) = o { Some((*j, r.clone())) } else { None })
        .expect("an LLM job was started")
}

fn tts_jobs(outputs: &[Output]) -> Vec<(JobId, String)> {
    outputs
        .iter()
        .filter_map(|o| if let Output::StartTts(j, r) = o { Some((*j, r.text.clone())) } else { None })
        .collect()
}

/// The transcript previews started: job and samples.
/// Whether the transcripts started in `outputs` are urgent ones (speech held over a reply, or a
/// pause's words with semantic detection).
fn urgent(outputs: &[Output]) -> bool {
    outputs.iter().any(|o| matches!(o, Output::StartAsr(_, r) if r.urgent))
}

fn previews(outputs: &[Output]) -> Vec<(JobId, usize)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::StartAsr(j, r) if r.preview => Some((*j, r.samples.len())),
            _ => None,
        })
        .collect()
}

/// The last transcription job started: a turn's final one, or the preview asked for in the
/// pause that ended the turn, which serves as its final transcript.
fn asr_job(outputs: &[Output]) -> (JobId, brazen_providers::AsrRequest) {
    outputs
        .iter()
        .rev()
        .find_map(|o| match o {
            Output::StartAsr(j, r) => Some((*j, r.clone())),
            _ => None,
        })
        .expect("an ASR job was started")
}

fn done(outputs: &[Output]) -> brazen_protocol::Response {
    events(outputs)
        .into_iter()
        .find_map(|e| if let ServerEvent::ResponseDone(r) = e { Some(*r) } else { None })
        .expect("response.done")
}

fn say(h: &mut Harness, job: JobId, text: &str) -> Vec<Output> {
    let mut out = h.input(Input::Llm(job, LlmEvent::TextDelta(text.into())));
    out.extend(h.input(Input::Llm(
        job,
        LlmEvent::Done {
            usage: LlmUsage { input_tokens: 5, cached_tokens: 0, output_tokens: 3 },
            hit_token_cap: false,
        },
    )));
    out
}

fn user_text(h: &mut Harness, text: &str) {
    h.send(json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}));
}

/// Plays `ms` of TTS audio at 24 kHz for a job.
fn tts_audio(h: &mut Harness, job: JobId, ms: usize) -> Vec<Output> {
    h.input(Input::Tts(job, TtsEvent::Audio { samples: vec![100; ms * 24], sample_rate: 24_000 }))
}

#[test]
fn new_session_announces_itself() {
    let now = Instant::now();
    let mut s = Session::new(
        SessionOptions {
            session_id: "sess_x".into(),
            model: "m".into(),
            vad: Box::new(ProbeVad),
            limits: Limits::default(),
            avatars: std::sync::Arc::new(brazen_avatar::character::Catalog::built_in()),
            ice_servers: Vec::new(),
            tools: Default::default(),
            defaults: Vec::new(),
            history: Vec::new(),
            llm_computes_ahead: true,
        },
        now,
    );
    let first: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
    assert_eq!(types(&first), ["session.created", "conversation.created"]);
    assert!(matches!(&events(&first)[0], ServerEvent::SessionCreated(c) if c.id == "sess_x"));
}

#[test]
fn an_agents_defaults_start_the_session_and_the_client_still_overrides_them() {
    let now = Instant::now();
    let defaults = json!({"instructions": "You sell boots.", "voice": {"name": "en_US-joe-medium", "type": "azure-standard"},
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 700}});
    let patch =
        brazen_protocol::SessionPatch::read(brazen_protocol::read::Obj::expect(&defaults, "session").unwrap()).unwrap();
    let mut s = Session::new(
        SessionOptions {
            session_id: "sess_agent".into(),
            model: "m".into(),
            vad: Box::new(ProbeVad),
            limits: Limits::default(),
            avatars: std::sync::Arc::new(brazen_avatar::character::Catalog::built_in()),
            ice_servers: Vec::new(),
            tools: Default::default(),
            defaults: vec![std::sync::Arc::new(patch)],
            history: Vec::new(),
            llm_computes_ahead: true,
        },
        now,
    );
    let first: Vec<_> = std::iter::from_fn(|| s.poll_output()).collect();
    let ServerEvent::SessionCreated(config) = &events(&first)[0] else { panic!() };
    assert_eq!(config.instructions, "You sell boots.");
    assert_eq!(config.turn_detection.as_ref().map(|t| t.silence_duration_ms), Some(700));
    let update = json!({"type": "session.update", "session": {"instructions": "You sell hats."}});
    s.handle(Input::Client(client::parse(&update.to_string()).unwrap()), now);
    assert_eq!(s.config().instructions, "You sell hats.");
    assert_eq!(s.config().turn_detection.as_ref().map(|t| t.silence_duration_ms), Some(700), "the rest stays");
}

#[test]
fn session_update_merges_partial_updates_and_null_unsets() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"instructions": "Be brief.", "voice": "verse"}}));
    h.send(json!({"type": "session.update", "session": {"temperature": 0.6}}));
    let c = h.session.config();
    assert_eq!((c.instructions.as_str(), c.voice.name.as_str(), c.temperature), ("Be brief.", "verse", 0.6));
    let out = h.send(json!({"type": "session.update", "session": {"instructions": null, "turn_detection": null}}));
    assert_eq!(types(&out), ["session.updated"]);
    let c = h.session.config();
    assert_eq!(c.instructions, "");
    assert_eq!(c.voice.name, "verse", "fields not named keep their value");
    assert!(c.turn_detection.is_none());
    // With turn detection off, speech starts no turn.
    let out = h.audio(1_500, 0.9);
    assert!(types(&out).is_empty(), "{:?}", types(&out));
}

#[test]
fn session_update_errors_name_the_field_and_change_nothing() {
    let mut h = Harness::new();
    let out = h.send(json!({"type": "session.update", "event_id": "e7", "session": {"instructions": "x", "turn_detection": {"type": "server_vad", "threshold": 3}}}));
    assert_eq!(
        errors(&out),
        [("invalid_value".into(), Some("session.turn_detection.threshold".into()), Some("e7".into()))]
    );
    assert_eq!(h.session.config().instructions, "", "a rejected update applies nothing");
}

#[test]
fn input_audio_formats_are_validated() {
    let mut h = Harness::new();
    let out = h.send(json!({"type": "input_audio_buffer.append", "audio": B64.encode([1u8, 2, 3])}));
    assert_eq!(errors(&out)[0].0, "invalid_audio");
    let out = h.send(json!({"type": "input_audio_buffer.append", "audio": "%%%not base64"}));
    assert_eq!(errors(&out)[0].0, "invalid_audio");
    // G.711: any byte count is whole samples at 8 kHz.
    h.send(json!({"type": "session.update", "session": {"input_audio_format": "g711_ulaw", "turn_detection": null}}));
    h.send(json!({"type": "input_audio_buffer.append", "audio": B64.encode(vec![0xFFu8; 801])}));
    let out = h.send(json!({"type": "input_audio_buffer.commit"}));
    let (_, req) = asr_job(&out);
    assert_eq!((req.sample_rate, req.samples.len()), (8_000, 801));
    // Voice Live: pcm16 at 16 kHz.
    h.send(json!({"type": "session.update", "session": {"input_audio_format": "pcm16", "input_audio_sampling_rate": 16000}}));
    h.send(json!({"type": "input_audio_buffer.append", "audio": B64.encode(vec![0u8; 3_200])}));
    let out = h.send(json!({"type": "input_audio_buffer.commit"}));
    let (_, req) = asr_job(&out);
    assert_eq!((req.sample_rate, req.samples.len()), (16_000, 1_600));
    let out = h.send(json!({"type": "session.update", "session": {"input_audio_sampling_rate": 44100}}));
    assert_eq!(errors(&out)[0].1.as_deref(), Some("session.input_audio_sampling_rate"));
}

#[test]
fn commit_needs_100_ms_and_clear_empties_the_buffer() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": null}}));
    let out = h.send(json!({"type": "input_audio_buffer.commit", "event_id": "c1"}));
    assert_eq!(errors(&out), [("input_audio_buffer_commit_empty".into(), None, Some("c1".into()))]);
    h.audio(200, 0.0);
    assert_eq!(types(&h.send(json!({"type": "input_audio_buffer.clear"}))), ["input_audio_buffer.cleared"]);
    assert_eq!(errors(&h.send(json!({"type": "input_audio_buffer.commit"})))[0].0, "input_audio_buffer_commit_empty");
    h.audio(300, 0.0);
    let out = h.send(json!({"type": "input_audio_buffer.commit"}));
    assert_eq!(types(&out), ["input_audio_buffer.committed", "conversation.item.created"]);
    let (_, req) = asr_job(&out);
    assert_eq!(req.samples.len(), 300 * 24);
}

#[test]
fn items_are_ordered_by_previous_item_id() {
    let mut h = Harness::new();
    let create = |id: &str, prev: Option<&str>| {
        let mut e = json!({"type": "conversation.item.create", "item": {"id": id, "type": "message", "role": "user", "content": [{"type": "input_text", "text": id}]}});
        if let Some(p) = prev {
            e["previous_item_id"] = json!(p);
        }
        e
    };
    h.send(create("a", None));
    h.send(create("c", None));
    let out = h.send(create("b", Some("a")));
    assert!(matches!(&events(&out)[0], ServerEvent::ItemCreated { previous_item_id: Some(p), .. } if p == "a"));
    let out = h.send(create("first", Some("root")));
    assert!(matches!(&events(&out)[0], ServerEvent::ItemCreated { previous_item_id: None, .. }));
    assert_eq!(
        errors(&h.send(create("x", Some("nope"))))[0],
        ("item_not_found".into(), Some("previous_item_id".into()), None)
    );
    assert_eq!(errors(&h.send(create("a", None)))[0].0, "duplicate_item_id");
    // The LLM sees the conversation in that order.
    let out = h.send(json!({"type": "response.create"}));
    let (_, req) = llm_job(&out);
    let order: Vec<_> = req.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(order, ["first", "a", "b", "c"]);
}

#[test]
fn retrieve_and_delete() {
    let mut h = Harness::new();
    user_text(&mut h, "hello");
    let id = match &events(&h.out)[0] {
        ServerEvent::ItemCreated { item, .. } => item.id.clone(),
        other => panic!("{other:?}"),
    };
    let out = h.send(json!({"type": "conversation.item.retrieve", "item_id": id}));
    assert!(matches!(&events(&out)[0], ServerEvent::ItemRetrieved { item } if item.text() == "hello"));
    assert_eq!(
        types(&h.send(json!({"type": "conversation.item.delete", "item_id": id}))),
        ["conversation.item.deleted"]
    );
    assert_eq!(h.session.item_count(), 0);
    let out = h.send(json!({"type": "conversation.item.delete", "item_id": id, "event_id": "d2"}));
    assert_eq!(errors(&out), [("item_not_found".into(), Some("item_id".into()), Some("d2".into()))]);
    assert_eq!(errors(&h.send(json!({"type": "conversation.item.retrieve", "item_id": "zz"})))[0].0, "item_not_found");
}

#[test]
fn a_text_response_streams_then_completes() {
    let mut h = Harness::new();
    user_text(&mut h, "hi");
    let out = h.send(
        json!({"type": "response.create", "response": {"modalities": ["text"], "instructions": "Answer in French."}}),
    );
    assert_eq!(types(&out), ["response.created"]);
    let (job, req) = llm_job(&out);
    assert_eq!(req.instructions, "Answer in French.", "per-response overrides reach the model");
    assert_eq!(h.session.config().instructions, "", "and do not change the session");
    let out = say(&mut h, job, "Bonjour");
    assert_eq!(
        types(&out),
        [
            "response.output_item.added",
            "conversation.item.created",
            "response.content_part.added",
            "response.text.delta",
            "response.text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.done",
        ]
    );
    let r = done(&out);
    assert_eq!(r.status, ResponseStatus::Completed);
    assert_eq!(r.output[0].text(), "Bonjour");
    assert_eq!(r.usage.unwrap().output_text_tokens, 3);
    assert!(!h.session.has_active_response());
}

#[test]
fn only_one_response_at_a_time() {
    let mut h = Harness::new();
    h.send(json!({"type": "response.create"}));
    let out = h.send(json!({"type": "response.create", "event_id": "r2"}));
    assert_eq!(errors(&out), [("conversation_already_has_active_response".into(), None, Some("r2".into()))]);
}

#[test]
fn cancel_stops_the_jobs_and_reports_cancelled() {
    let mut h = Harness::new();
    let out = h.send(json!({"type": "response.create"}));
    let (job, _) = llm_job(&out);
    h.input(Input::Llm(job, LlmEvent::TextDelta("One. Two".into())));
    let (tts, _) = tts_jobs(&h.out)[0].clone();
    tts_audio(&mut h, tts, 100);
    let out = h.send(json!({"type": "response.cancel"}));
    assert!(out.contains(&Output::Cancel(job)) && out.contains(&Output::Cancel(tts)));
    let r = done(&out);
    assert_eq!(r.status, ResponseStatus::Cancelled { reason: "client_cancelled" });
    assert_eq!(r.output[0].status.name(), "incomplete");
    // Late results of the cancelled jobs change nothing.
    assert!(say(&mut h, job, "late").is_empty());
    assert!(tts_audio(&mut h, tts, 100).is_empty());
    assert_eq!(errors(&h.send(json!({"type": "response.cancel"})))[0].0, "response_cancel_not_active");
}

#[test]
fn out_of_band_responses_stay_out_of_the_conversation() {
    let mut h = Harness::new();
    let out = h.send(json!({"type": "response.create", "response": {"conversation": "none", "modalities": ["text"], "metadata": {"k": "v"}}}));
    let (job, _) = llm_job(&out);
    let out = say(&mut h, job, "aside");
    assert!(!types(&out).contains(&"conversation.item.created"));
    let r = done(&out);
    assert_eq!((r.conversation_id, r.metadata), (None, Some(json!({"k": "v"}))));
    assert_eq!(h.session.item_count(), 0);
}

#[test]
fn token_cap_and_failures_end_the_response_with_their_status() {
    let mut h = Harness::new();
    let out = h.send(
        json!({"type": "response.create", "response": {"modalities": ["text"], "max_response_output_tokens": 1}}),
    );
    let (job, req) = llm_job(&out);
    assert_eq!(req.max_output_tokens, Some(1));
    h.input(Input::Llm(job, LlmEvent::TextDelta("Cut".into())));
    let out = h.input(Input::Llm(job, LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: true }));
    assert_eq!(done(&out).status, ResponseStatus::Incomplete { reason: "max_output_tokens" });
    let out = h.send(json!({"type": "response.create"}));
    let (job, _) = llm_job(&out);
    let out = h.input(Input::Llm(job, LlmEvent::Failed("out of memory".into())));
    match done(&out).status {
        ResponseStatus::Failed { error } => assert!(error.message.contains("out of memory")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn function_calls_stream_and_their_outputs_feed_the_next_response() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}]}}));
    user_text(&mut h, "find order 7");
    let out = h.send(json!({"type": "response.create"}));
    let (job, req) = llm_job(&out);
    assert_eq!(req.tools[0].name, "lookup");
    h.input(Input::Llm(job, LlmEvent::ToolCallStart { call_id: "call_1".into(), name: "lookup".into() }));
    h.input(Input::Llm(job, LlmEvent::ToolCallArguments { call_id: "call_1".into(), delta: "{\"id\":".into() }));
    h.input(Input::Llm(job, LlmEvent::ToolCallArguments { call_id: "call_1".into(), delta: "7}".into() }));
    let out = h.input(Input::Llm(job, LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false }));
    let r = done(&out);
    assert!(
        matches!(&r.output[0].body, ItemBody::FunctionCall { arguments, call_id, .. } if arguments == "{\"id\":7}" && call_id == "call_1")
    );
    let evs = events(&h.out);
    let deltas: Vec<_> = evs
        .iter()
        .filter_map(|e| {
            if let ServerEvent::FunctionCallArgumentsDelta { delta, .. } = e { Some(delta.as_str()) } else { None }
        })
        .collect();
    assert_eq!(deltas, ["{\"id\":", "7}"]);
    assert!(evs.iter().any(|e| matches!(e, ServerEvent::FunctionCallArgumentsDone { name, .. } if name == "lookup")));
    h.send(json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_1", "output": "{\"status\":\"shipped\"}"}}));
    let out = h.send(json!({"type": "response.create"}));
    let (_, req) = llm_job(&out);
    assert!(
        matches!(&req.items.last().unwrap().body, ItemBody::FunctionCallOutput { output, .. } if output.contains("shipped"))
    );
}

#[test]
fn server_vad_commits_turns_with_prefix_padding_and_answers() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 200, "silence_duration_ms": 400, "speech_duration_ms": 100}}}));
    h.audio(1_000, 0.4); // below the threshold: not speech
    assert!(types(&h.out).iter().all(|t| *t == "session.updated"));
    let out = h.audio(600, 0.7);
    assert_eq!(types(&out), ["input_audio_buffer.speech_started"]);
    assert!(matches!(events(&out)[0], ServerEvent::SpeechStarted { audio_start_ms: 1_000, .. }));
    let out = h.audio(500, 0.0);
    assert_eq!(
        types(&out),
        [
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.created",
            "response.created"
        ]
    );
    assert!(matches!(events(&out)[0], ServerEvent::SpeechStopped { audio_end_ms: 1_600, .. }));
    // 200 ms of prefix, 600 ms of speech, and the silence up to the decision (400 ms + 1 frame).
    let (asr, req) = asr_job(&out);
    let ms = req.samples.len() / 24;
    assert!((1_200..=1_300).contains(&ms), "{ms} ms committed");
    // The response waits for the transcript before asking the model.
    assert!(!out.iter().any(|o| matches!(o, Output::StartLlm(..))));
    let out = h.input(Input::Asr(asr, AsrEvent::Done("where is my order".into())));
    let (_, llm) = llm_job(&out);
    assert_eq!(llm.items.last().unwrap().text(), "where is my order");
    assert!(!types(&out).contains(&"conversation.item.input_audio_transcription.completed"), "not asked for");
}

#[test]
fn transcription_events_when_asked() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"input_audio_transcription": {"model": "whisper-1", "language": "en"}, "turn_detection": {"type": "server_vad", "create_response": false}}}));
    h.audio(500, 0.9);
    let out = h.audio(700, 0.0);
    assert!(!types(&out).contains(&"response.created"), "create_response: false");
    let (job, req) = asr_job(&out);
    assert_eq!(req.language.as_deref(), Some("en"));
    let out = h.input(Input::Asr(job, AsrEvent::Delta("hel".into())));
    assert_eq!(types(&out), ["conversation.item.input_audio_transcription.delta"]);
    let out = h.input(Input::Asr(job, AsrEvent::Done("hello".into())));
    assert!(matches!(&events(&out)[0], ServerEvent::TranscriptionDelta { delta, .. } if delta == "lo"), "the rest");
    assert!(
        matches!(&events(&out)[1], ServerEvent::TranscriptionCompleted { transcript, .. } if transcript == "hello")
    );
    h.audio(500, 0.9);
    let out = h.audio(700, 0.0);
    let (job, request) = asr_job(&out);
    assert!(request.preview, "the pause's preview stands in for the final transcript");
    // It fails: the turn is transcribed again, and that failure is reported.
    let out = h.input(Input::Asr(job, AsrEvent::Failed("model missing".into())));
    assert!(types(&out).is_empty(), "{:?}", types(&out));
    let (again, request) = asr_job(&out);
    assert!(!request.preview);
    let out = h.input(Input::Asr(again, AsrEvent::Failed("model missing".into())));
    assert_eq!(types(&out), ["conversation.item.input_audio_transcription.failed"]);
}

/// Starts an audio response whose TTS job has sent `ms` of audio at the harness's current time.
fn speaking(h: &mut Harness, ms: usize) -> (String, JobId) {
    let out = h.send(json!({"type": "response.create"}));
    let (job, _) = llm_job(&out);
    h.input(Input::Llm(job, LlmEvent::TextDelta("one two three four. five six seven eight. ".into())));
    let (tts, _) = tts_jobs(&h.out).last().cloned().unwrap();
    let out = tts_audio(h, tts, ms);
    let item_id = events(&out)
        .iter()
        .find_map(|e| if let ServerEvent::AudioDelta { at, .. } = e { Some(at.item_id.clone()) } else { None })
        .unwrap();
    (item_id, tts)
}

/// Finishes the answer `speaking` began: its first phrase ends, the second phrase gets `ms` of
/// audio, and the model finishes.
fn finish_speaking(h: &mut Harness, first_tts: JobId, ms: usize) {
    h.input(Input::Tts(first_tts, TtsEvent::Done));
    let (second, _) = tts_jobs(&h.out).last().cloned().unwrap();
    tts_audio(h, second, ms);
    h.input(Input::Tts(second, TtsEvent::Done));
    let (job, _) = llm_job(&h.out);
    h.input(Input::Llm(job, LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false }));
}

#[test]
fn audio_is_chunked_and_converted_to_the_output_format() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"output_audio_format": "g711_ulaw"}}));
    let (_, tts) = speaking(&mut h, 1_000);
    let deltas = |outputs: &[Output]| -> Vec<usize> {
        events(outputs)
            .iter()
            .filter_map(|e| {
                if let ServerEvent::AudioDelta { delta, .. } = e {
                    Some(B64.decode(delta).unwrap().len())
                } else {
                    None
                }
            })
            .collect()
    };
    assert_eq!(deltas(&h.out), [1_600; 3], "sent until 500 ms are queued ahead of playback");
    let later = h.advance(1_000);
    // 1 s at 8 kHz µ-law in 200 ms deltas; the resampler keeps its 0.5 ms look-ahead until the
    // phrase ends.
    assert_eq!(deltas(&later), [1_600, 1_596], "the rest follows as the client plays");
    let mut done = h.input(Input::Tts(tts, TtsEvent::Done));
    done.extend(h.advance(100));
    assert_eq!(deltas(&done), [4], "the end of the phrase releases the tail");
}

#[test]
fn audio_is_paced_on_the_playback_clock() {
    let mut h = Harness::new();
    let out = h.send(json!({"type": "response.create"}));
    let (job, _) = llm_job(&out);
    say(&mut h, job, "Ten seconds of speech.");
    let (tts, _) = tts_jobs(&h.out)[0].clone();
    tts_audio(&mut h, tts, 10_000);
    h.input(Input::Tts(tts, TtsEvent::Done));
    let sent =
        |outputs: &[Output]| events(outputs).iter().filter(|e| matches!(e, ServerEvent::AudioDelta { .. })).count();
    assert_eq!(sent(&h.out), 3);
    assert!(h.session.has_active_response(), "a response is in progress while it is spoken");
    let due = h.session.poll_timeout().expect("the session asks to be woken");
    assert_eq!(due, h.now + Duration::from_millis(100), "when 500 ms are left in the client's buffer");
    let out = h.advance(5_000);
    assert_eq!(sent(&out), 25, "200 ms per 200 ms of playback");
    let out = h.advance(5_000);
    assert_eq!(sent(&out), 22);
    assert_eq!(done(&out).status, ResponseStatus::Completed);
    assert_eq!(h.session.poll_timeout(), None);
}

#[test]
fn barge_in_cancels_and_truncates_at_what_was_played() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "auto_truncate": true, "speech_duration_ms": 100}}}));
    let (item_id, tts) = speaking(&mut h, 2_000); // "one two three four." arrives, 2 s of audio
    h.advance(600); // the client has played 600 ms
    let out = h.audio(200, 0.9); // the user speaks over it; detection takes 100 ms of speech
    let evs = events(&out);
    assert_eq!(
        types(&out)[..3],
        ["input_audio_buffer.speech_started", "response.audio.done", "response.audio_transcript.done"]
    );
    assert!(out.contains(&Output::Cancel(tts)));
    assert_eq!(done(&out).status, ResponseStatus::Cancelled { reason: "turn_detected" });
    let truncated = evs.iter().find_map(|e| {
        if let ServerEvent::ItemTruncated { item_id, audio_end_ms, .. } = e {
            Some((item_id.clone(), *audio_end_ms))
        } else {
            None
        }
    });
    assert_eq!(truncated, Some((item_id.clone(), 600)));
    // 600 of the phrase's 2000 ms: the first 30% of its four words.
    let out = h.send(json!({"type": "conversation.item.retrieve", "item_id": item_id}));
    match &events(&out)[0] {
        ServerEvent::ItemRetrieved { item } => {
            assert_eq!(item.text(), "one");
            assert_eq!(item.status.name(), "incomplete");
        }
        other => panic!("{other:?}"),
    }
    assert!(!types(&out).contains(&"output_audio_buffer.cleared"), "the client plays the audio itself");
}

#[test]
fn barge_in_with_an_avatar_clears_the_server_side_audio() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"avatar": {"character": "lisa"}, "turn_detection": {"type": "server_vad", "speech_duration_ms": 100}}}));
    speaking(&mut h, 1_000);
    h.advance(200);
    let out = h.audio(200, 0.9);
    assert!(types(&out).contains(&"output_audio_buffer.cleared"));
    assert!(!types(&out).contains(&"conversation.item.truncated"), "auto_truncate is off");
}

#[test]
fn no_barge_in_when_interrupt_response_is_off_or_playback_ended() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "interrupt_response": false, "speech_duration_ms": 100}}}));
    speaking(&mut h, 1_000);
    let out = h.audio(200, 0.9);
    assert!(!types(&out).contains(&"response.done"));
    // Interrupt on, but the answer has finished playing: nothing to truncate.
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "auto_truncate": true, "speech_duration_ms": 100}}}));
    let (_, tts) = speaking(&mut h, 500);
    finish_speaking(&mut h, tts, 500);
    h.advance(1_500);
    let out = h.audio(200, 0.9);
    assert_eq!(types(&out), ["input_audio_buffer.speech_started"]);
}

#[test]
fn phrases_are_spoken_in_order_one_at_a_time() {
    let mut h = Harness::new();
    let out = h.send(json!({"type": "response.create"}));
    let (job, _) = llm_job(&out);
    h.input(Input::Llm(job, LlmEvent::TextDelta("First one. Second".into())));
    h.input(Input::Llm(job, LlmEvent::TextDelta(" one! Third".into())));
    h.input(Input::Llm(job, LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false }));
    assert_eq!(tts_jobs(&h.out).len(), 1, "one phrase at a time");
    let mut spoken = Vec::new();
    for _ in 0..3 {
        let (tts, text) = tts_jobs(&h.out).last().cloned().unwrap();
        spoken.push(text);
        tts_audio(&mut h, tts, 100);
        h.input(Input::Tts(tts, TtsEvent::Done));
    }
    assert_eq!(spoken, ["First one.", "Second one!", "Third"]);
    let r = done(&h.out);
    assert!(
        matches!(&r.output[0].body, ItemBody::Message { content, .. } if content == &[Content::Audio { transcript: "First one. Second one! Third".into() }])
    );
    let transcript: String = events(&h.out)
        .iter()
        .filter_map(
            |e| if let ServerEvent::AudioTranscriptDelta { delta, .. } = e { Some(delta.clone()) } else { None },
        )
        .collect();
    assert_eq!(transcript, "First one. Second one! Third");
}

#[test]
fn client_truncate_checks_the_audio_and_cuts_the_transcript() {
    let mut h = Harness::new();
    let (item_id, tts) = speaking(&mut h, 1_000);
    finish_speaking(&mut h, tts, 1_000);
    h.advance(2_000);
    let out = h.send(
        json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 2_500}),
    );
    assert_eq!(errors(&out)[0].1.as_deref(), Some("audio_end_ms"));
    let out = h.send(
        json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 1, "audio_end_ms": 10}),
    );
    assert_eq!(errors(&out)[0].0, "invalid_truncate");
    let out = h.send(
        json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 1_500}),
    );
    assert!(matches!(events(&out)[0], ServerEvent::ItemTruncated { audio_end_ms: 1_500, .. }));
    let out = h.send(json!({"type": "conversation.item.retrieve", "item_id": item_id}));
    assert!(
        matches!(&events(&out)[0], ServerEvent::ItemRetrieved { item } if item.text() == "one two three four. five six")
    );
    // A user item has no assistant audio.
    user_text(&mut h, "hello");
    let user_id = match events(&h.out).last().unwrap() {
        ServerEvent::ItemCreated { item, .. } | ServerEvent::ItemDone { item, .. } => item.id.clone(),
        other => panic!("{other:?}"),
    };
    let out = h.send(json!({"type": "conversation.item.truncate", "item_id": user_id, "audio_end_ms": 0}));
    assert_eq!(errors(&out)[0].0, "invalid_truncate");
}

#[test]
fn item_done_names_each_items_own_predecessor() {
    let mut h = Harness::new();
    user_text(&mut h, "hi");
    let out = h.send(json!({"type": "response.create", "response": {"modalities": ["text"]}}));
    let (job, _) = llm_job(&out);
    h.input(Input::Llm(job, LlmEvent::TextDelta("Hello".into())));
    h.input(Input::Llm(job, LlmEvent::ToolCallStart { call_id: "c".into(), name: "f".into() }));
    let out = h.input(Input::Llm(job, LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false }));
    let done: Vec<(Option<String>, String)> = events(&out)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::ItemDone { previous_item_id, item } => Some((previous_item_id, item.id)),
            _ => None,
        })
        .collect();
    assert_eq!(done.len(), 2);
    assert_eq!(done[1].0.as_ref(), Some(&done[0].1), "the call follows the message");
    assert_ne!(done[0].0, None, "the message follows the user's item");
    assert_ne!(done[0].0.as_ref(), Some(&done[1].1));
}

#[test]
fn an_engine_returning_audio_at_0_hz_fails_the_response() {
    let mut h = Harness::new();
    let out = h.send(json!({"type": "response.create"}));
    let (job, _) = llm_job(&out);
    h.input(Input::Llm(job, LlmEvent::TextDelta("Hi there. ".into())));
    let (tts, _) = tts_jobs(&h.out)[0].clone();
    let out = h.input(Input::Tts(tts, TtsEvent::Audio { samples: vec![0; 10], sample_rate: 0 }));
    assert!(matches!(done(&out).status, ResponseStatus::Failed { .. }));
}

#[test]
fn pre_generated_messages_are_spoken_without_the_model() {
    let mut h = Harness::new();
    let out = h.send(json!({"type": "response.create", "response": {"pre_generated_assistant_message": {"content": [{"type": "text", "text": "Welcome back."}]}}}));
    assert!(!out.iter().any(|o| matches!(o, Output::StartLlm(..))));
    assert_eq!(tts_jobs(&out)[0].1, "Welcome back.");
}

#[test]
fn a_long_reply_is_synthesised_as_it_is_spoken_in_bounded_phrases() {
    let mut h = Harness::new();
    let text = "word ".repeat(20_000);
    let mut out = h.send(json!({"type": "response.create", "response": {"pre_generated_assistant_message": text}}));
    // Each phrase comes back as 3 s of audio at once: synthesis stops once 8 s wait unsent.
    let mut phrases = Vec::new();
    for _ in 0..10 {
        let Some((job, phrase)) = tts_jobs(&out).pop() else { break };
        phrases.push(phrase);
        tts_audio(&mut h, job, 3_000);
        out = h.input(Input::Tts(job, TtsEvent::Done));
    }
    assert!((3..=5).contains(&phrases.len()), "{} phrases synthesised ahead", phrases.len());
    assert!(phrases.iter().all(|p| p.len() <= 240 && p.split(' ').all(|w| w == "word")), "{phrases:?}");
    // As the audio goes out, the next phrase is asked for.
    let out = h.advance(4_000);
    assert_eq!(tts_jobs(&out).len(), 1);
}

#[test]
fn texts_past_their_limits_are_refused_naming_the_field() {
    let limits = Limits { max_text_bytes: 100, max_conversation_bytes: 1_000, ..Limits::default() };
    let mut h = Harness::with_limits(limits);
    let long = "x".repeat(101);
    let cases = [
        (json!({"type": "session.update", "session": {"instructions": long}}), "session.instructions"),
        (json!({"type": "response.create", "response": {"instructions": long}}), "response.instructions"),
        (
            json!({"type": "response.create", "response": {"pre_generated_assistant_message": long}}),
            "response.pre_generated_assistant_message",
        ),
        (json!({"type": "session.update", "session": {"metadata": {"k": long}}}), "session.metadata"),
        (
            json!({"type": "session.update", "session": {"input_audio_transcription": {"model": "whisper-1", "prompt": long}}}),
            "session.input_audio_transcription.prompt",
        ),
        (
            json!({"type": "session.update", "session": {"tools": [{"type": "function", "name": "f", "description": long}]}}),
            "session.tools",
        ),
        (
            json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c", "output": long}}),
            "item.output",
        ),
    ];
    for (event, param) in cases {
        let errors = errors(&h.send(event));
        assert_eq!(errors.len(), 1, "{param}");
        assert_eq!((errors[0].0.as_str(), errors[0].1.as_deref()), ("string_above_max_length", Some(param)));
    }
    // Items cost their text and a fixed amount each (and per content part): some fit, then none.
    let item = |text: &str| json!({"type": "conversation.item.create", "item": {"id": format!("i{}", text.len()), "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}});
    let mut added = 0;
    let refused = loop {
        let out = h.send(item(&"y".repeat(80 + added)));
        if let Some(e) = errors(&out).pop() {
            break e;
        }
        added += 1;
        assert!(added < 10, "no budget");
    };
    assert_eq!(refused.0, "session_memory_exceeded");
    assert!((2..=4).contains(&added), "{added} items fit");
    assert_eq!(h.session.item_count(), added, "nothing lost, nothing added");
    // Parts are not free: a message of many empty parts is refused too.
    let parts: Vec<Value> = (0..50).map(|_| json!({"type": "input_text", "text": ""})).collect();
    let out = h.send(
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": parts}}),
    );
    assert_eq!(errors(&out)[0].0, "session_memory_exceeded");
    // A pre-generated reply needs room too; deleting an item makes room again.
    let out =
        h.send(json!({"type": "response.create", "response": {"pre_generated_assistant_message": "z".repeat(100)}}));
    assert_eq!(errors(&out)[0].0, "session_memory_exceeded");
    h.send(json!({"type": "conversation.item.delete", "item_id": "i80"}));
    let out = h.send(item("fits again"));
    assert!(errors(&out).is_empty(), "{:?}", errors(&out));
}

#[test]
fn floods_are_limited_with_one_error_a_second() {
    let mut h = Harness::with_limits(Limits { events_per_second: 10.0, burst: 20.0, ..Limits::default() });
    let mut out = Vec::new();
    for _ in 0..100 {
        out.extend(h.send(json!({"type": "input_audio_buffer.clear"})));
    }
    assert_eq!(types(&out).iter().filter(|t| **t == "input_audio_buffer.cleared").count(), 20);
    assert_eq!(errors(&out).iter().filter(|e| e.0 == "rate_limit_exceeded").count(), 1);
    h.advance(1_000);
    let out = h.send(json!({"type": "input_audio_buffer.clear"}));
    assert_eq!(types(&out), ["input_audio_buffer.cleared"], "tokens refill with time");
}

#[test]
fn invalid_frames_become_errors_and_the_session_goes_on() {
    let mut h = Harness::new();
    let cases = [
        json!({"type": "no.such.event", "event_id": "a"}),
        json!({"type": "session.update", "session": {"voice": 5}}),
        json!({"type": "conversation.item.create"}),
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "robot", "content": []}}),
        json!({"type": "conversation.item.truncate", "item_id": "x"}),
        json!({"event_id": "no-type"}),
    ];
    for case in cases {
        let out = h.send(case.clone());
        assert_eq!(errors(&out).len(), 1, "{case}");
    }
    let out = h.input(Input::Invalid(client::parse("{not json").unwrap_err()));
    assert_eq!(errors(&out)[0].0, "invalid_json");
    user_text(&mut h, "still here");
    let out = h.send(json!({"type": "response.create", "response": {"modalities": ["text"]}}));
    let (job, _) = llm_job(&out);
    assert_eq!(done(&say(&mut h, job, "yes")).status, ResponseStatus::Completed);
}

#[test]
fn word_timings_release_the_transcript_with_the_audio_and_cut_it_at_a_word() {
    use brazen_providers::WordTiming;
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"output_audio_timestamp_types": ["word"], "turn_detection": {"type": "server_vad", "auto_truncate": true, "speech_duration_ms": 100}}}));
    let out = h.send(json!({"type": "response.create"}));
    let (job, _) = llm_job(&out);
    h.input(Input::Llm(job, LlmEvent::TextDelta("Your parcel arrives tomorrow. ".into())));
    let (tts, _) = tts_jobs(&h.out)[0].clone();
    let word =
        |text: &str, start: f64, end: f64| WordTiming { text: text.into(), start_ms: start, duration_ms: end - start };
    h.input(Input::Tts(
        tts,
        TtsEvent::Words(vec![
            word("Your", 0.0, 200.0),
            word("parcel", 200.0, 600.0),
            word("arrives", 600.0, 1_000.0),
            word("tomorrow.", 1_000.0, 2_000.0),
        ]),
    ));
    let out = tts_audio(&mut h, tts, 2_000);
    let transcript = |outputs: &[Output]| -> Vec<String> {
        events(outputs)
            .into_iter()
            .filter_map(|e| if let ServerEvent::AudioTranscriptDelta { delta, .. } = e { Some(delta) } else { None })
            .collect()
    };
    let stamps = |outputs: &[Output]| -> Vec<(u64, u64, String)> {
        events(outputs)
            .into_iter()
            .filter_map(|e| match e {
                ServerEvent::AudioTimestampDelta { audio_offset_ms, audio_duration_ms, text, .. } => {
                    Some((audio_offset_ms, audio_duration_ms, text))
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(transcript(&out), ["Your", " parcel"], "only the words whose audio went out (600 ms)");
    assert_eq!(stamps(&out), [(0, 200, "Your".to_owned()), (200, 400, "parcel".to_owned())]);
    let stamp = events(&out).into_iter().find(|e| matches!(e, ServerEvent::AudioTimestampDelta { .. })).unwrap();
    assert_eq!(stamp.wire_type(Dialect::VoiceLive), Some("response.audio_timestamp.delta"));
    assert_eq!(stamp.wire_type(Dialect::Ga), None, "OpenAI has no such event");
    let out = h.advance(200);
    assert_eq!(transcript(&out), [" arrives"]);
    // The user speaks at 700 ms of playback: the item keeps the words heard in full.
    h.advance(500);
    let out = h.audio(200, 0.9);
    assert_eq!(done(&out).status, ResponseStatus::Cancelled { reason: "turn_detected" });
    let item_id = events(&out)
        .iter()
        .find_map(|e| if let ServerEvent::ItemTruncated { item_id, .. } = e { Some(item_id.clone()) } else { None })
        .expect("truncated");
    let out = h.send(json!({"type": "conversation.item.retrieve", "item_id": item_id}));
    assert!(
        matches!(&events(&out)[0], ServerEvent::ItemRetrieved { item } if item.text() == "Your parcel"),
        "{:?}",
        events(&out)[0]
    );
}

#[test]
fn voice_volume_scales_the_audio() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"voice": {"type": "azure-standard", "name": "v", "volume": "50"}}}));
    let out = h.send(json!({"type": "response.create"}));
    let (job, _) = llm_job(&out);
    h.input(Input::Llm(job, LlmEvent::TextDelta("Hi there. ".into())));
    let (tts, _) = tts_jobs(&h.out)[0].clone();
    let out = h.input(Input::Tts(tts, TtsEvent::Audio { samples: vec![10_000; 2_400], sample_rate: 24_000 }));
    let pcm: Vec<i16> = events(&out)
        .iter()
        .filter_map(
            |e| if let ServerEvent::AudioDelta { delta, .. } = e { Some(B64.decode(delta).unwrap()) } else { None },
        )
        .flatten()
        .collect::<Vec<u8>>()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert!(pcm.len() > 2_000 && pcm[100..].iter().all(|s| *s == 5_000), "half volume");
}

/// The transcription deltas among `outputs`.
fn transcription_deltas(outputs: &[Output]) -> Vec<String> {
    events(outputs)
        .into_iter()
        .filter_map(|e| if let ServerEvent::TranscriptionDelta { delta, .. } = e { Some(delta) } else { None })
        .collect()
}

#[test]
fn whisper_1_sends_the_transcript_once_the_turn_is_over_as_openai_does() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {
        "input_audio_transcription": {"model": "whisper-1"},
        "turn_detection": {"type": "server_vad", "create_response": false}
    }}));
    // 2.5 s of speech: nothing is transcribed while the user speaks.
    let out = h.audio(2_500, 0.9);
    assert!(previews(&out).is_empty(), "no preview while speaking: {:?}", types(&out));
    // Each pause is previewed (its words are the turn's if it ends there); no word goes out,
    // even where two previews agree.
    let mut sent = Vec::new();
    for words in ["Where is my", "Where is my order?"] {
        let out = h.audio(200, 0.0);
        let pause = previews(&out);
        assert_eq!(pause.len(), 1, "{:?}", types(&out));
        sent.extend(types(&h.input(Input::Asr(pause[0].0, AsrEvent::Done(words.into())))));
        if words == "Where is my" {
            sent.extend(types(&h.audio(800, 0.9)));
        }
    }
    assert!(!sent.contains(&"conversation.item.input_audio_transcription.delta"), "{sent:?}");
    let out = h.audio(600, 0.0);
    assert_eq!(
        transcription_deltas(&out),
        ["Where is my order?"],
        "one delta with the whole transcript: {:?}",
        types(&out)
    );
    assert!(types(&out).contains(&"conversation.item.input_audio_transcription.completed"));
}

#[test]
fn transcripts_stream_while_the_user_speaks_and_complete_after_the_turn() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {
        "input_audio_transcription": {"model": "gpt-4o-transcribe"},
        "turn_detection": {"type": "server_vad", "create_response": false}
    }}));
    // Speech starts after 200 ms; the first preview asks for 700 ms of the turn.
    let out = h.audio(800, 0.9);
    let first = previews(&out);
    assert_eq!(first.len(), 1, "{:?}", types(&out));
    assert!(!urgent(&out), "a courtesy preview of the user's own turn is not urgent");
    // One preview at a time: more speech while it is decoded asks for nothing.
    assert!(previews(&h.audio(1_000, 0.9)).is_empty());
    assert!(transcription_deltas(&h.input(Input::Asr(first[0].0, AsrEvent::Done("Where is".into())))).is_empty());
    let second = previews(&h.audio(100, 0.9));
    assert_eq!(second.len(), 1);
    assert!(second[0].1 > first[0].1, "the next preview has more of the turn");
    // What two previews agree on goes out, once.
    let out = h.input(Input::Asr(second[0].0, AsrEvent::Done("where is my orders".into())));
    assert_eq!(transcription_deltas(&out), ["where is"]);
    let third = previews(&h.audio(700, 0.9));
    let out = h.input(Input::Asr(third[0].0, AsrEvent::Done("Where is my order, please".into())));
    assert_eq!(transcription_deltas(&out), [" my"]);
    let fourth = previews(&h.audio(700, 0.9));
    assert_eq!(fourth.len(), 1);

    // The turn ends while a preview is decoded: it is cancelled, and the final transcript is
    // asked for; its rest follows as a delta, then `completed` with the whole text.
    let out = h.audio(600, 0.0);
    assert!(out.iter().any(|o| matches!(o, Output::Cancel(j) if *j == fourth[0].0)));
    let (job, request) = asr_job(&out);
    assert!(!request.preview);
    let out = h.input(Input::Asr(job, AsrEvent::Done("where is my order, please?".into())));
    assert_eq!(transcription_deltas(&out), [" order, please?"]);
    let completed = events(&out).into_iter().find_map(|e| match e {
        ServerEvent::TranscriptionCompleted { transcript, .. } => Some(transcript),
        _ => None,
    });
    assert_eq!(completed.as_deref(), Some("where is my order, please?"));
    // A late preview result changes nothing.
    assert!(h.input(Input::Asr(fourth[0].0, AsrEvent::Done("x".into()))).is_empty());
}

#[test]
fn without_transcription_there_are_no_previews() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad"}}}));
    let out = h.audio(3_000, 0.9);
    assert!(!out.iter().any(|o| matches!(o, Output::StartAsr(..))), "{:?}", types(&out));
}

#[test]
fn a_pause_gets_a_preview_of_the_whole_turn_before_the_silence_is_confirmed() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {
        "input_audio_transcription": {"model": "gpt-4o-mini-transcribe"},
        "turn_detection": {"type": "server_vad", "create_response": false, "silence_duration_ms": 500}
    }}));
    let first = previews(&h.audio(800, 0.9));
    assert_eq!(first.len(), 1);
    h.input(Input::Asr(first[0].0, AsrEvent::Done("where is".into())));
    // Less new speech than a step, and a pause shorter than 150 ms between words: nothing.
    assert!(previews(&h.audio(200, 0.9)).is_empty());
    assert!(previews(&h.audio(100, 0.0)).is_empty());
    assert!(previews(&h.audio(100, 0.9)).is_empty());
    // A longer pause: the whole turn so far is decoded while the silence is confirmed.
    let out = h.audio(200, 0.0);
    let pause = previews(&out);
    assert_eq!(pause.len(), 1, "{:?}", types(&out));
    assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"));
    assert!(pause[0].1 >= first[0].1 + 400 * 24, "all the speech since: {} vs {}", pause[0].1, first[0].1);
    h.input(Input::Asr(pause[0].0, AsrEvent::Done("where is my order".into())));
    // Once per pause.
    assert!(previews(&h.audio(200, 0.0)).is_empty());
    // The silence is confirmed: that preview holds every word, so it is the final transcript
    // and nothing is decoded again.
    let out = h.audio(100, 0.0);
    assert!(types(&out).contains(&"input_audio_buffer.speech_stopped"), "{:?}", types(&out));
    assert!(!out.iter().any(|o| matches!(o, Output::StartAsr(..))), "{:?}", types(&out));
    let completed = events(&out).into_iter().find_map(|e| match e {
        ServerEvent::TranscriptionCompleted { transcript, .. } => Some(transcript),
        _ => None,
    });
    assert_eq!(completed.as_deref(), Some("where is my order"));

    // Still being decoded when the silence is confirmed: it is kept, and its result completes
    // the turn.
    let speak = |h: &mut Harness| {
        for (job, _) in previews(&h.audio(800, 0.9)) {
            h.input(Input::Asr(job, AsrEvent::Done("and".into())));
        }
    };
    speak(&mut h);
    let out = h.audio(200, 0.0);
    let pause = previews(&out);
    assert_eq!(pause.len(), 1, "{:?}", types(&out));
    let out = h.audio(300, 0.0);
    assert!(types(&out).contains(&"input_audio_buffer.speech_stopped"), "{:?}", types(&out));
    assert!(!out.iter().any(|o| matches!(o, Output::StartAsr(..) | Output::Cancel(_))), "{out:?}");
    let out = h.input(Input::Asr(pause[0].0, AsrEvent::Done("and my refund".into())));
    assert!(types(&out).contains(&"conversation.item.input_audio_transcription.completed"), "{:?}", types(&out));

    // An engine that declines previews answers them empty: the turn is transcribed after all,
    // whether the empty answer came before the silence was confirmed or after.
    speak(&mut h);
    let pause = previews(&h.audio(200, 0.0));
    let out = h.audio(300, 0.0);
    assert!(types(&out).contains(&"input_audio_buffer.speech_stopped"));
    let out = h.input(Input::Asr(pause[0].0, AsrEvent::Done(String::new())));
    let (job, request) = asr_job(&out);
    assert!(!request.preview && job != pause[0].0, "a final transcription");
    let out = h.input(Input::Asr(job, AsrEvent::Done("[speech 1.0 s]".into())));
    assert!(types(&out).contains(&"conversation.item.input_audio_transcription.completed"));
    speak(&mut h);
    let pause = previews(&h.audio(200, 0.0));
    h.input(Input::Asr(pause[0].0, AsrEvent::Done(" ".into())));
    let out = h.audio(300, 0.0);
    let (_, request) = asr_job(&out);
    assert!(!request.preview, "a final transcription");

    // A preview that fails cannot stand in: the turn is transcribed, the session goes on.
    speak(&mut h);
    let pause = previews(&h.audio(200, 0.0));
    h.input(Input::Asr(pause[0].0, AsrEvent::Failed("worker stopped".into())));
    let out = h.audio(300, 0.0);
    assert!(types(&out).contains(&"input_audio_buffer.speech_stopped"));
    let (job, request) = asr_job(&out);
    assert!(!request.preview && job != pause[0].0, "a final transcription");

    // Speech after the pause's preview (still decoding, so the next pause gets none): it is
    // dropped, and the turn gets a final transcript of all its audio.
    speak(&mut h);
    let pause = previews(&h.audio(200, 0.0));
    assert_eq!(pause.len(), 1);
    h.audio(300, 0.9);
    let out = h.audio(600, 0.0);
    assert!(types(&out).contains(&"input_audio_buffer.speech_stopped"), "{:?}", types(&out));
    assert!(out.iter().any(|o| matches!(o, Output::Cancel(j) if *j == pause[0].0)), "{out:?}");
    let (_, request) = asr_job(&out);
    assert!(!request.preview, "a final transcription of the whole turn");
}

#[test]
fn the_model_is_asked_to_compute_prompts_ahead() {
    let prepared = |outputs: &[Output]| -> Vec<brazen_providers::LlmRequest> {
        outputs.iter().filter_map(|o| if let Output::PrepareLlm(r) = o { Some(r.clone()) } else { None }).collect()
    };
    let mut h = Harness::new();
    // New instructions or tools: the prompt can be computed before anyone speaks.
    let out = h.send(json!({"type": "session.update", "session": {"instructions": "Be Ava.", "tools": [
        {"type": "function", "name": "get_order_status", "parameters": {"type": "object"}}
    ]}}));
    let requests = prepared(&out);
    assert_eq!(requests.len(), 1, "{:?}", types(&out));
    assert_eq!(requests[0].instructions, "Be Ava.");
    assert_eq!(requests[0].tools.len(), 1);
    assert!(requests[0].items.is_empty());
    // Other settings leave the prompt as it was.
    assert!(prepared(&h.send(json!({"type": "session.update", "session": {"voice": "alloy"}}))).is_empty());

    // While the user speaks, what they said so far is the next prompt's likely end.
    h.send(json!({"type": "session.update", "session": {
        "input_audio_transcription": {"model": "azure-speech"},
        "turn_detection": {"type": "server_vad", "create_response": false}
    }}));
    let preview = |outputs: &[Output]| -> JobId {
        outputs
            .iter()
            .find_map(|o| match o {
                Output::StartAsr(j, r) if r.preview => Some(*j),
                _ => None,
            })
            .expect("a preview was asked for")
    };
    let job = preview(&h.audio(800, 0.9));
    let out = h.input(Input::Asr(job, AsrEvent::Done("Where is my".into())));
    let requests = prepared(&out);
    assert_eq!(requests.len(), 1);
    let last = requests[0].items.last().unwrap();
    assert_eq!((last.role(), last.text()), (Some(brazen_protocol::Role::User), "Where is my".to_owned()));
    // An empty preview asks for nothing.
    let job = preview(&h.audio(800, 0.9));
    assert!(prepared(&h.input(Input::Asr(job, AsrEvent::Done(" ".into())))).is_empty());

    // An answer given: the conversation with it is computed while it plays (the user speaks
    // next); a cancelled one is not.
    let (job, _) = llm_job(&h.send(json!({"type": "response.create", "response": {"modalities": ["text"]}})));
    let out = say(&mut h, job, "It ships today.");
    assert!(types(&out).contains(&"response.done"), "{:?}", types(&out));
    let requests = prepared(&out);
    assert_eq!(requests.len(), 1, "{:?}", types(&out));
    let last = requests[0].items.last().unwrap();
    assert_eq!((last.role(), last.text()), (Some(brazen_protocol::Role::Assistant), "It ships today.".to_owned()));
    let (job, _) = llm_job(&h.send(json!({"type": "response.create", "response": {"modalities": ["text"]}})));
    h.input(Input::Llm(job, LlmEvent::TextDelta("And".into())));
    assert!(prepared(&h.send(json!({"type": "response.cancel"}))).is_empty());
    // An answer outside the conversation leaves it as it was: nothing new to compute.
    let out = h.send(json!({"type": "response.create", "response": {"conversation": "none", "modalities": ["text"]}}));
    let (job, _) = llm_job(&out);
    let out = say(&mut h, job, "Out of band.");
    assert!(types(&out).contains(&"response.done"), "{:?}", types(&out));
    assert!(prepared(&out).is_empty());
}

#[test]
fn lip_sync_events_follow_the_audio_and_stop_at_a_barge_in() {
    use brazen_avatar::Phone;
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {
        "animation": {"model_name": "default", "outputs": ["viseme_id", "blendshapes"]},
        "turn_detection": {"type": "server_vad", "speech_duration_ms": 100}
    }}));
    let out = h.send(json!({"type": "response.create"}));
    let (job, _) = llm_job(&out);
    h.input(Input::Llm(job, LlmEvent::TextDelta("Hello mama. ".into())));
    let (tts, _) = tts_jobs(&h.out)[0].clone();
    // "^həloʊ mɑmɑ$" timed over 2 s.
    let timed = [
        ('^', 100.0),
        ('h', 100.0),
        ('ə', 150.0),
        ('l', 150.0),
        ('o', 200.0),
        ('ʊ', 100.0),
        (' ', 0.0),
        ('m', 200.0),
        ('ɑ', 300.0),
        ('m', 200.0),
        ('ɑ', 300.0),
        ('$', 200.0),
    ];
    let mut t = 0.0;
    let phones: Vec<Phone> = timed
        .iter()
        .map(|&(symbol, d)| {
            let p = Phone { symbol, start_ms: t, duration_ms: d };
            t += d;
            p
        })
        .collect();
    h.input(Input::Tts(tts, TtsEvent::Phones(phones)));
    let visemes = |outputs: &[Output]| -> Vec<(u64, u8)> {
        events(outputs)
            .into_iter()
            .filter_map(|e| match e {
                ServerEvent::AnimationVisemeDelta { audio_offset_ms, viseme_id, .. } => {
                    Some((audio_offset_ms, viseme_id))
                }
                _ => None,
            })
            .collect()
    };
    let frames = |outputs: &[Output]| -> Vec<(usize, usize)> {
        events(outputs)
            .into_iter()
            .filter_map(|e| match e {
                ServerEvent::AnimationBlendshapesDelta { frame_index, frames, .. } => {
                    assert!(frames.iter().all(|f| f.len() == 55));
                    Some((frame_index, frames.len()))
                }
                _ => None,
            })
            .collect()
    };
    // The first 600 ms of audio go out at once (the client's buffer lead): the visemes and
    // frames of those 600 ms with them, nothing later.
    let out = tts_audio(&mut h, tts, 2_000);
    assert_eq!(visemes(&out), [(0, 0), (100, 12), (200, 1), (350, 14), (500, 8)]);
    let sent: usize = frames(&out).iter().map(|(_, n)| n).sum();
    assert_eq!(sent, 36, "600 ms at 60 fps");
    let viseme = events(&out).into_iter().find(|e| matches!(e, ServerEvent::AnimationVisemeDelta { .. })).unwrap();
    assert_eq!(viseme.wire_type(Dialect::VoiceLive), Some("response.animation_viseme.delta"));
    let json = viseme.to_json(Dialect::VoiceLive, "e").unwrap();
    assert_eq!((json["audio_offset_ms"].as_u64(), json["viseme_id"].as_u64()), (Some(0), Some(0)));
    // As playback goes on, the rest follows in order, frame indices continuing.
    let out = h.advance(400);
    assert_eq!(visemes(&out), [(700, 4), (800, 21)], "up to the 1,000 ms of audio sent");
    let more = frames(&out);
    assert_eq!(more[0].0, 36);
    assert_eq!(more.iter().map(|(_, n)| n).sum::<usize>(), 24);
    assert_eq!(visemes(&h.advance(200)), [(1000, 2)]);
    // The user barges in at 1.2 s of playback: nothing after what was sent.
    let out = h.audio(200, 0.9);
    assert!(visemes(&out).is_empty() && frames(&out).is_empty());
    let kinds = types(&out);
    let all: Vec<&str> = events(&out).iter().filter_map(|e| e.wire_type(Dialect::VoiceLive)).collect();
    assert!(
        all.contains(&"response.animation_viseme.done") && all.contains(&"response.animation_blendshapes.done"),
        "{all:?}"
    );
    assert!(kinds.contains(&"response.done"), "{kinds:?}");
}

#[test]
fn animation_outputs_are_checked() {
    let mut h = Harness::new();
    let out = h.send(json!({"type": "session.update", "session": {"animation": {"outputs": ["visemes"]}}}));
    let errs = errors(&out);
    assert_eq!(errs.len(), 1, "{:?}", types(&out));
    assert_eq!(errs[0].1.as_deref(), Some("session.animation.outputs[0]"));
    // Without an animation object there are no animation events.
    let out = h.send(json!({"type": "response.create"}));
    let (job, _) = llm_job(&out);
    h.input(Input::Llm(job, LlmEvent::TextDelta("Hi. ".into())));
    let (tts, _) = tts_jobs(&h.out)[0].clone();
    h.input(Input::Tts(
        tts,
        TtsEvent::Phones(vec![brazen_avatar::Phone { symbol: 'h', start_ms: 0.0, duration_ms: 100.0 }]),
    ));
    let out = tts_audio(&mut h, tts, 300);
    assert!(!events(&out).iter().any(|e| matches!(
        e,
        ServerEvent::AnimationVisemeDelta { .. } | ServerEvent::AnimationBlendshapesDelta { .. }
    )));
}

#[test]
fn avatar_characters_are_checked_and_azure_names_accepted() {
    let mut h = Harness::new();
    let out = h.send(json!({"type": "session.update", "session": {
        "avatar": {"character": "lisa", "style": "casual-sitting"}}}));
    assert!(errors(&out).is_empty(), "{:?}", errors(&out));
    assert!(types(&out).contains(&"session.updated"));
    for (avatar, param, mentions) in [
        (json!({"character": "bob"}), "session.avatar.character", "lisa"),
        (json!({"character": "lisa", "style": "sporty"}), "session.avatar.style", "casual-sitting"),
        (json!({"character": 7}), "session.avatar.character", ""),
        (json!({"character": "lisa", "customized": true}), "session.avatar.customized", "characters folder"),
        (
            json!({"character": "lisa", "video": {"resolution": {"width": 641, "height": 480}}}),
            "session.avatar.video.resolution.width",
            "even",
        ),
        (json!({"video": {"background": {"color": "green"}}}), "session.avatar.video.background.color", "#RRGGBB"),
    ] {
        let out = h.send(json!({"type": "session.update", "session": {"avatar": avatar, "instructions": "changed"}}));
        let errs = errors(&out);
        assert_eq!(errs.len(), 1, "{avatar}: {:?}", types(&out));
        assert_eq!(errs[0].1.as_deref(), Some(param), "{avatar}");
        let message = events(&out)
            .into_iter()
            .find_map(|e| if let ServerEvent::Error(e) = e { Some(e.message) } else { None })
            .unwrap();
        assert!(message.contains(mentions), "{message}");
        assert!(!types(&out).contains(&"session.updated"), "the whole update is refused");
    }
    let out = h.send(json!({"type": "session.update", "session": {"voice": "alloy"}}));
    let updated =
        events(&out).into_iter().find_map(|e| if let ServerEvent::SessionUpdated(c) = e { Some(c) } else { None });
    let config = updated.unwrap();
    assert_eq!(config.instructions, "", "nothing of the refused updates was applied");
    assert_eq!(config.avatar.as_ref().unwrap().to_json()["character"], "lisa");
}

#[test]
fn a_phrase_keeps_all_its_timings_whatever_their_order() {
    use brazen_avatar::Phone;
    use brazen_providers::WordTiming;
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"animation": {"outputs": ["viseme_id"]}}}));
    let out = h.send(json!({"type": "response.create"}));
    let (job, _) = llm_job(&out);
    h.input(Input::Llm(job, LlmEvent::TextDelta("Hi you. ".into())));
    let (tts, _) = tts_jobs(&h.out)[0].clone();
    let out =
        h.input(Input::Tts(tts, TtsEvent::Phones(vec![Phone { symbol: 'h', start_ms: 0.0, duration_ms: 300.0 }])));
    assert!(types(&out).is_empty(), "nothing before the audio: {:?}", types(&out));
    assert_eq!(h.session.poll_timeout(), None, "no wake-up while the phrase waits for its audio");
    let words = vec![
        WordTiming { text: "Hi".into(), start_ms: 0.0, duration_ms: 150.0 },
        WordTiming { text: "you.".into(), start_ms: 150.0, duration_ms: 150.0 },
    ];
    h.input(Input::Tts(tts, TtsEvent::Words(words)));
    let out = tts_audio(&mut h, tts, 300);
    let transcript: Vec<String> = events(&out)
        .into_iter()
        .filter_map(|e| if let ServerEvent::AudioTranscriptDelta { delta, .. } = e { Some(delta) } else { None })
        .collect();
    assert_eq!(transcript, ["Hi", " you."], "word by word");
    assert!(events(&out).iter().any(|e| matches!(e, ServerEvent::AnimationVisemeDelta { viseme_id: 12, .. })));
}

mod avatar_link {
    use super::*;
    use brazen_engine::avatar_link::{AvatarCommand, AvatarEvent, AvatarTransport};
    use brazen_protocol::avatar::Background;

    const SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

    fn offer() -> String {
        B64.encode(json!({"type": "offer", "sdp": SDP}).to_string())
    }

    fn commands(outputs: &[Output]) -> Vec<AvatarCommand> {
        outputs.iter().filter_map(|o| if let Output::Avatar(c) = o { Some(c.clone()) } else { None }).collect()
    }

    /// A session with a connected avatar (lisa on the server's STUN server).
    fn connected() -> Harness {
        let mut h = Harness::with_ice_servers(vec![json!({"urls": ["stun:127.0.0.1:3478"]})]);
        h.send(
            json!({"type": "session.update", "session": {"avatar": {"character": "lisa", "style": "casual-sitting"}}}),
        );
        h.send(json!({"type": "session.avatar.connect", "client_sdp": offer()}));
        h.input(Input::Avatar(AvatarEvent::Answered("v=0 answer".into())));
        h
    }

    #[test]
    fn connecting_needs_an_avatar_and_an_offer_and_happens_once() {
        let mut h = Harness::with_ice_servers(vec![json!({"urls": ["stun:127.0.0.1:3478"]})]);
        let out = h.send(json!({"type": "session.avatar.connect", "client_sdp": offer()}));
        assert_eq!(errors(&out)[0].0, "avatar_not_configured");
        // session.updated carries the server's ICE servers, which the samples wait for.
        let out = h.send(json!({"type": "session.update", "session": {"avatar": {"character": "lisa"}}}));
        let Some(ServerEvent::SessionUpdated(config)) = events(&out).pop() else { panic!("{:?}", types(&out)) };
        assert_eq!(config.avatar.unwrap().to_json()["ice_servers"], json!([{"urls": ["stun:127.0.0.1:3478"]}]));
        // A bad offer names the field; nothing starts.
        let out = h.send(json!({"type": "session.avatar.connect", "client_sdp": "%%%"}));
        assert_eq!(errors(&out)[0].0, "invalid_value");
        assert_eq!(errors(&out)[0].1.as_deref(), Some("client_sdp"));
        assert!(commands(&out).is_empty());
        // A good one asks the driver to answer it with the character's look.
        let out = h.send(json!({"type": "session.avatar.connect", "client_sdp": offer()}));
        let cmds = commands(&out);
        let [AvatarCommand::Connect { transport: AvatarTransport::WebRtc { offer_sdp }, video, .. }] = cmds.as_slice()
        else {
            panic!("{out:?}")
        };
        assert_eq!(offer_sdp, SDP);
        assert_eq!(video.resolution, (1920, 1080));
        let out = h.send(json!({"type": "session.avatar.connect", "client_sdp": offer()}));
        assert_eq!(errors(&out)[0].0, "avatar_already_connected");
        // The answer goes back as base64 JSON.
        let out = h.input(Input::Avatar(AvatarEvent::Answered("v=0 answer".into())));
        let evs = events(&out);
        let [ServerEvent::AvatarConnecting { server_sdp }] = evs.as_slice() else { panic!("{out:?}") };
        let answer: Value = serde_json::from_slice(&B64.decode(server_sdp).unwrap()).unwrap();
        assert_eq!(answer, json!({"type": "answer", "sdp": "v=0 answer"}));
        assert_eq!(events(&out)[0].wire_type(Dialect::VoiceLive), Some("session.avatar.connecting"));
        // Once the connection closes, the client may connect again.
        h.input(Input::Avatar(AvatarEvent::Closed));
        let out = h.send(json!({"type": "session.avatar.connect", "client_sdp": offer()}));
        assert!(matches!(commands(&out).as_slice(), [AvatarCommand::Connect { .. }]));
    }

    #[test]
    fn a_background_image_goes_to_the_driver_and_one_it_cannot_use_is_an_error() {
        let mut h = Harness::new();
        let image = json!({"image_url": "https://example.com/office.png"});
        h.send(json!({"type": "session.update", "session": {"avatar": {"character": "lisa", "video": {"background": image}}}}));
        let out = h.send(json!({"type": "session.avatar.connect", "client_sdp": offer()}));
        let cmds = commands(&out);
        let [AvatarCommand::Connect { video, .. }] = cmds.as_slice() else { panic!("{out:?}") };
        assert_eq!(video.background, Background::Image("https://example.com/office.png".into()));
        h.input(Input::Avatar(AvatarEvent::Answered("v=0".into())));
        // The driver could not fetch it: the client hears why, naming the field; the avatar goes on.
        let param = "session.avatar.video.background.image_url".to_owned();
        let out = h.input(Input::Avatar(AvatarEvent::PictureFailed { param, message: "answered HTTP 404".into() }));
        let errs = errors(&out);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            (errs[0].0.as_str(), errs[0].1.as_deref()),
            ("invalid_value", Some("session.avatar.video.background.image_url"))
        );
        let out = h.send(json!({"type": "output_audio_buffer.clear"}));
        assert_eq!(commands(&out), [AvatarCommand::Clear], "still connected");
    }

    #[test]
    fn session_updated_says_how_a_transparent_background_is_delivered() {
        let mut h = Harness::new();
        let updated_avatar = |h: &mut Harness, avatar: Value| -> Value {
            let out = h.send(json!({"type": "session.update", "session": {"avatar": avatar}}));
            let Some(ServerEvent::SessionUpdated(config)) =
                events(&out).into_iter().find(|e| matches!(e, ServerEvent::SessionUpdated(_)))
            else {
                panic!("{:?}", types(&out))
            };
            config.avatar.unwrap().to_json()
        };
        let clear = json!({"background": {"color": "#00FF0000"}});
        // Over WebRTC: a key colour to take out.
        let a = updated_avatar(&mut h, json!({"character": "lisa", "video": clear}));
        assert_eq!(a["transparency"], json!({"method": "chroma_key", "key_color": "#00FF00"}));
        // Over the WebSocket: the alpha as a picture below the picture.
        let a = updated_avatar(&mut h, json!({"character": "lisa", "output_protocol": "websocket", "video": clear}));
        assert_eq!(a["transparency"], json!({"method": "alpha_below"}));
        // Opaque: nothing to say.
        let opaque = json!({"background": {"color": "#00FF00FF"}});
        let a = updated_avatar(&mut h, json!({"character": "lisa", "video": opaque}));
        assert!(a.get("transparency").is_none(), "{a}");
    }

    #[test]
    fn a_photo_avatar_needs_its_portrait_and_takes_scene_changes_live() {
        use brazen_engine::avatar_link::AvatarFace;
        use brazen_engine::avatar_photo::Portrait;
        let mut h = Harness::new();
        // Azure's stock photo avatars have no portrait here: the error says what to give.
        let out = h.send(json!({"type": "session.update", "session": {"avatar": {"type": "photo-avatar", "character": "anika", "model": "vasa-1"}}}));
        assert_eq!(errors(&out)[0].1.as_deref(), Some("session.avatar.photo_url"));
        let out = h.send(json!({"type": "session.update", "session": {"avatar": {"type": "hologram"}}}));
        assert_eq!(errors(&out)[0].1.as_deref(), Some("session.avatar.type"));
        let avatar = json!({"type": "photo-avatar", "character": "anika", "photo_url": "https://example.com/me.jpg",
            "output_protocol": "websocket", "scene": {"zoom": 1.2, "amplitude": 0.6}});
        let out = h.send(json!({"type": "session.update", "session": {"avatar": avatar}}));
        let cmds = commands(&out);
        let [AvatarCommand::Connect { face: AvatarFace::Photo(photo), .. }] = cmds.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(photo.portrait, Portrait::Url("https://example.com/me.jpg".into()));
        assert_eq!((photo.scene.zoom, photo.scene.amplitude), (1.2, 0.6));
        h.input(Input::Avatar(AvatarEvent::Started));
        // The scene changes live; an unchanged one sends nothing; a bad one is an error.
        let mut moved = avatar.clone();
        moved["scene"] = json!({"zoom": 1.2, "amplitude": 0.6, "position_x": 0.3});
        let out = h.send(json!({"type": "session.update", "session": {"avatar": moved}}));
        let cmds = commands(&out);
        let [AvatarCommand::Scene(scene)] = cmds.as_slice() else { panic!("{out:?}") };
        assert_eq!(scene.position_x, 0.3);
        let out = h.send(json!({"type": "session.update", "session": {"avatar": moved}}));
        assert!(commands(&out).is_empty(), "{out:?}");
        moved["scene"]["rotation_z"] = json!(9);
        let out = h.send(json!({"type": "session.update", "session": {"avatar": moved}}));
        assert_eq!(errors(&out)[0].1.as_deref(), Some("session.avatar.scene.rotation_z"));
        assert!(commands(&out).is_empty());
    }

    #[test]
    fn a_client_naming_its_ice_servers_keeps_them() {
        let mut h = Harness::with_ice_servers(vec![json!({"urls": ["stun:127.0.0.1:3478"]})]);
        let own = json!([{"urls": ["turn:relay.example:3478"], "username": "u", "credential": "c"}]);
        let out =
            h.send(json!({"type": "session.update", "session": {"avatar": {"character": "lisa", "ice_servers": own}}}));
        let Some(ServerEvent::SessionUpdated(config)) = events(&out).pop() else { panic!() };
        assert_eq!(config.avatar.unwrap().to_json()["ice_servers"], own);
    }

    #[test]
    fn refused_offers_are_errors_and_the_client_may_try_again() {
        let mut h = Harness::new();
        h.send(json!({"type": "session.update", "session": {"avatar": {"character": "lisa"}}}));
        h.send(json!({"type": "session.avatar.connect", "client_sdp": offer()}));
        let out = h.input(Input::Avatar(AvatarEvent::Refused { unsupported: true, message: "no H.264".into() }));
        assert_eq!(errors(&out)[0].0, "unsupported_feature");
        assert_eq!(errors(&out)[0].1.as_deref(), Some("client_sdp"));
        let out = h.send(json!({"type": "session.avatar.connect", "client_sdp": offer()}));
        assert!(matches!(commands(&out).as_slice(), [AvatarCommand::Connect { .. }]));
        // An unknown transport is refused up front, naming the field.
        let out = h.send(json!({"type": "session.update", "session": {"avatar": {"character": "lisa", "output_protocol": "carrier-pigeon"}}}));
        assert_eq!(errors(&out)[0].1.as_deref(), Some("session.avatar.output_protocol"));
    }

    #[test]
    fn a_websocket_avatar_starts_with_the_session_update_and_streams_video_deltas() {
        let mut h = Harness::new();
        let avatar = json!({"character": "lisa", "output_protocol": "websocket"});
        let out = h.send(json!({"type": "session.update", "session": {"avatar": avatar}}));
        assert_eq!(types(&out)[0], "session.updated", "the update is confirmed first");
        let cmds = commands(&out);
        let [AvatarCommand::Connect { transport: AvatarTransport::WebSocket, .. }] = cmds.as_slice() else {
            panic!("{out:?}")
        };
        // No handshake over WebRTC on this session, and no second start.
        let out = h.send(json!({"type": "session.avatar.connect", "client_sdp": offer()}));
        assert_eq!(errors(&out)[0].1.as_deref(), Some("session.avatar.output_protocol"));
        let out = h.send(json!({"type": "session.update", "session": {"avatar": avatar}}));
        assert!(commands(&out).is_empty(), "{out:?}");
        // The stream's bytes arrive as response.video.delta, base64, in order.
        h.input(Input::Avatar(AvatarEvent::Started));
        let out = h.input(Input::Avatar(AvatarEvent::Video(vec![0, 0, 0, 24, b'f', b't', b'y', b'p'])));
        let evs = events(&out);
        let [e @ ServerEvent::VideoDelta { delta }] = evs.as_slice() else { panic!("{out:?}") };
        assert_eq!(B64.decode(delta).unwrap(), [0, 0, 0, 24, b'f', b't', b'y', b'p']);
        assert_eq!(e.wire_type(Dialect::VoiceLive), Some("response.video.delta"));
        let wire: Value = serde_json::from_str(&e.encode(Dialect::VoiceLive, "event_1").unwrap()).unwrap();
        assert_eq!((wire["output_index"].clone(), wire["codec"].clone()), (json!(0), json!("h264")));
        // Speech goes into the stream, not to the socket.
        let out = h.send(json!({"type": "response.create"}));
        let (job, _) = llm_job(&out);
        h.input(Input::Llm(job, LlmEvent::TextDelta("Hello there. ".into())));
        let (tts, _) = tts_jobs(&h.out).last().cloned().unwrap();
        let out = tts_audio(&mut h, tts, 300);
        assert!(!types(&out).contains(&"response.audio.delta"));
        assert!(commands(&out).iter().any(|c| matches!(c, AvatarCommand::Audio { .. })));
        // A client whose WebRTC could not get through switches the running avatar to the socket.
        let mut h = Harness::new();
        h.send(json!({"type": "session.update", "session": {"avatar": {"character": "lisa"}}}));
        let out = h.send(json!({"type": "session.avatar.connect", "client_sdp": offer()}));
        assert!(matches!(
            commands(&out).as_slice(),
            [AvatarCommand::Connect { transport: AvatarTransport::WebRtc { .. }, .. }]
        ));
        h.input(Input::Avatar(AvatarEvent::Answered("v=0".into())));
        let out = h.send(json!({"type": "session.update", "session": {"avatar": avatar}}));
        assert!(
            matches!(commands(&out).as_slice(), [AvatarCommand::Connect { transport: AvatarTransport::WebSocket, .. }]),
            "{out:?}"
        );
        h.input(Input::Avatar(AvatarEvent::Started));
        let out = h.input(Input::Avatar(AvatarEvent::Video(vec![1, 2, 3])));
        assert!(matches!(events(&out).as_slice(), [ServerEvent::VideoDelta { .. }]), "{out:?}");
        // A stream that cannot start is an error about the avatar; the session goes on.
        let mut h = Harness::new();
        h.send(json!({"type": "session.update", "session": {"avatar": avatar}}));
        let out = h.input(Input::Avatar(AvatarEvent::Refused { unsupported: true, message: "too big".into() }));
        assert_eq!(errors(&out)[0].1.as_deref(), Some("session.avatar"));
    }

    #[test]
    fn speech_goes_to_the_avatar_with_its_phrases_and_a_clear_stops_it() {
        use brazen_avatar::Phone;
        let mut h = connected();
        let out = h.send(json!({"type": "response.create"}));
        let (job, _) = llm_job(&out);
        h.input(Input::Llm(job, LlmEvent::TextDelta("Hello there. ".into())));
        let (tts, _) = tts_jobs(&h.out).last().cloned().unwrap();
        h.input(Input::Tts(tts, TtsEvent::Phones(vec![Phone { symbol: 'h', start_ms: 0.0, duration_ms: 250.0 }])));
        let out = tts_audio(&mut h, tts, 300);
        let cmds = commands(&out);
        assert!(
            matches!(&cmds[0], AvatarCommand::Phrase { duration_ms, phones } if *duration_ms == 250.0 && phones.len() == 1)
        );
        let audio: usize = cmds
            .iter()
            .map(|c| match c {
                AvatarCommand::Audio { samples, sample_rate: 24_000 } => samples.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(audio, 300 * 24, "all the audio, at the output rate");
        assert!(!types(&out).contains(&"response.audio.delta"), "the avatar plays it, not the client");
        assert!(types(&out).contains(&"response.audio_transcript.delta"));
        // The avatar's speaking edges become events, naming the response.
        let response_id = done_or_created_id(&h.out);
        let out = h.input(Input::Avatar(AvatarEvent::Speaking));
        match events(&out).as_slice() {
            [e @ ServerEvent::AvatarSpeaking { turn_id }] => {
                assert_eq!(turn_id.as_deref(), Some(response_id.as_str()));
                assert_eq!(e.wire_type(Dialect::VoiceLive), Some("session.avatar.switch_to_speaking"));
            }
            other => panic!("{other:?}"),
        }
        let out = h.send(json!({"type": "output_audio_buffer.clear"}));
        assert_eq!(commands(&out), [AvatarCommand::Clear]);
        assert!(types(&out).contains(&"output_audio_buffer.cleared"));
        // Removing the avatar closes its connection.
        let out = h.send(json!({"type": "session.update", "session": {"avatar": null}}));
        assert_eq!(commands(&out), [AvatarCommand::Close]);
    }

    #[test]
    fn audit_audio_also_goes_to_the_socket() {
        let mut h = Harness::new();
        h.send(
            json!({"type": "session.update", "session": {"avatar": {"character": "lisa", "output_audit_audio": true}}}),
        );
        h.send(json!({"type": "session.avatar.connect", "client_sdp": offer()}));
        h.input(Input::Avatar(AvatarEvent::Answered("v=0".into())));
        let out = h.send(json!({"type": "response.create"}));
        let (job, _) = llm_job(&out);
        h.input(Input::Llm(job, LlmEvent::TextDelta("Hello there. ".into())));
        let (tts, _) = tts_jobs(&h.out).last().cloned().unwrap();
        let out = tts_audio(&mut h, tts, 300);
        assert!(types(&out).contains(&"response.audio.delta"));
        assert!(commands(&out).iter().any(|c| matches!(c, AvatarCommand::Audio { .. })));
    }

    fn done_or_created_id(outputs: &[Output]) -> String {
        events(outputs)
            .into_iter()
            .find_map(|e| if let ServerEvent::ResponseCreated(r) = e { Some(r.id.clone()) } else { None })
            .unwrap()
    }
}

mod server_tools {
    //! Tools that run inside brazen: their calls and outputs are conversation items, the model
    //! continues in the same response, and they are cancelled, timed out and shadowed by the
    //! client's tools like any other job.

    use super::*;
    use brazen_protocol::Tool;
    use brazen_protocol::ToolChoice;
    use brazen_providers::{ToolCall, ToolEvent, ToolSpec};

    fn stock_tool() -> ToolSpec {
        ToolSpec {
            definition: Tool {
                name: "get_stock".into(),
                description: "Units in stock of a product.".into(),
                parameters: json!({"type": "object", "properties": {"product": {"type": "string"}}}),
            },
            timeout: Duration::from_secs(5),
        }
    }

    fn harness() -> Harness {
        let mut h = Harness::with_tools(vec![stock_tool()]);
        h.send(json!({"type": "session.update", "session": {"modalities": ["text"]}}));
        h
    }

    fn tool_jobs(outputs: &[Output]) -> Vec<(JobId, ToolCall)> {
        outputs
            .iter()
            .filter_map(|o| if let Output::StartTool(j, c) = o { Some((*j, c.clone())) } else { None })
            .collect()
    }

    /// The model writes `text`, then calls get_stock; returns the tool job.
    fn call_stock(h: &mut Harness, job: JobId, text: &str) -> (JobId, Vec<Output>) {
        h.input(Input::Llm(job, LlmEvent::TextDelta(text.into())));
        h.input(Input::Llm(job, LlmEvent::ToolCallStart { call_id: "call_9".into(), name: "get_stock".into() }));
        h.input(Input::Llm(
            job,
            LlmEvent::ToolCallArguments { call_id: "call_9".into(), delta: "{\"product\":\"boots\"}".into() },
        ));
        let out = h.input(Input::Llm(job, LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false }));
        let jobs = tool_jobs(&out);
        assert_eq!(jobs.len(), 1, "one tool job: {out:?}");
        (jobs[0].0, out)
    }

    #[test]
    fn a_server_tool_runs_inside_and_the_model_continues_in_the_same_response() {
        let mut h = harness();
        user_text(&mut h, "do you have boots?");
        let out = h.send(json!({"type": "response.create"}));
        let (job, request) = llm_job(&out);
        assert!(request.tools.iter().any(|t| t.name == "get_stock"), "the model is offered the server's tool");
        let (tool_job, out) = call_stock(&mut h, job, "Let me check.");
        assert_eq!(tool_jobs(&out)[0].1.arguments, "{\"product\":\"boots\"}");
        // The client sees the call as a finished conversation item, and is never asked to answer it.
        let created: Vec<_> = events(&out)
            .into_iter()
            .filter_map(|e| if let ServerEvent::ItemCreated { item, .. } = e { Some(item) } else { None })
            .collect();
        assert!(
            matches!(&created[..], [item] if matches!(&item.body, ItemBody::FunctionCall { name, .. } if name == "get_stock"))
        );
        let asked =
            ["response.function_call_arguments.delta", "response.function_call_arguments.done", "response.done"];
        assert!(types(&h.out).iter().all(|t| !asked.contains(t)), "{:?}", types(&h.out));
        let out = h.input(Input::Tool(tool_job, ToolEvent::Done("{\"stock\":3}".into())));
        let outputs: Vec<_> = events(&out)
            .into_iter()
            .filter_map(|e| match e {
                ServerEvent::ItemCreated { item, .. } => match item.body {
                    ItemBody::FunctionCallOutput { call_id, output } => Some((call_id, output)),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        assert_eq!(outputs, [("call_9".to_owned(), "{\"stock\":3}".to_owned())]);
        let (job2, request) = llm_job(&out);
        assert!(
            matches!(&request.items.last().unwrap().body, ItemBody::FunctionCallOutput { output, .. } if output == "{\"stock\":3}")
        );
        assert_eq!(request.tool_choice, ToolChoice::Auto);
        let out = say(&mut h, job2, "We have 3 pairs.");
        let r = done(&out);
        assert_eq!(r.status, ResponseStatus::Completed);
        assert_eq!(r.output.len(), 1, "only the message is an output item");
        assert!(
            matches!(&r.output[0].body, ItemBody::Message { content, .. } if matches!(&content[0], Content::Text(t) if t == "Let me check. We have 3 pairs."))
        );
        // The conversation holds the call and its output, for the next turns.
        assert_eq!(h.session.item_count(), 4);
    }

    #[test]
    fn a_tool_that_runs_out_of_time_is_stopped_and_answered_with_an_error() {
        let mut h = harness();
        user_text(&mut h, "stock?");
        let (job, _) = llm_job(&h.send(json!({"type": "response.create"})));
        let (tool_job, _) = call_stock(&mut h, job, "");
        assert_eq!(h.session.poll_timeout(), Some(h.now + Duration::from_secs(5)));
        let out = h.advance(4_990);
        assert!(tool_jobs(&out).is_empty() && !out.iter().any(|o| matches!(o, Output::Cancel(_))));
        let out = h.advance(20);
        assert!(out.contains(&Output::Cancel(tool_job)), "the tool job is cancelled: {out:?}");
        let (_, request) = llm_job(&out);
        assert!(
            matches!(&request.items.last().unwrap().body, ItemBody::FunctionCallOutput { output, .. } if output.contains("did not answer within 5 s"))
        );
        // Its late answer is ignored.
        let out = h.input(Input::Tool(tool_job, ToolEvent::Done("late".into())));
        assert!(events(&out).is_empty());
    }

    #[test]
    fn cancelling_the_response_cancels_its_running_tool() {
        let mut h = harness();
        user_text(&mut h, "stock?");
        let (job, _) = llm_job(&h.send(json!({"type": "response.create"})));
        let (tool_job, _) = call_stock(&mut h, job, "One moment.");
        let out = h.send(json!({"type": "response.cancel"}));
        assert!(out.contains(&Output::Cancel(tool_job)));
        assert!(matches!(done(&out).status, ResponseStatus::Cancelled { reason: "client_cancelled" }));
        assert_eq!(h.session.poll_timeout(), None, "the tool's deadline went with it");
        let items = h.session.item_count();
        let out = h.input(Input::Tool(tool_job, ToolEvent::Done("{}".into())));
        assert!(out.is_empty());
        assert_eq!(h.session.item_count(), items);
    }

    #[test]
    fn a_failed_tool_tells_the_model_why() {
        let mut h = harness();
        user_text(&mut h, "stock?");
        let (job, _) = llm_job(&h.send(json!({"type": "response.create"})));
        let (tool_job, _) = call_stock(&mut h, job, "");
        let out = h.input(Input::Tool(tool_job, ToolEvent::Failed("no product 'boots'".into())));
        let (_, request) = llm_job(&out);
        let ItemBody::FunctionCallOutput { output, .. } = &request.items.last().unwrap().body else { panic!() };
        assert_eq!(serde_json::from_str::<Value>(output).unwrap(), json!({"error": "no product 'boots'"}));
    }

    #[test]
    fn arguments_that_break_the_schema_never_reach_the_tool() {
        let mut tool = stock_tool();
        tool.definition.parameters = json!({"type": "object", "properties": {"product": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 1}}, "required": ["product", "quantity"]});
        let mut h = Harness::with_tools(vec![tool]);
        h.send(json!({"type": "session.update", "session": {"modalities": ["text"]}}));
        user_text(&mut h, "two boots");
        let (job, _) = llm_job(&h.send(json!({"type": "response.create"})));
        h.input(Input::Llm(job, LlmEvent::ToolCallStart { call_id: "c1".into(), name: "get_stock".into() }));
        h.input(Input::Llm(
            job,
            LlmEvent::ToolCallArguments {
                call_id: "c1".into(),
                delta: "{\"product\":\"boots\",\"quantity\":\"two\"}".into(),
            },
        ));
        let out = h.input(Input::Llm(job, LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false }));
        assert!(tool_jobs(&out).is_empty(), "the tool does not run");
        // The client sees the call and its error output; the model is asked again with the reason.
        let (_, request) = llm_job(&out);
        let ItemBody::FunctionCallOutput { output, .. } = &request.items.last().unwrap().body else { panic!() };
        let error = serde_json::from_str::<Value>(output).unwrap()["error"].as_str().unwrap().to_owned();
        assert!(error.contains("'quantity' must be integer, got \"two\""), "{error}");
        let created = types(&out).iter().filter(|t| **t == "conversation.item.created").count();
        assert_eq!(created, 2, "the call and its output are conversation items");
    }

    #[test]
    fn a_client_tool_of_the_same_name_goes_to_the_client() {
        let mut h = harness();
        h.send(json!({"type": "session.update", "session": {"tools": [{"type": "function", "name": "get_stock", "parameters": {"type": "object"}}]}}));
        user_text(&mut h, "stock?");
        let (job, request) = llm_job(&h.send(json!({"type": "response.create"})));
        assert_eq!(request.tools.iter().filter(|t| t.name == "get_stock").count(), 1);
        h.input(Input::Llm(job, LlmEvent::ToolCallStart { call_id: "c1".into(), name: "get_stock".into() }));
        let out = h.input(Input::Llm(job, LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false }));
        assert!(tool_jobs(&out).is_empty());
        assert!(matches!(&done(&out).output[0].body, ItemBody::FunctionCall { name, .. } if name == "get_stock"));
    }

    #[test]
    fn an_out_of_band_response_keeps_its_calls_to_itself() {
        let mut h = harness();
        user_text(&mut h, "stock?");
        let items = h.session.item_count();
        let (job, _) = llm_job(&h.send(json!({"type": "response.create", "response": {"conversation": "none"}})));
        let (tool_job, out) = call_stock(&mut h, job, "");
        assert!(!types(&out).contains(&"conversation.item.created"));
        let out = h.input(Input::Tool(tool_job, ToolEvent::Done("{\"stock\":1}".into())));
        let (_, request) = llm_job(&out);
        let n = request.items.len();
        assert!(matches!(&request.items[n - 2].body, ItemBody::FunctionCall { .. }));
        assert!(matches!(&request.items[n - 1].body, ItemBody::FunctionCallOutput { .. }));
        assert_eq!(h.session.item_count(), items);
    }

    #[test]
    fn a_model_that_keeps_calling_tools_is_made_to_answer() {
        let mut h = harness();
        user_text(&mut h, "stock?");
        let (mut job, _) = llm_job(&h.send(json!({"type": "response.create"})));
        for round in 1..brazen_engine::MAX_TOOL_ROUNDS {
            let (tool_job, _) = call_stock(&mut h, job, "");
            let out = h.input(Input::Tool(tool_job, ToolEvent::Done("{}".into())));
            let (next, request) = llm_job(&out);
            let expected =
                if round + 1 == brazen_engine::MAX_TOOL_ROUNDS { ToolChoice::None } else { ToolChoice::Auto };
            assert_eq!(request.tool_choice, expected, "round {}", round + 1);
            job = next;
        }
    }
}

mod interim_lines {
    //! Voice Live's `interim_response`: a short line spoken while a server-side tool runs or the
    //! model is slow to start, at most once per response, never over the answer itself.

    use super::*;
    use brazen_protocol::{Role, ToolChoice};
    use brazen_providers::{ToolEvent, ToolSpec};

    fn tool() -> ToolSpec {
        ToolSpec {
            definition: brazen_protocol::Tool {
                name: "get_stock".into(),
                description: "Units in stock.".into(),
                parameters: json!({"type": "object", "properties": {"product": {"type": "string"}}}),
            },
            timeout: Duration::from_secs(30),
        }
    }

    fn harness(interim: Value) -> Harness {
        let mut h = Harness::with_tools(vec![tool()]);
        h.send(json!({"type": "session.update", "session": {"interim_response": interim}}));
        assert!(errors(&h.out).is_empty(), "{:?}", errors(&h.out));
        user_text(&mut h, "do you have boots?");
        h
    }

    /// The model calls get_stock without a word first; returns the outputs of its round's end.
    fn call_tool(h: &mut Harness, job: JobId) -> Vec<Output> {
        h.input(Input::Llm(job, LlmEvent::ToolCallStart { call_id: "c1".into(), name: "get_stock".into() }));
        h.input(Input::Llm(job, LlmEvent::ToolCallArguments { call_id: "c1".into(), delta: "{}".into() }));
        h.input(Input::Llm(job, LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false }))
    }

    fn tool_job(outputs: &[Output]) -> JobId {
        outputs.iter().find_map(|o| if let Output::StartTool(j, _) = o { Some(*j) } else { None }).unwrap()
    }

    #[test]
    fn a_static_line_is_spoken_when_a_tool_starts_and_the_answer_follows_it() {
        let mut h = harness(json!({"type": "static_interim_response", "triggers": ["tool"], "texts": ["Hold on."]}));
        let (job, _) = llm_job(&h.send(json!({"type": "response.create"})));
        let out = call_tool(&mut h, job);
        assert_eq!(tts_jobs(&out).iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(), ["Hold on."]);
        let (tts, _) = tts_jobs(&out)[0].clone();
        tts_audio(&mut h, tts, 400);
        h.input(Input::Tts(tts, TtsEvent::Done));
        let out = h.input(Input::Tool(tool_job(&out), ToolEvent::Done("{\"stock\":3}".into())));
        let (job2, _) = llm_job(&out);
        let out = say(&mut h, job2, "We have three pairs.");
        let (tts2, text) = tts_jobs(&out).last().cloned().expect("the answer is spoken");
        assert_eq!(text, "We have three pairs.");
        tts_audio(&mut h, tts2, 400);
        h.input(Input::Tts(tts2, TtsEvent::Done));
        let out = h.advance(2_000);
        let r = done(&out);
        assert!(
            matches!(&r.output[0].body, ItemBody::Message { content, .. } if matches!(&content[0], Content::Audio { transcript } if transcript == "Hold on. We have three pairs.")),
            "{:?}",
            r.output
        );
    }

    #[test]
    fn the_latency_trigger_speaks_when_the_model_is_slow_and_only_once() {
        let mut h =
            harness(json!({"type": "static_interim_response", "triggers": ["latency"], "latency_threshold_ms": 1500}));
        let (job, _) = llm_job(&h.send(json!({"type": "response.create"})));
        assert_eq!(h.session.poll_timeout(), Some(h.now + Duration::from_millis(1500)));
        assert!(tts_jobs(&h.advance(1_490)).is_empty());
        let out = h.advance(20);
        let lines: Vec<String> = tts_jobs(&out).into_iter().map(|(_, t)| t).collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            brazen_protocol::interim::DEFAULT_TEXTS.iter().any(|t| t.starts_with(lines[0].as_str())),
            "a default text's first phrase: {lines:?}"
        );
        assert!(types(&out).contains(&"response.output_item.added"), "the message opens with the line");
        // The tool trigger is not set, and the line was spent: a tool call says nothing more.
        let out = call_tool(&mut h, job);
        assert!(tts_jobs(&out).is_empty());
        assert_eq!(h.session.poll_timeout().map(|t| t > h.now + Duration::from_secs(20)), Some(true));
    }

    #[test]
    fn an_answer_that_starts_in_time_has_no_line() {
        let mut h = harness(json!({"type": "static_interim_response", "triggers": ["latency", "tool"]}));
        let (job, _) = llm_job(&h.send(json!({"type": "response.create"})));
        h.advance(500);
        h.input(Input::Llm(job, LlmEvent::TextDelta("Let me look.".into())));
        let out = call_tool(&mut h, job);
        assert_eq!(tts_jobs(&h.out).iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(), ["Let me look."]);
        assert!(tts_jobs(&out).len() <= 1);
        h.advance(3_000);
        assert_eq!(tts_jobs(&h.out).len(), 1, "no interim line: the model spoke first");
    }

    #[test]
    fn text_only_responses_and_sessions_without_the_setting_have_no_line() {
        let mut h = harness(json!({"type": "static_interim_response", "triggers": ["latency"]}));
        h.send(json!({"type": "session.update", "session": {"modalities": ["text"]}}));
        h.send(json!({"type": "response.create"}));
        assert!(tts_jobs(&h.advance(3_000)).is_empty());
        let mut h = Harness::with_tools(vec![tool()]);
        user_text(&mut h, "boots?");
        h.send(json!({"type": "response.create"}));
        assert_eq!(h.session.poll_timeout(), None);
    }

    #[test]
    fn the_model_writes_the_line_while_the_tool_runs() {
        let mut h = harness(json!({"type": "llm_interim_response", "triggers": ["tool"], "max_completion_tokens": 12}));
        let (job, _) = llm_job(&h.send(json!({"type": "response.create"})));
        let out = call_tool(&mut h, job);
        let (line_job, request) = llm_job(&out);
        assert_eq!(request.tool_choice, ToolChoice::None);
        assert_eq!(request.max_output_tokens, Some(12));
        assert_eq!(request.items.last().and_then(|i| i.role()), Some(Role::System));
        assert!(request.tools.iter().any(|t| t.name == "get_stock"), "the prompt matches the answer's");
        let out = say(&mut h, line_job, "Checking the shelves now.");
        assert_eq!(tts_jobs(&out).iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(), ["Checking the shelves now."]);
        // The interim instructions never join the conversation: user, call, and the message.
        assert_eq!(h.session.item_count(), 3);
    }

    #[test]
    fn a_line_still_being_written_is_cancelled_when_the_answer_starts() {
        let mut h = harness(json!({"type": "llm_interim_response", "triggers": ["tool"]}));
        let (job, _) = llm_job(&h.send(json!({"type": "response.create"})));
        let out = call_tool(&mut h, job);
        let (line_job, _) = llm_job(&out);
        let out = h.input(Input::Tool(tool_job(&out), ToolEvent::Done("{}".into())));
        let (job2, _) = llm_job(&out);
        let out = h.input(Input::Llm(job2, LlmEvent::TextDelta("Yes, in stock.".into())));
        assert!(out.contains(&Output::Cancel(line_job)), "{out:?}");
        let out = say(&mut h, line_job, "Hmm.");
        assert!(tts_jobs(&out).is_empty());
    }

    #[test]
    fn a_bad_setting_is_refused_with_its_path() {
        let mut h = Harness::new();
        h.send(json!({"type": "session.update", "session": {"interim_response": {"type": "static_interim_response", "triggers": ["never"]}}}));
        let errs = errors(&h.out);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].1.as_deref(), Some("session.interim_response.triggers[0]"));
    }
}

/// The end-of-turn checks started: job and samples.
fn turn_checks(outputs: &[Output]) -> Vec<(JobId, usize)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::StartTurnCheck(j, r) => Some((*j, r.samples.len())),
            _ => None,
        })
        .collect()
}

/// The language model's end-of-turn checks started: job and the user's words judged.
fn llm_checks(outputs: &[Output]) -> Vec<(JobId, String)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::StartLlmTurnCheck(j, r) => Some((*j, format!("{:?}", r.items.last()))),
            _ => None,
        })
        .collect()
}

/// Silence: none for `still_ms` ends the turn, then `then_ms` more does.
fn still_then_stopped(h: &mut Harness, still_ms: usize, then_ms: usize) {
    let out = h.audio(still_ms, 0.0);
    assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"), "after {still_ms} ms: {:?}", types(&out));
    let out = h.audio(then_ms, 0.0);
    assert!(types(&out).contains(&"input_audio_buffer.speech_stopped"), "after {then_ms} ms more: {:?}", types(&out));
}

/// A semantic session that heard one second of speech and then `pause_ms` of silence; returns
/// the pause's transcript preview job (the end-of-turn model is not asked yet: the words may
/// settle it).
fn paused(h: &mut Harness, detection: Value, pause_ms: usize) -> JobId {
    h.send(json!({"type": "session.update", "session": {"turn_detection": detection}}));
    h.audio(1_000, 1.0);
    let out = h.audio(pause_ms, 0.0);
    assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"), "{:?}", types(&out));
    let previews = previews(&out);
    assert_eq!((turn_checks(&out).len(), previews.len()), (0, 1), "one preview for the pause: {out:?}");
    assert!(urgent(&out), "the pause's words decide whether the turn ends: someone waits on them");
    previews[0].0
}

/// The pause's words, `said`, go to the language model, which finds the message finished with
/// probability `p`; returns what followed its verdict.
fn judged(h: &mut Harness, preview: JobId, said: &str, p: f32) -> Vec<Output> {
    let out = h.input(Input::Asr(preview, AsrEvent::Done(said.into())));
    let text = llm_checks(&out);
    assert_eq!(text.len(), 1, "{out:?}");
    h.input(Input::Turn(text[0].0, TurnVerdict::Probability(p)))
}

/// The one end-of-turn check in `out`: it hears the turn's audio up to 100 ms into the pause,
/// however long the pause has lasted (the second of speech began the buffer: no padding before
/// it), at 24 kHz, to a detector frame.
fn the_check(out: &[Output]) -> JobId {
    let checks = turn_checks(out);
    assert_eq!(checks.len(), 1, "{out:?}");
    assert!(checks[0].1.abs_diff(24 * 1_100) <= 24 * 20, "{checks:?}");
    checks[0].0
}

#[test]
fn semantic_vad_ends_a_finished_sentence_after_a_short_silence() {
    let mut h = Harness::new();
    let preview = paused(&mut h, json!({"type": "semantic_vad"}), 300);
    // The pause's words go to the language model to judge (and its prompt is computed ahead).
    let out = h.input(Input::Asr(preview, AsrEvent::Done("What time do you open?".into())));
    assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"), "{:?}", types(&out));
    assert!(
        !types(&out).contains(&"conversation.item.input_audio_transcription.delta"),
        "no transcripts were asked for"
    );
    let text = llm_checks(&out);
    assert_eq!(text.len(), 1, "{out:?}");
    assert!(text[0].1.contains("What time do you open?"), "{text:?}");
    assert!(out.iter().any(|o| matches!(o, Output::PrepareLlm(_))));
    // Finished, by the words: 300 ms of silence is enough (200 ms are needed), and the
    // end-of-turn model was never asked.
    let out = h.input(Input::Turn(text[0].0, TurnVerdict::Probability(0.92)));
    let t = types(&out);
    assert!(t.contains(&"input_audio_buffer.speech_stopped") && t.contains(&"response.created"), "{t:?}");
    assert!(turn_checks(&h.out).is_empty(), "the words settled it");
    let llm = llm_job(&out).1;
    let said = format!("{:?}", llm.items);
    assert!(said.contains("What time do you open?"), "the pause's words are the transcript: {said}");
}

#[test]
fn a_pause_whose_words_someone_waits_on_is_previewed_at_its_first_silent_frame() {
    let urgent = |out: &[Output]| {
        out.iter().filter(|o| matches!(o, Output::StartAsr(_, r) if r.preview && r.urgent && !r.optional)).count()
    };
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "semantic_vad"}}}));
    // Speech in chunks shorter than the detector's frames (20 ms here), with a gap shorter
    // than a frame: audio not yet framed is no pause.
    let mut out = h.audio_in(500, 10, 1.0);
    out.extend(h.audio_in(10, 10, 0.0));
    out.extend(h.audio_in(500, 10, 1.0));
    assert_eq!(urgent(&out), 0, "{out:?}");
    // The words so far are previewed as the user speaks (for the language model to compute
    // ahead), not urgently; that preview is done before the pause.
    let step = previews(&out);
    assert_eq!(step.len(), 1, "{out:?}");
    assert!(out.iter().any(|o| matches!(o, Output::StartAsr(_, r) if r.preview && !r.urgent && r.optional)));
    let done = h.input(Input::Asr(step[0].0, AsrEvent::Done("What time".into())));
    assert!(done.iter().any(|o| matches!(o, Output::PrepareLlm(_))), "the words so far are computed ahead: {done:?}");
    // The pause: its words are asked for once, urgently, as its first silent frame is heard
    // (the speech ended 10 ms into a frame: that frame and the next), not 60 ms into it.
    let (mut asked, mut at_ms) = (0, None);
    for ms in (10..=300).step_by(10) {
        let n = urgent(&h.audio_in(10, 10, 0.0));
        asked += n;
        if n > 0 && at_ms.is_none() {
            at_ms = Some(ms);
        }
    }
    assert_eq!(asked, 1);
    assert!(at_ms.is_some_and(|ms| ms <= 30), "asked for {at_ms:?} ms into the pause");
    // A preview of the speech so far still being decoded as a pause begins gives way to the
    // pause's own (which holds every word): it is cancelled, and the pause's preview starts.
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "semantic_vad"}}}));
    let step = previews(&h.audio_in(1_000, 10, 1.0));
    assert_eq!(step.len(), 1);
    let out = h.audio_in(300, 10, 0.0);
    let cancel = out.iter().position(|o| matches!(o, Output::Cancel(j) if *j == step[0].0));
    let preview = out.iter().position(|o| matches!(o, Output::StartAsr(_, r) if r.preview && r.urgent && !r.optional));
    assert!(cancel.is_some() && cancel < preview && preview.is_some(), "{out:?}");
    // A language model that computes nothing ahead gets no words while the user speaks: only
    // the pause is previewed.
    let mut h = Harness::with_a_remote_llm();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "semantic_vad"}}}));
    let out = h.audio_in(1_500, 10, 1.0);
    assert!(previews(&out).is_empty(), "{out:?}");
    let out = h.audio_in(300, 10, 0.0);
    assert!(out.iter().any(|o| matches!(o, Output::StartAsr(_, r) if r.preview && r.urgent)), "{out:?}");
    // Plain silence detection waits on nobody's words: its previews are a courtesy.
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {
        "turn_detection": {"type": "server_vad"}, "input_audio_transcription": {"model": "whisper-1"}}}));
    h.audio_in(1_000, 10, 1.0);
    let out = h.audio_in(300, 10, 0.0);
    assert!(previews(&out).len() == 1 && urgent(&out) == 0, "{out:?}");
}

#[test]
fn semantic_vad_counts_the_pause_from_where_the_sound_stops_not_from_where_the_vad_stops_hearing_it() {
    let urgent_previews = |out: &[Output]| -> Vec<JobId> {
        out.iter()
            .filter_map(|o| match o {
                Output::StartAsr(j, r) if r.preview && r.urgent => Some(*j),
                _ => None,
            })
            .collect()
    };
    let stopped_at = |out: &[Output]| {
        events(out).iter().find_map(|e| match e {
            ServerEvent::SpeechStopped { audio_end_ms, .. } => Some(*audio_end_ms),
            _ => None,
        })
    };
    let mut h = Harness::with_a_lagging_vad();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "semantic_vad"}}}));
    for step in previews(&h.audio_in(1_000, 10, 1.0)) {
        h.input(Input::Asr(step.0, AsrEvent::Done("What time".into())));
    }
    // The sound stops at 1 s; the detector hears speech until 1.1 s. The pause's words are
    // asked for once the sound has been gone 40 ms, before the detector's first silent frame.
    let (mut asked, mut stopped) = (Vec::new(), None);
    for ms in (10..=400).step_by(10) {
        let mut out = h.audio_in(10, 10, 0.0);
        if urgent_previews(&out).len() == 1 && asked.is_empty() {
            asked.push((ms, urgent_previews(&out)[0]));
            out.extend(h.input(Input::Asr(asked[0].1, AsrEvent::Done("What time do you open?".into()))));
        }
        // Judged from 60 ms into the pause: finished.
        if let [(check, _)] = llm_checks(&out)[..] {
            out.extend(h.input(Input::Turn(check, TurnVerdict::Probability(0.97))));
        }
        if let Some(end) = stopped_at(&out) {
            stopped = Some((ms, end));
            break;
        }
    }
    assert!(asked.first().is_some_and(|(ms, _)| *ms <= 50), "asked for {asked:?} ms into the pause");
    // The turn ends 200 ms after the sound, not after the detector (300 ms).
    assert_eq!(stopped, Some((200, 1_000)), "speech_stopped (ms into the pause, audio_end_ms)");

    // A stop inside a word: the pause's words are asked for, and the request is withdrawn
    // when the sound comes back; the next pause asks again.
    let mut h = Harness::with_a_lagging_vad();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "semantic_vad"}}}));
    for step in previews(&h.audio_in(1_000, 10, 1.0)) {
        h.input(Input::Asr(step.0, AsrEvent::Done("What time".into())));
    }
    let asked = urgent_previews(&h.audio_in(60, 10, 0.0));
    assert_eq!(asked.len(), 1);
    let out = h.audio_in(300, 10, 1.0);
    assert!(out.iter().any(|o| matches!(o, Output::Cancel(j) if *j == asked[0])), "{out:?}");
    assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"));
    assert_eq!(urgent_previews(&h.audio_in(60, 10, 0.0)).len(), 1);

    // Plain silence detection keeps the detector's end: 200 ms after its last speech frame.
    let mut h = Harness::with_a_lagging_vad();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 200}}}));
    h.audio_in(1_000, 10, 1.0);
    let out = h.audio_in(400, 10, 0.0);
    assert_eq!(stopped_at(&out), Some(1_100));
}

#[test]
fn semantic_vad_waits_when_the_words_go_on() {
    let mut h = Harness::new();
    let preview = paused(&mut h, json!({"type": "semantic_vad"}), 300);
    // The words go on: the end-of-turn model is asked, and its verdict does not overrule them.
    let out = judged(&mut h, preview, "I would like to order.", 0.001);
    let out = h.input(Input::Turn(the_check(&out), TurnVerdict::Probability(0.7)));
    assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"));
    // Unfinished: 2 s of silence.
    still_then_stopped(&mut h, 1_500, 300);
}

#[test]
fn semantic_vad_asks_the_audio_when_the_words_stop_on_a_comma() {
    // Finished to the language model, but not surely so after a comma (the recogniser's mark
    // of a voice that stayed up): the audio decides between the unsure silence and the timeout.
    for (sounds, still_ms) in [(0.1, 1_500), (0.9, 300)] {
        let mut h = Harness::new();
        let preview = paused(&mut h, json!({"type": "semantic_vad"}), 300);
        let out = judged(&mut h, preview, "I bought a coffee machine last weekend,", 0.8);
        assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"));
        let out = h.input(Input::Turn(the_check(&out), TurnVerdict::Probability(sounds)));
        assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"));
        // Unfinished: 2 s of silence; unsure: 900 ms.
        still_then_stopped(&mut h, still_ms, 300);
    }
}

#[test]
fn semantic_vad_asks_the_audio_when_the_words_are_unsure() {
    let mut h = Harness::new();
    let preview = paused(&mut h, json!({"type": "semantic_vad"}), 300);
    // The words are judged 700 ms into the pause (the verdict is slow): unsure from them (0.1 <
    // 0.3); the audio sounds done: 200 ms were enough.
    let out = h.audio(400, 0.0);
    assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"), "still judging: 900 ms");
    let out = judged(&mut h, preview, "Two, please.", 0.1);
    assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"));
    let out = h.input(Input::Turn(the_check(&out), TurnVerdict::Probability(0.95)));
    assert!(types(&out).contains(&"input_audio_buffer.speech_stopped"), "{:?}", types(&out));
}

#[test]
fn semantic_vad_waits_when_the_words_trail_off() {
    let mut h = Harness::new();
    let preview = paused(&mut h, json!({"type": "semantic_vad"}), 300);
    let out = h.input(Input::Asr(preview, AsrEvent::Done("I would like to order two pairs of".into())));
    // The language model cannot judge; whatever the audio would say (it is not asked), a
    // trailing "of" waits for the timeout (2 s).
    let out = h.input(Input::Turn(llm_checks(&out)[0].0, TurnVerdict::Failed("no judge".into())));
    assert!(turn_checks(&out).is_empty(), "{out:?}");
    still_then_stopped(&mut h, 1_500, 300);
    // The language model does not judge: the next pause asks the end-of-turn model at once.
    h.audio(1_000, 1.0);
    let out = h.audio(300, 0.0);
    assert_eq!(turn_checks(&out).len(), 1, "{out:?}");
}

#[test]
fn semantic_vad_asks_the_audio_when_a_pause_has_no_words() {
    for heard in [AsrEvent::Done(" ".into()), AsrEvent::Failed("the recogniser failed".into())] {
        let mut h = Harness::new();
        let preview = paused(&mut h, json!({"type": "semantic_vad"}), 300);
        let out = h.input(Input::Asr(preview, heard.clone()));
        assert!(llm_checks(&out).is_empty(), "nothing to judge: {out:?}");
        let check = the_check(&out);
        let out = h.input(Input::Turn(check, TurnVerdict::Probability(0.9)));
        assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"), "no words: unsure (900 ms)");
        still_then_stopped(&mut h, 500, 200);
    }
}

#[test]
fn semantic_vad_asks_the_audio_when_the_words_are_settled_either_way() {
    // Words that trail off wait for the timeout whatever the audio: it is not asked.
    let mut h = Harness::new();
    let preview = paused(&mut h, json!({"type": "semantic_vad"}), 300);
    let out = judged(&mut h, preview, "I would like two pairs of", 0.9);
    assert!(turn_checks(&out).is_empty(), "{out:?}");
    // A turn past the previews' limit (30 s) has no words: the audio is asked at its pauses.
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "semantic_vad"}}}));
    h.audio(31_000, 1.0);
    let out = h.audio(200, 0.0);
    assert!(previews(&out).is_empty() && turn_checks(&out).len() == 1, "{out:?}");
}

#[test]
fn a_language_model_that_once_failed_to_judge_is_asked_again() {
    let mut h = Harness::new();
    let preview = paused(&mut h, json!({"type": "semantic_vad"}), 300);
    let out = h.input(Input::Asr(preview, AsrEvent::Done("Two, please.".into())));
    h.input(Input::Turn(llm_checks(&out)[0].0, TurnVerdict::Failed("stopped for a turn".into())));
    // The next pause asks the audio at once; a verdict from the words clears that.
    h.audio(1_000, 1.0);
    let out = h.audio(300, 0.0);
    assert_eq!(turn_checks(&out).len(), 1, "{out:?}");
    let out = judged(&mut h, previews(&out)[0].0, "Two, please.", 0.9);
    assert!(types(&out).contains(&"input_audio_buffer.speech_stopped"), "{:?}", types(&out));
    h.audio(1_000, 1.0);
    let out = h.audio(300, 0.0);
    assert!(turn_checks(&out).is_empty(), "{out:?}");
}

#[test]
fn semantic_vad_forgets_a_pause_that_ends_in_speech() {
    let mut h = Harness::new();
    let preview = paused(&mut h, json!({"type": "semantic_vad", "eagerness": "high"}), 300);
    let check = the_check(&judged(&mut h, preview, "I would like to order.", 0.001));
    let out = h.audio(600, 1.0);
    assert!(out.contains(&Output::Cancel(check)), "the pause's check is dropped: {out:?}");
    assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"));
    // Its late verdict changes nothing; the next pause is judged afresh.
    let out = h.input(Input::Turn(check, TurnVerdict::Probability(0.99)));
    assert!(!types(&out).contains(&"input_audio_buffer.speech_stopped"));
    let out = h.audio(200, 0.0);
    assert_eq!(previews(&out).len(), 1, "{out:?}");
}

#[test]
fn semantic_vad_without_a_model_decides_on_the_words_and_silence() {
    let mut h = Harness::new();
    let preview = paused(&mut h, json!({"type": "semantic_vad"}), 300);
    let out = h.input(Input::Asr(preview, AsrEvent::Done("I want to go home".into())));
    let out = h.input(Input::Turn(
        llm_checks(&out)[0].0,
        TurnVerdict::Failed("this language model does not judge turns".into()),
    ));
    h.input(Input::Turn(the_check(&out), TurnVerdict::Failed("no end-of-turn model is loaded".into())));
    // Whole words and no verdict: unsure (900 ms).
    still_then_stopped(&mut h, 500, 200);
    // Trailing words: up to the timeout (2 s).
    h.audio(1_000, 1.0);
    let out = h.audio(300, 0.0);
    let out = h.input(Input::Asr(previews(&out)[0].0, AsrEvent::Done("I want to, um".into())));
    h.input(Input::Turn(llm_checks(&out)[0].0, TurnVerdict::Failed("no judge".into())));
    still_then_stopped(&mut h, 1_500, 300);
}

#[test]
fn azure_semantic_vad_holds_an_unfinished_turn_past_its_silence() {
    let mut h = Harness::new();
    let detection = json!({"type": "azure_semantic_vad", "silence_duration_ms": 400,
        "end_of_utterance_detection": {"model": "semantic_detection_v1", "timeout_ms": 800}});
    let preview = paused(&mut h, detection, 300);
    let out = judged(&mut h, preview, "I would like to order", 0.0);
    h.input(Input::Turn(the_check(&out), TurnVerdict::Probability(0.1)));
    // Unfinished: the silence (400 ms) plus the timeout (800 ms).
    still_then_stopped(&mut h, 800, 200);
}

#[test]
fn server_vad_asks_no_model() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad"}}}));
    h.audio(1_000, 1.0);
    let out = h.audio(600, 0.0);
    assert!(turn_checks(&out).is_empty());
    assert!(types(&out).contains(&"input_audio_buffer.speech_stopped"));
}

#[test]
fn options_not_acted_on_are_named_in_warnings() {
    let mut h = Harness::new();
    // Echo cancellation, noise reduction and filler removal act: no warning.
    let out = h.send(json!({"type": "session.update", "session": {
        "input_audio_echo_cancellation": {"type": "server_echo_cancellation"},
        "input_audio_noise_reduction": {"type": "azure_deep_noise_suppression"},
        "turn_detection": {"type": "azure_semantic_vad", "remove_filler_words": true}}}));
    assert!(!events(&out).iter().any(|e| matches!(e, ServerEvent::Warning { .. })), "{out:?}");
    // Types it does not know are named (and applied as the known one).
    let out = h.send(json!({"type": "session.update", "session": {"input_audio_noise_reduction": {"type": "studio"},
        "input_audio_echo_cancellation": {"type": "acoustic"}}}));
    let warnings: Vec<String> = events(&out)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::Warning { code: "option_not_applied", message } => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("studio")) && warnings.iter().any(|w| w.contains("acoustic")),
        "{warnings:?}"
    );
    // An eagerness it does not know is named too.
    let out = h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "semantic_vad", "eagerness": "eager"}}}));
    assert!(
        events(&out).iter().any(|e| matches!(e, ServerEvent::Warning { message, .. } if message.contains("eager"))),
        "{out:?}"
    );
    // Options it acts on, or none set, warn of nothing.
    let out = h.send(json!({"type": "session.update", "session": {"input_audio_noise_reduction": null,
        "turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}));
    assert!(!events(&out).iter().any(|e| matches!(e, ServerEvent::Warning { .. })), "{out:?}");
}

/// Server VAD that ignores fillers, with the assistant's answer playing for 3 s; returns its
/// item and first speech job, 300 ms into the playback.
fn speaking_ignoring_fillers(h: &mut Harness) -> (String, JobId) {
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "auto_truncate": true, "speech_duration_ms": 100, "remove_filler_words": true}}}));
    let spoken = speaking(h, 3_000);
    h.advance(300);
    spoken
}

/// Answers every transcript preview started in `out` with `text`; returns what followed.
fn preview_says(h: &mut Harness, out: &[Output], text: &str) -> Vec<Output> {
    previews(out).into_iter().flat_map(|(job, _)| h.input(Input::Asr(job, AsrEvent::Done(text.into())))).collect()
}

#[test]
fn a_backchannel_over_the_answer_neither_interrupts_nor_becomes_a_turn() {
    let mut h = Harness::new();
    let (_, tts) = speaking_ignoring_fillers(&mut h);
    let out = h.audio(400, 0.9); // "mm-hmm"
    assert!(!types(&out).contains(&"input_audio_buffer.speech_started"), "held back: {:?}", types(&out));
    assert!(!types(&out).contains(&"response.done"));
    assert!(!previews(&out).is_empty(), "its words are checked at once");
    assert!(urgent(&out), "a reply being generated pauses for them");
    let out = preview_says(&mut h, &out, "Mm-hmm.");
    assert!(types(&out).is_empty(), "{:?}", types(&out));
    // It stops; the pause is previewed at its first silent frame (not 60 ms into it), and the
    // preview of the whole of it says it was a backchannel: dropped.
    let out = h.audio_in(30, 10, 0.0);
    assert_eq!(previews(&out).len(), 1, "the pause is previewed at once: {out:?}");
    let mut out = out;
    out.extend(h.audio_in(170, 10, 0.0));
    assert_eq!(previews(&out).len(), 1, "once: {out:?}");
    let out = preview_says(&mut h, &out, "Mm-hmm.");
    assert!(types(&out).is_empty(), "{:?}", types(&out));
    let out = h.audio(2_000, 0.0);
    assert!(types(&out).is_empty(), "no turn, no item: {:?}", types(&out));
    // The answer goes on and completes.
    finish_speaking(&mut h, tts, 500);
    h.advance(4_000);
    assert_eq!(done(&h.out).status, ResponseStatus::Completed);
    let t = types(&h.out);
    for never in
        ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed"]
    {
        assert!(!t.contains(&never), "{never}: {t:?}");
    }
}

#[test]
fn a_question_over_the_answer_interrupts_as_soon_as_its_words_are_heard() {
    let mut h = Harness::new();
    let (item_id, tts) = speaking_ignoring_fillers(&mut h);
    let out = h.audio(300, 0.9);
    assert!(!types(&out).contains(&"input_audio_buffer.speech_started"));
    h.advance(100); // the preview takes 100 ms; the client plays on
    let out = preview_says(&mut h, &out, "Wait, what");
    let t = types(&out);
    assert_eq!(t[0], "input_audio_buffer.speech_started", "{t:?}");
    let started = events(&out).into_iter().find_map(|e| match e {
        ServerEvent::SpeechStarted { audio_start_ms, .. } => Some(audio_start_ms),
        _ => None,
    });
    assert_eq!(started, Some(0), "announced where the speech began");
    assert!(out.contains(&Output::Cancel(tts)));
    assert_eq!(done(&out).status, ResponseStatus::Cancelled { reason: "turn_detected" });
    let truncated = events(&out).into_iter().find_map(|e| match e {
        ServerEvent::ItemTruncated { item_id, audio_end_ms, .. } => Some((item_id, audio_end_ms)),
        _ => None,
    });
    assert_eq!(truncated, Some((item_id, 400)), "cut at what had played when it interrupted");
    // The turn goes on as any other: it ends and is answered.
    let out = h.audio(700, 0.0);
    let t = types(&out);
    assert!(t.contains(&"input_audio_buffer.speech_stopped") && t.contains(&"conversation.item.created"), "{t:?}");
}

#[test]
fn held_speech_interrupts_when_its_words_cannot_be_known() {
    // Speech that goes on for 2 s interrupts whatever the recogniser says (or while it is slow).
    let mut h = Harness::new();
    speaking_ignoring_fillers(&mut h);
    let out = h.audio(1_800, 0.9);
    assert!(!types(&out).contains(&"input_audio_buffer.speech_started"));
    let out = h.audio(300, 0.9);
    assert!(types(&out).contains(&"input_audio_buffer.speech_started"), "{:?}", types(&out));
    assert_eq!(done(&out).status, ResponseStatus::Cancelled { reason: "turn_detected" });
    // A short sound whose transcript never comes: its end waits 1.5 s for the words, then it
    // interrupts and is a turn.
    let mut h = Harness::new();
    speaking_ignoring_fillers(&mut h);
    h.audio(300, 0.9);
    let out = h.audio(1_300, 0.0);
    assert!(types(&out).is_empty(), "{:?}", types(&out));
    let out = h.audio(300, 0.0);
    let t = types(&out);
    assert!(
        t.starts_with(&["input_audio_buffer.speech_started"]) && t.contains(&"input_audio_buffer.speech_stopped"),
        "{t:?}"
    );
    // A failed preview interrupts at once.
    let mut h = Harness::new();
    speaking_ignoring_fillers(&mut h);
    let out = h.audio(300, 0.9);
    let (job, _) = previews(&out)[0];
    let out = h.input(Input::Asr(job, AsrEvent::Failed("no model".into())));
    assert_eq!(types(&out)[0], "input_audio_buffer.speech_started");
}

#[test]
fn fillers_are_a_turn_when_the_assistant_is_silent() {
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "speech_duration_ms": 100, "remove_filler_words": true}}}));
    let out = h.audio(300, 0.9);
    assert_eq!(types(&out), ["input_audio_buffer.speech_started"], "nothing to interrupt: not held");
    let warnings: Vec<_> = events(&h.out).into_iter().filter(|e| matches!(e, ServerEvent::Warning { .. })).collect();
    assert!(warnings.is_empty(), "remove_filler_words acts: {warnings:?}");
}

#[test]
fn an_answer_said_as_the_reply_ends_is_a_turn() {
    // "Yes." to "Shall I book it?" with 300 ms of the question left to play: not held.
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "speech_duration_ms": 100, "remove_filler_words": true}}}));
    let (_, tts) = speaking(&mut h, 1_000);
    finish_speaking(&mut h, tts, 200);
    h.advance(900);
    let out = h.audio(200, 0.9);
    assert_eq!(types(&out)[0], "input_audio_buffer.speech_started", "{:?}", types(&out));

    // Held while much was left, then the reply ended before its words came: a turn.
    let mut h = Harness::new();
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "speech_duration_ms": 100, "remove_filler_words": true}}}));
    let (_, tts) = speaking(&mut h, 1_000);
    finish_speaking(&mut h, tts, 1_000);
    h.advance(600);
    let out = h.audio(300, 0.9);
    assert!(!types(&out).contains(&"input_audio_buffer.speech_started"), "held: {:?}", types(&out));
    preview_says(&mut h, &out, "");
    let out = h.audio(200, 0.0);
    let pause = previews(&out);
    assert_eq!(pause.len(), 1, "{out:?}");
    h.advance(1_500);
    let out = h.input(Input::Asr(pause[0].0, AsrEvent::Done("Yes.".into())));
    assert_eq!(types(&out)[0], "input_audio_buffer.speech_started", "{:?}", types(&out));
}

#[test]
fn a_manual_commit_announces_a_held_turn_and_interrupts() {
    let mut h = Harness::new();
    let (_, tts) = speaking_ignoring_fillers(&mut h);
    let out = h.audio(300, 0.9);
    assert!(!types(&out).contains(&"input_audio_buffer.speech_started"));
    let out = h.send(json!({"type": "input_audio_buffer.commit"}));
    let t = types(&out);
    assert_eq!(t[0], "input_audio_buffer.speech_started", "{t:?}");
    assert!(t.contains(&"input_audio_buffer.committed"), "{t:?}");
    assert!(out.contains(&Output::Cancel(tts)));
    assert_eq!(done(&out).status, ResponseStatus::Cancelled { reason: "turn_detected" });
}

#[test]
fn a_request_that_pauses_between_its_words_is_not_dropped() {
    // "Two pairs … of the hiking boots": its first words, short and taking nothing, are held
    // through the pause; said on, it takes the turn.
    let mut h = Harness::new();
    let (_, tts) = speaking_ignoring_fillers(&mut h);
    let out = h.audio(500, 0.9);
    preview_says(&mut h, &out, "Two pairs");
    let out = h.audio(200, 0.0);
    let out = preview_says(&mut h, &out, "Two pairs of");
    assert!(types(&out).is_empty(), "held, not dropped: {:?}", types(&out));
    let out = h.audio(500, 0.9);
    let out = preview_says(&mut h, &out, "Two pairs of the hiking boots");
    assert_eq!(types(&out)[0], "input_audio_buffer.speech_started", "{:?}", types(&out));
    assert!(out.contains(&Output::Cancel(tts)));
}

/// Jumps to the session's next deadline and ticks there, as a driver that sleeps until
/// `poll_timeout` would; returns the outputs and how far the clock moved (ms).
fn next_deadline(h: &mut Harness) -> (Vec<Output>, u128) {
    let at = h.session.poll_timeout().expect("a deadline");
    let moved = at.saturating_duration_since(h.now).as_millis();
    h.now = h.now.max(at);
    (h.input(Input::Tick), moved)
}

fn warnings(outputs: &[Output]) -> Vec<&'static str> {
    events(outputs)
        .iter()
        .filter_map(|e| if let ServerEvent::Warning { code, .. } = e { Some(*code) } else { None })
        .collect()
}

fn closed(outputs: &[Output]) -> Option<brazen_engine::SessionEnd> {
    outputs.iter().find_map(|o| if let Output::Close(end) = o { Some(*end) } else { None })
}

#[test]
fn a_session_is_told_before_its_maximum_length_then_closed_mid_answer() {
    let limits = Limits { max_session_ms: 3_000.0, idle_timeout_ms: f64::INFINITY, ..Limits::default() };
    let mut h = Harness::with_limits(limits);
    // Announced halfway (a minute ahead for real lengths), in Voice Live's `warning`.
    let (out, moved) = next_deadline(&mut h);
    assert_eq!(moved, 1_500);
    assert_eq!(warnings(&out), ["session_ending"]);
    assert!(events(&out)[0].encode(Dialect::Ga, "e").is_none(), "OpenAI's dialects have no warning event");
    // An answer in progress when the length is reached is cut off, then the session ends.
    let out = h.send(json!({"type": "response.create", "response": {"modalities": ["text"]}}));
    let (job, _) = llm_job(&out);
    h.input(Input::Llm(job, LlmEvent::TextDelta("Half an".into())));
    let (out, moved) = next_deadline(&mut h);
    assert_eq!(moved, 1_500);
    assert!(out.contains(&Output::Cancel(job)), "{out:?}");
    assert_eq!(done(&out).status, ResponseStatus::Cancelled { reason: "session_ended" });
    assert_eq!(errors(&out), [("session_expired".into(), None, None)]);
    assert_eq!(closed(&out), Some(brazen_engine::SessionEnd::MaxLength));
    assert!(matches!(out.last(), Some(Output::Close(_))), "the error comes before the close");
    // Over: nothing more is taken or sent.
    assert!(h.send(json!({"type": "response.create"})).is_empty());
    assert_eq!(h.session.poll_timeout(), None);
}

#[test]
fn an_idle_session_is_warned_and_closed_unless_something_happens() {
    let limits = Limits { idle_timeout_ms: 2_000.0, ..Limits::default() };
    let mut h = Harness::with_limits(limits);
    let (out, moved) = next_deadline(&mut h);
    assert_eq!((moved, warnings(&out)), (1_000, vec!["session_idle"]));
    // Something happens: the clock starts again.
    h.now += Duration::from_millis(500);
    h.send(json!({"type": "session.update", "session": {"turn_detection": {"type": "server_vad", "create_response": false}}}));
    let (out, moved) = next_deadline(&mut h);
    assert_eq!((moved, warnings(&out)), (1_000, vec!["session_idle"]), "warned again, 2 s after the event");
    assert_eq!(closed(&out), None);
    // Silence appended is not activity; speech is, for as long as it lasts, and so is an
    // answer being given.
    h.audio(500, 0.0);
    h.audio(1_500, 0.9);
    h.audio(700, 0.0);
    assert_eq!(closed(&h.out), None, "speaking keeps the session open");
    assert!(h.out.iter().any(|o| matches!(o, Output::Event(ServerEvent::SpeechStopped { .. }))));
    let (asr, _) = asr_job(&h.out);
    h.input(Input::Asr(asr, AsrEvent::Done("what now".into())));
    let out = h.send(json!({"type": "response.create", "response": {"modalities": ["text"]}}));
    let (job, _) = llm_job(&out);
    h.now += Duration::from_millis(5_000);
    let out = h.input(Input::Llm(job, LlmEvent::TextDelta("Thinking hard".into())));
    assert_eq!(closed(&out), None, "a response in progress is not idleness");
    let out = say(&mut h, job, ".");
    assert_eq!(done(&out).status, ResponseStatus::Completed);
    // Then nothing: warned, and closed 2 s after the answer.
    let mut waited = 0;
    let end = loop {
        let (out, moved) = next_deadline(&mut h);
        waited += moved;
        if let Some(end) = closed(&out) {
            assert_eq!(errors(&out)[0].0, "session_idle_timeout");
            break end;
        }
    };
    assert_eq!((end, waited), (brazen_engine::SessionEnd::Idle, 2_000));
}

#[test]
fn on_shutdown_an_answer_in_progress_finishes_and_no_other_starts() {
    let mut h = Harness::new();
    let out = h.send(json!({"type": "response.create", "response": {"modalities": ["text"]}}));
    let (job, _) = llm_job(&out);
    let out = h.input(Input::Shutdown { deadline: h.now + Duration::from_secs(5) });
    assert!(out.is_empty(), "{out:?}");
    h.now += Duration::from_millis(300);
    let out = say(&mut h, job, "All done.");
    assert_eq!(done(&out).status, ResponseStatus::Completed, "the answer is finished");
    assert_eq!(errors(&out), [("server_shutting_down".into(), None, None)]);
    assert_eq!(closed(&out), Some(brazen_engine::SessionEnd::ShuttingDown));

    // A session with nothing in progress ends at once; one that asks for a response while
    // draining is refused; an answer past the deadline is cut off.
    let mut idle = Harness::new();
    let out = idle.input(Input::Shutdown { deadline: idle.now + Duration::from_secs(5) });
    assert_eq!(closed(&out), Some(brazen_engine::SessionEnd::ShuttingDown));
    let mut slow = Harness::new();
    let out = slow.send(json!({"type": "response.create", "response": {"modalities": ["text"]}}));
    let (job, _) = llm_job(&out);
    slow.input(Input::Shutdown { deadline: slow.now + Duration::from_secs(2) });
    let out = slow.send(json!({"type": "response.create", "event_id": "again"}));
    assert_eq!(errors(&out)[0].0, "server_shutting_down");
    let (out, moved) = next_deadline(&mut slow);
    assert_eq!(moved, 2_000);
    assert!(out.contains(&Output::Cancel(job)));
    assert_eq!(done(&out).status, ResponseStatus::Cancelled { reason: "session_ended" });
    assert_eq!(closed(&out), Some(brazen_engine::SessionEnd::ShuttingDown));
}
