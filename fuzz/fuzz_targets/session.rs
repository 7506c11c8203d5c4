//! A session driven by arbitrary client frames on a fake clock: each line of the input is one
//! frame (parsed as the server would, errors included), the byte before it says how far the clock
//! moves, and every engine job the session starts is answered at once (a transcript, a short
//! reply, a phrase of audio, a tool's refusal, a verdict), so responses, turns and their
//! cancellations all run. Also a shutdown at the end, which must close it. The session may refuse
//! anything, but must never panic, and must always say when it next needs the time.
#![no_main]

use brazen_engine::{Input, Limits, Output, Session, SessionOptions};
use brazen_providers::{AsrEvent, LlmEvent, LlmUsage, ToolEvent, TtsEvent, TurnVerdict};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

/// Answers every job the session started; whether it closed.
fn answer(session: &mut Session, now: Instant) -> bool {
    let mut closed = false;
    let mut rounds = 0;
    while let Some(output) = session.poll_output() {
        rounds += 1;
        if rounds > 10_000 {
            panic!("the session keeps producing output");
        }
        let reply = match output {
            Output::StartAsr(job, _) => vec![Input::Asr(job, AsrEvent::Done("hello there".into()))],
            Output::StartTurnCheck(job, _) | Output::StartLlmTurnCheck(job, _) => {
                vec![Input::Turn(job, TurnVerdict::Probability(0.9))]
            }
            Output::StartLlm(job, _) => vec![
                Input::Llm(job, LlmEvent::TextDelta("Fine, thanks.".into())),
                Input::Llm(job, LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false }),
            ],
            Output::StartTts(job, _) => vec![
                Input::Tts(job, TtsEvent::Audio { samples: vec![100; 480], sample_rate: 24_000 }),
                Input::Tts(job, TtsEvent::Done),
            ],
            Output::StartTool(job, _) => vec![Input::Tool(job, ToolEvent::Failed("no tools here".into()))],
            Output::Close(_) => {
                closed = true;
                Vec::new()
            }
            _ => Vec::new(),
        };
        for input in reply {
            session.handle(input, now);
        }
    }
    closed
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let options = SessionOptions {
        session_id: "sess_fuzz".into(),
        model: "fuzz".into(),
        vad: Box::new(brazen_audio::EnergyVad),
        limits: Limits::default(),
        avatars: std::sync::Arc::new(brazen_avatar::character::Catalog::built_in()),
        ice_servers: Vec::new(),
        tools: Default::default(),
        defaults: Vec::new(),
        history: Vec::new(),
        llm_computes_ahead: true,
    };
    let mut session = Session::new(options, now);
    let mut closed = answer(&mut session, now);
    for line in data.split(|&b| b == b'\n') {
        if closed {
            break;
        }
        let (step, frame) = line.split_first().unwrap_or((&0, &[]));
        now += Duration::from_millis(u64::from(*step) * 20);
        let input = match brazen_protocol::client::parse(&String::from_utf8_lossy(frame)) {
            Ok(message) => Input::Client(message),
            Err(e) => Input::Invalid(e),
        };
        session.handle(input, now);
        closed |= answer(&mut session, now);
        // A live session always has a next deadline (its idle timeout at least).
        let Some(at) = session.poll_timeout() else {
            assert!(closed, "a live session with no deadline");
            break;
        };
        // Time passes as a driver would let it: to the session's next deadline.
        if at <= now + Duration::from_secs(2) {
            now = now.max(at);
            session.handle(Input::Tick, now);
            closed |= answer(&mut session, now);
        }
    }
    if !closed {
        // A shutdown ends the session by its deadline at the latest.
        let deadline = now + Duration::from_secs(1);
        session.handle(Input::Shutdown { deadline }, now);
        if !answer(&mut session, now) {
            session.handle(Input::Tick, deadline);
            assert!(answer(&mut session, deadline), "a shutdown past its deadline closes the session");
        }
    }
});
