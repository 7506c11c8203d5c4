//! Tool calls a server returns as text. Servers that run a model's own chat template without
//! a tool-call parser (llama-cpp-python and llama.cpp's server by default, vLLM without
//! `--enable-auto-tool-choice`, TGI with some models) pass the model's call through as the
//! message's content: Qwen and Hermes models write `<tool_call>{"name": …, "arguments": …}
//! </tool_call>`, small ones often the bare object, or wrap it in the `<tools>` tags of the
//! prompt that listed the tools. When the request offered tools, a reply
//! that *starts* like that is held back until it ends and, if it is such a call to an offered
//! tool, becomes [`LlmEvent::ToolCallStart`] and [`LlmEvent::ToolCallArguments`]; anything
//! else is passed on as the text it was. Replies that start with words stream as they come.

use brazen_providers::LlmEvent;
use serde_json::Value;

/// The tags a call may come wrapped in: Qwen's and Hermes' own, and the one of the prompt that
/// lists the tools (which small models copy).
const TAGS: [(&str, &str); 2] = [("<tool_call>", "</tool_call>"), ("<tools>", "</tools>")];

/// Where the reply stands.
enum Mode {
    /// Nothing but whitespace yet.
    Undecided,
    /// Plain text: passed on as it comes.
    Text,
    /// Starts like a call: held until the end.
    Held,
}

/// Reads tool calls out of a reply's text (see the module doc).
pub struct TextCalls {
    tools: Vec<String>,
    mode: Mode,
    held: String,
}

impl TextCalls {
    /// For a request that offered `tools` (by name); with none, every event passes unchanged.
    pub fn new(tools: Vec<String>) -> TextCalls {
        let mode = if tools.is_empty() { Mode::Text } else { Mode::Undecided };
        TextCalls { tools, mode, held: String::new() }
    }

    /// The events `event` becomes.
    pub fn map(&mut self, event: LlmEvent) -> Vec<LlmEvent> {
        match event {
            LlmEvent::TextDelta(text) => self.text(text),
            LlmEvent::Done { .. } => {
                let mut out = self.finish();
                out.push(event);
                out
            }
            LlmEvent::Failed(_) => vec![event],
            // The server parsed calls itself: its text is text.
            other => {
                self.mode = Mode::Text;
                let held = std::mem::take(&mut self.held);
                let mut out = Vec::new();
                if !held.is_empty() {
                    out.push(LlmEvent::TextDelta(held));
                }
                out.push(other);
                out
            }
        }
    }

    fn text(&mut self, text: String) -> Vec<LlmEvent> {
        match self.mode {
            Mode::Text => vec![LlmEvent::TextDelta(text)],
            Mode::Held => {
                self.held.push_str(&text);
                Vec::new()
            }
            Mode::Undecided => {
                self.held.push_str(&text);
                let start = self.held.trim_start();
                if start.is_empty() {
                    return Vec::new();
                }
                let opens = start.starts_with('{') || TAGS.iter().any(|(open, _)| start.starts_with(open));
                let may_open = TAGS.iter().any(|(open, _)| open.starts_with(start) && start.len() < open.len());
                if opens {
                    self.mode = Mode::Held;
                    Vec::new()
                } else if may_open {
                    Vec::new()
                } else {
                    self.mode = Mode::Text;
                    vec![LlmEvent::TextDelta(std::mem::take(&mut self.held))]
                }
            }
        }
    }

    /// At the end: the held reply as calls, or as the text it was.
    fn finish(&mut self) -> Vec<LlmEvent> {
        let held = std::mem::take(&mut self.held);
        if held.trim().is_empty() {
            return Vec::new();
        }
        let calls = self.calls(&held);
        if calls.is_empty() {
            return vec![LlmEvent::TextDelta(held)];
        }
        let mut out = Vec::new();
        for (name, arguments) in calls {
            let call_id = crate::new_call_id();
            out.push(LlmEvent::ToolCallStart { call_id: call_id.clone(), name });
            out.push(LlmEvent::ToolCallArguments { call_id, delta: arguments });
        }
        out
    }

    /// The calls in `text`: `<tool_call>` blocks, or one bare object, each naming an offered
    /// tool; none when anything does not fit.
    fn calls(&self, text: &str) -> Vec<(String, String)> {
        let text = text.trim();
        let mut bodies = Vec::new();
        if let Some((open, close)) = TAGS.iter().find(|(open, _)| text.starts_with(open)) {
            let mut rest = text;
            while let Some(after) = rest.trim_start().strip_prefix(open) {
                let (body, next) = after.split_once(close).unwrap_or((after, ""));
                bodies.push(body.trim());
                rest = next;
            }
            if !rest.trim().is_empty() {
                return Vec::new();
            }
        } else {
            bodies.push(text);
        }
        let mut calls = Vec::new();
        for body in bodies {
            let Some(call) = first_object(body) else { return Vec::new() };
            let Some(name) = call.get("name").and_then(Value::as_str).filter(|n| self.tools.iter().any(|t| t == n))
            else {
                return Vec::new();
            };
            let arguments = match call.get("arguments").or(call.get("parameters")) {
                Some(Value::Object(a)) => Value::Object(a.clone()).to_string(),
                Some(Value::String(s)) if serde_json::from_str::<Value>(s).is_ok_and(|v| v.is_object()) => s.clone(),
                None => "{}".to_owned(),
                Some(_) => return Vec::new(),
            };
            calls.push((name.to_owned(), arguments));
        }
        calls
    }
}

