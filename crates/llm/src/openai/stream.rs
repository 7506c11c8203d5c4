//! A streamed Chat Completions answer, as engine events: server-sent events are split from the
//! bytes as they arrive ([`SseLines`]), and each `chat.completion.chunk` is turned into
//! [`LlmEvent`]s ([`Chunks`]): text deltas, a call's start when its name first appears (its id
//! from the server, or made here when the server gives none), its argument fragments, and at the
//! end the usage and whether the token cap was hit. A server that answers with one whole
//! `chat.completion` object instead of a stream is read the same way ([`Chunks::completion`]).

use brazen_providers::{LlmEvent, LlmUsage};
use serde_json::Value;
use std::collections::HashMap;

/// The longest line of a stream kept while waiting for its end (a chunk is a few hundred
/// bytes; a server sending megabytes without a newline is broken).
const MAX_LINE: usize = 4 << 20;

/// Splits a byte stream into the `data` of server-sent events.
#[derive(Default)]
pub struct SseLines {
    buffer: Vec<u8>,
    data: String,
}

impl SseLines {
    /// Feeds bytes; returns the data of every event they complete, or an error when a line is
    /// longer than the limit or not UTF-8.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = std::str::from_utf8(&line).map_err(|_| "the stream is not UTF-8".to_owned())?;
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(std::mem::take(&mut self.data));
                }
            } else if let Some(data) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(data.strip_prefix(' ').unwrap_or(data));
            }
            // `event:`, `id:`, `retry:` and `:` comments carry nothing a chat stream needs.
        }
        if self.buffer.len() > MAX_LINE {
            return Err(format!("the stream sent a line longer than {MAX_LINE} bytes"));
        }
        Ok(events)
    }

    /// The data of an event the stream ended without its blank line, if any.
    pub fn finish(&mut self) -> Option<String> {
        let rest = String::from_utf8_lossy(&std::mem::take(&mut self.buffer)).trim().to_owned();
        if let Some(data) = rest.strip_prefix("data:") {
            if !self.data.is_empty() {
                self.data.push('\n');
            }
            self.data.push_str(data.trim_start());
        }
        (!self.data.is_empty()).then(|| std::mem::take(&mut self.data))
    }
}

/// Turns chunks into engine events, remembering the calls seen so far.
#[derive(Default)]
pub struct Chunks {
    /// The id of each call by its index in `tool_calls`.
    calls: HashMap<u64, String>,
    /// Arguments that came before their call's name.
    early_arguments: HashMap<u64, String>,
    usage: LlmUsage,
    hit_token_cap: bool,
    finished: bool,
    done: bool,
}

/// What one chunk meant.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Events to pass on; the stream goes on.
    Events(Vec<LlmEvent>),
    /// The stream is over (`[DONE]`): the last events, `Done` among them.
    End(Vec<LlmEvent>),
}

impl Chunks {
    /// Reads the data of one event: a chunk, `[DONE]`, or an error object.
    pub fn data(&mut self, data: &str) -> Step {
        if data.trim() == "[DONE]" {
            return Step::End(self.end());
        }
        let chunk: Value = match serde_json::from_str(data) {
            Ok(v) => v,
            Err(e) => {
                self.done = true;
                return Step::End(vec![LlmEvent::Failed(format!(
                    "the LLM server sent a chunk that is not JSON ({e}): {}",
                    preview(data)
                ))]);
            }
        };
        if let Some(error) = chunk.get("error") {
            self.done = true;
            return Step::End(vec![LlmEvent::Failed(format!(
                "the LLM server failed mid-answer: {}",
                error_text(error)
            ))]);
        }
        let mut events = Vec::new();
        self.usage_from(&chunk);
        for choice in
            chunk["choices"].as_array().into_iter().flatten().filter(|c| c["index"].as_u64().unwrap_or(0) == 0)
        {
            let delta = if choice.get("delta").is_some() { &choice["delta"] } else { &choice["message"] };
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                events.push(LlmEvent::TextDelta(text.to_owned()));
            }
            for (position, call) in delta["tool_calls"].as_array().into_iter().flatten().enumerate() {
                let index = call["index"].as_u64().unwrap_or(position as u64);
                self.call(index, call, &mut events);
            }
            match choice["finish_reason"].as_str() {
                Some("length") => {
                    self.hit_token_cap = true;
                    self.finished = true;
                }
                Some(_) => self.finished = true,
                None => {}
            }
        }
        Step::Events(events)
    }

    /// A whole `chat.completion` object (a server that does not stream): its events, `Done`
    /// last.
    pub fn completion(&mut self, body: &Value) -> Vec<LlmEvent> {
        let mut events = match self.data(&body.to_string()) {
            Step::Events(events) => events,
            Step::End(events) => return events,
        };
        events.extend(self.end());
        events
    }

    /// The stream ended without `[DONE]`: `Done` when the answer had finished, else an error.
    pub fn closed(&mut self) -> Vec<LlmEvent> {
        if self.done {
            return Vec::new();
        }
        if self.finished {
            return self.end();
        }
        self.done = true;
        vec![LlmEvent::Failed("the LLM server closed the stream before the answer was finished".into())]
    }

    fn end(&mut self) -> Vec<LlmEvent> {
        if std::mem::replace(&mut self.done, true) {
            return Vec::new();
        }
        vec![LlmEvent::Done { usage: self.usage, hit_token_cap: self.hit_token_cap }]
    }

    fn usage_from(&mut self, chunk: &Value) {
        let usage = &chunk["usage"];
        if usage.is_object() {
            let n = |v: &Value| v.as_u64().unwrap_or(0);
            self.usage = LlmUsage {
                input_tokens: n(&usage["prompt_tokens"]),
                cached_tokens: n(&usage["prompt_tokens_details"]["cached_tokens"]),
                output_tokens: n(&usage["completion_tokens"]),
            };
        }
    }

    fn call(&mut self, index: u64, call: &Value, events: &mut Vec<LlmEvent>) {
        let function = &call["function"];
        let arguments = function["arguments"].as_str().unwrap_or_default();
        match (self.calls.get(&index), function["name"].as_str().filter(|n| !n.is_empty())) {
            (Some(id), _) => {
                if !arguments.is_empty() {
                    events.push(LlmEvent::ToolCallArguments { call_id: id.clone(), delta: arguments.to_owned() });
                }
            }
            (None, Some(name)) => {
                let id = match call["id"].as_str().filter(|id| !id.is_empty()) {
                    Some(id) => id.to_owned(),
                    None => crate::new_call_id(),
                };
                events.push(LlmEvent::ToolCallStart { call_id: id.clone(), name: name.to_owned() });
                let early = self.early_arguments.remove(&index).unwrap_or_default();
                let all = early + arguments;
                if !all.is_empty() {
                    events.push(LlmEvent::ToolCallArguments { call_id: id.clone(), delta: all });
                }
                self.calls.insert(index, id);
            }
            (None, None) => self.early_arguments.entry(index).or_default().push_str(arguments),
        }
    }
}

