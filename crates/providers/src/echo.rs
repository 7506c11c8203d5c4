//! The echo engines: deliberately simple stand-ins that let the whole protocol run before real
//! models are installed. They are labelled as such everywhere they appear.
//!
//! - [`EchoAsr`] transcribes any utterance as `[speech N.N s]` (its duration).
//! - [`EchoLlm`] answers `You said: <last user text>`; when tools are offered and the user names
//!   one, it calls it with the first `{…}` JSON object in the text (else `{}`); after a
//!   `function_call_output` it answers `The <name> tool returned: <output>`.
//! - [`ToneTts`] "speaks" a quiet 220 Hz tone, 40 ms per character, at 24 kHz.

use crate::{Asr, AsrEvent, AsrRequest, EngineStream, Llm, LlmEvent, LlmRequest, LlmUsage, Tts, TtsEvent, TtsRequest};
use brazen_protocol::{ItemBody, Role, ToolChoice};
use futures_util::stream;

/// Transcribes every utterance as its duration.
#[derive(Debug, Clone, Default)]
pub struct EchoAsr;

impl Asr for EchoAsr {
    fn transcribe(&self, request: AsrRequest) -> EngineStream<AsrEvent> {
        if request.preview {
            return Box::pin(stream::iter([AsrEvent::Done(String::new())]));
        }
        let seconds = request.samples.len() as f64 / request.sample_rate.max(1) as f64;
        let text = format!("[speech {seconds:.1} s]");
        Box::pin(stream::iter([AsrEvent::Delta(text.clone()), AsrEvent::Done(text)]))
    }
}

/// Answers by echoing the user, and calls tools the user names.
#[derive(Debug, Clone, Default)]
pub struct EchoLlm;

/// What the echo model decides to do.
#[derive(Debug, Clone, PartialEq)]
pub enum EchoReply {
    /// Say this.
    Say(String),
    /// Call this function with these arguments.
    Call {
        /// Function.
        name: String,
        /// JSON arguments.
        arguments: String,
    },
}

/// The first balanced `{…}` in `text` that parses as a JSON object.
fn first_json_object(text: &str) -> Option<String> {
    for (start, _) in text.match_indices('{') {
        let mut depth = 0usize;
        for (i, c) in text[start..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        let candidate = &text[start..start + i + 1];
                        if serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(candidate).is_ok() {
                            return Some(candidate.to_owned());
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    None
}

impl EchoLlm {
    /// The reply the echo model gives to a request.
    pub fn reply(request: &LlmRequest) -> EchoReply {
        let last = request
            .items
            .iter()
            .rev()
            .find(|i| matches!(i.body, ItemBody::FunctionCallOutput { .. }) || i.role() == Some(Role::User));
        match last.map(|i| &i.body) {
            Some(ItemBody::FunctionCallOutput { call_id, output }) => {
                let name = request
                    .items
                    .iter()
                    .find_map(|i| match &i.body {
                        ItemBody::FunctionCall { call_id: c, name, .. } if c == call_id => Some(name.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "function".to_owned());
                EchoReply::Say(format!("The {name} tool returned: {output}"))
            }
            Some(_) => {
                let text = last.map(|i| i.text()).unwrap_or_default();
                let callable = request.tool_choice != ToolChoice::None;
                let named = request.tools.iter().find(|t| callable && text.contains(&t.name));
                match named {
                    Some(tool) => EchoReply::Call {
                        name: tool.name.clone(),
                        arguments: first_json_object(&text).unwrap_or_else(|| "{}".to_owned()),
                    },
                    None => EchoReply::Say(format!("You said: {text}")),
                }
            }
            None => EchoReply::Say("Hello! This is brazen's echo engine; say something and I will repeat it.".into()),
        }
    }
}

fn count_words(request: &LlmRequest) -> u64 {
    let prompt = request.instructions.split_whitespace().count();
    let items: usize = request.items.iter().map(|i| i.text().split_whitespace().count()).sum();
    (prompt + items) as u64
}

impl Llm for EchoLlm {
    fn generate(&self, request: LlmRequest) -> EngineStream<LlmEvent> {
        let input_tokens = count_words(&request);
        let cap = request.max_output_tokens.unwrap_or(u64::MAX) as usize;
        let mut events = Vec::new();
        let mut output_tokens = 0u64;
        let mut hit_token_cap = false;
        match Self::reply(&request) {
            EchoReply::Say(text) => {
                for (n, word) in text.split_inclusive(' ').enumerate() {
                    if n >= cap {
                        hit_token_cap = true;
                        break;
                    }
                    events.push(LlmEvent::TextDelta(word.to_owned()));
                    output_tokens += 1;
                }
            }
            EchoReply::Call { name, arguments } => {
                let call_id = format!("call_{:016x}", stable_hash(&(input_tokens, &name, &arguments)));
                events.push(LlmEvent::ToolCallStart { call_id: call_id.clone(), name });
                for piece in arguments.as_bytes().chunks(16) {
                    let delta = String::from_utf8_lossy(piece).into_owned();
                    events.push(LlmEvent::ToolCallArguments { call_id: call_id.clone(), delta });
                }
                output_tokens = 1 + arguments.len() as u64 / 4;
            }
        }
        events
            .push(LlmEvent::Done { usage: LlmUsage { input_tokens, cached_tokens: 0, output_tokens }, hit_token_cap });
        Box::pin(stream::iter(events))
    }
}

/// A hash that is the same in every run (SipHash with fixed keys), for call ids.
fn stable_hash<T: std::hash::Hash>(value: &T) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(value)
}

/// Speaks a quiet tone, 40 ms per character.
#[derive(Debug, Clone, Default)]
pub struct ToneTts;

/// Milliseconds of tone per character of text.
pub const TONE_MS_PER_CHAR: usize = 40;
/// The tone's sample rate.
pub const TONE_RATE: u32 = 24_000;

impl Tts for ToneTts {
    fn synthesize(&self, request: TtsRequest) -> EngineStream<TtsEvent> {
        let n = request.text.chars().count() * TONE_MS_PER_CHAR * TONE_RATE as usize / 1000;
        let step = 220.0 * std::f32::consts::TAU / TONE_RATE as f32;
        let samples: Vec<i16> = (0..n).map(|i| ((i as f32 * step).sin() * 1_500.0) as i16).collect();
        let events = samples
            .chunks(TONE_RATE as usize / 2)
            .map(|c| TtsEvent::Audio { samples: c.to_vec(), sample_rate: TONE_RATE })
            .chain([TtsEvent::Done])
            .collect::<Vec<_>>();
        Box::pin(stream::iter(events))
    }
}