/// The JSON object `body` starts with, whatever follows it (small models add a note or a code
/// fence after their call); a doubled `{{ … }}`, as some chat templates show the call's form, is
/// read as single.
fn first_object(body: &str) -> Option<serde_json::Map<String, Value>> {
    let first = |text: &str| match serde_json::Deserializer::from_str(text).into_iter::<Value>().next() {
        Some(Ok(Value::Object(o))) => Some(o),
        _ => None,
    };
    first(body).or_else(|| {
        let inner = body.strip_prefix("{{")?;
        let end = inner.rfind("}}")?;
        first(&format!("{{{}}}", &inner[..end]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_providers::LlmUsage;

    fn run(tools: &[&str], pieces: &[&str]) -> Vec<LlmEvent> {
        let mut t = TextCalls::new(tools.iter().map(|s| s.to_string()).collect());
        let mut out = Vec::new();
        for p in pieces {
            out.extend(t.map(LlmEvent::TextDelta(p.to_string())));
        }
        out.extend(t.map(LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false }));
        out
    }

    fn call(events: &[LlmEvent]) -> Option<(String, Value)> {
        match events {
            [LlmEvent::ToolCallStart { name, .. }, LlmEvent::ToolCallArguments { delta, .. }, ..] => {
                Some((name.clone(), serde_json::from_str(delta).unwrap()))
            }
            _ => None,
        }
    }

    #[test]
    fn tagged_and_bare_calls_to_offered_tools_become_calls() {
        let tagged = run(
            &["get_weather"],
            &["<tool", "_call>\n{\"name\": \"get_weather\", ", "\"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"],
        );
        assert_eq!(call(&tagged), Some(("get_weather".into(), serde_json::json!({"city": "Paris"}))));
        let listed = run(&["f"], &["<tools>\n{\"name\": \"f\", \"arguments\": {}}\n</tools>"]);
        assert_eq!(call(&listed), Some(("f".into(), serde_json::json!({}))), "in the prompt's own tags");
        let bare =
            run(&["get_weather"], &["{\n  \"name\": \"get_weather\",\n  \"arguments\": {\"city\": \"Oslo\"}\n}"]);
        assert_eq!(call(&bare), Some(("get_weather".into(), serde_json::json!({"city": "Oslo"}))));
        assert!(matches!(bare.last(), Some(LlmEvent::Done { .. })));
        let doubled = run(&["f"], &["{{\"name\": \"f\", \"arguments\": {\"q\": 1}}}"]);
        assert_eq!(call(&doubled), Some(("f".into(), serde_json::json!({"q": 1}))), "as a template showed it");
        let trailing = run(&["f"], &["{\"name\": \"f\", \"arguments\": \"{\\\"q\\\": 2}\"}\n```\nNote: done.\n```"]);
        assert_eq!(call(&trailing), Some(("f".into(), serde_json::json!({"q": 2}))), "string arguments, a note after");
    }

    #[test]
    fn call_ids_never_repeat_across_turns() {
        let call = "{\"name\": \"f\", \"arguments\": {}}";
        let id = |events: Vec<LlmEvent>| match &events[0] {
            LlmEvent::ToolCallStart { call_id, .. } => call_id.clone(),
            other => panic!("{other:?}"),
        };
        assert_ne!(id(run(&["f"], &[call])), id(run(&["f"], &[call])));
    }

    #[test]
    fn words_stream_at_once_and_anything_else_stays_text() {
        let words = run(&["get_weather"], &[" It", " is sunny."]);
        assert_eq!(words[0], LlmEvent::TextDelta(" It".into()), "text is not held back");
        let unknown = run(&["get_weather"], &["{\"name\": \"rm_rf\", \"arguments\": {}}"]);
        assert_eq!(unknown[0], LlmEvent::TextDelta("{\"name\": \"rm_rf\", \"arguments\": {}}".into()));
        let no_tools = run(&[], &["{\"name\": \"get_weather\", \"arguments\": {}}"]);
        assert!(matches!(&no_tools[0], LlmEvent::TextDelta(t) if t.starts_with('{')));
        let broken = run(&["get_weather"], &["<tool_call>{\"name\": \"get_weather\""]);
        assert!(matches!(&broken[0], LlmEvent::TextDelta(t) if t.starts_with("<tool_call>")));
        let less = run(&["get_weather"], &["<3 you"]);
        assert_eq!(less[0], LlmEvent::TextDelta("<3 you".into()));
    }
}