/// The message of an OpenAI-style error object (`{"message", "type", "code"}`), or the JSON.
pub fn error_text(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        _ => match error["message"].as_str() {
            Some(m) => match error["code"].as_str().or(error["type"].as_str()) {
                Some(code) => format!("{m} ({code})"),
                None => m.to_owned(),
            },
            None => preview(&error.to_string()),
        },
    }
}

/// The first 300 characters of `text`.
pub fn preview(text: &str) -> String {
    let mut p: String = text.chars().take(300).collect();
    if p.len() < text.len() {
        p.push('…');
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stream: &str) -> Vec<LlmEvent> {
        let mut lines = SseLines::default();
        let mut chunks = Chunks::default();
        let mut events = Vec::new();
        // Fed a few bytes at a time, as a network delivers it.
        for piece in stream.as_bytes().chunks(7) {
            for data in lines.feed(piece).unwrap() {
                match chunks.data(&data) {
                    Step::Events(e) => events.extend(e),
                    Step::End(e) => {
                        events.extend(e);
                        return events;
                    }
                }
            }
        }
        if let Some(data) = lines.finish() {
            let (Step::Events(e) | Step::End(e)) = chunks.data(&data);
            events.extend(e);
        }
        events.extend(chunks.closed());
        events
    }

    #[test]
    fn text_and_usage_are_read_from_a_stream() {
        let events = run(concat!(
            ": keep-alive\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"length\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,",
            "\"prompt_tokens_details\":{\"cached_tokens\":8}}}\n\n",
            "data: [DONE]\n\n",
        ));
        assert_eq!(
            events,
            vec![
                LlmEvent::TextDelta("Hel".into()),
                LlmEvent::TextDelta("lo".into()),
                LlmEvent::Done {
                    usage: LlmUsage { input_tokens: 12, cached_tokens: 8, output_tokens: 2 },
                    hit_token_cap: true
                },
            ]
        );
    }

    #[test]
    fn a_call_streamed_in_fragments_starts_once_with_its_name() {
        let events = run(concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",",
            "\"type\":\"function\",\"function\":{\"name\":\"order\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"q\\\":\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"2}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
        ));
        assert_eq!(
            events,
            vec![
                LlmEvent::ToolCallStart { call_id: "call_1".into(), name: "order".into() },
                LlmEvent::ToolCallArguments { call_id: "call_1".into(), delta: "{\"q\":".into() },
                LlmEvent::ToolCallArguments { call_id: "call_1".into(), delta: "2}".into() },
                LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false },
            ],
            "a finished answer without [DONE] still ends"
        );
    }

    #[test]
    fn broken_streams_end_in_a_clear_failure() {
        let cut = run("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n");
        assert!(matches!(&cut[..], [LlmEvent::TextDelta(_), LlmEvent::Failed(m)] if m.contains("before the answer")));
        let garbage = run("data: {not json\n\n");
        assert!(matches!(&garbage[..], [LlmEvent::Failed(m)] if m.contains("not JSON")), "{garbage:?}");
        let error = run("data: {\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}\n\n");
        assert!(matches!(&error[..], [LlmEvent::Failed(m)] if m.contains("out of memory (server_error)")), "{error:?}");
        let mut lines = SseLines::default();
        assert!(lines.feed(&vec![b'a'; MAX_LINE + 1]).is_err(), "an endless line is refused");
    }

    #[test]
    fn a_whole_completion_reads_like_a_stream() {
        let body = serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "c9", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 5, "completion_tokens": 3}});
        let events = Chunks::default().completion(&body);
        assert_eq!(events[0], LlmEvent::ToolCallStart { call_id: "c9".into(), name: "f".into() });
        assert_eq!(events[1], LlmEvent::ToolCallArguments { call_id: "c9".into(), delta: "{}".into() });
        assert!(matches!(events[2], LlmEvent::Done { usage: LlmUsage { input_tokens: 5, output_tokens: 3, .. }, .. }));
    }
}
