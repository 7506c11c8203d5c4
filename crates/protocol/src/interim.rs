//! Voice Live's `interim_response` (also spelt `interim-response`): a short line the agent
//! speaks while a tool runs or the model is slow to answer, so the user does not sit in silence.
//!
//! ```json
//! {"type": "static_interim_response", "triggers": ["tool", "latency"],
//!  "latency_threshold_ms": 2000, "texts": ["One moment, please."]}
//! {"type": "llm_interim_response", "triggers": ["tool"], "instructions": "…",
//!  "max_completion_tokens": 50}
//! ```
//!
//! The type is accepted with underscores or hyphens. Any trigger fires the line (OR), at most
//! once per response.

use crate::error::ProtocolError;
use crate::read::{Obj, bad_value};
use serde_json::Value;

/// The lines a static interim response picks from when it names none.
pub const DEFAULT_TEXTS: &[&str] = &["One moment, please.", "Let me check that for you.", "Just a second."];

/// Voice Live's default latency threshold.
pub const DEFAULT_LATENCY_THRESHOLD_MS: u64 = 2000;

/// The instructions an LLM interim response uses when it names none.
pub const DEFAULT_INSTRUCTIONS: &str = "Write one very short, friendly sentence (at most eight words) telling \
the customer you are working on their request, such as looking something up. Do not answer the request itself.";

/// Voice Live's default token cap for an LLM interim line.
pub const DEFAULT_MAX_COMPLETION_TOKENS: u64 = 50;

/// Most texts a static interim response may list, and most characters in one.
const MAX_TEXTS: usize = 64;
const MAX_TEXT_CHARS: usize = 300;

/// How the interim line is made.
#[derive(Debug, Clone, PartialEq)]
pub enum InterimSource {
    /// Picked from fixed texts.
    Static {
        /// The texts (never empty).
        texts: Vec<String>,
    },
    /// Written by the language model for the conversation at hand.
    Llm {
        /// What the model is told to write.
        instructions: String,
        /// Its token cap.
        max_completion_tokens: u64,
    },
}

/// A session's interim-response configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct InterimResponse {
    /// Where the line comes from.
    pub source: InterimSource,
    /// Speak it when a server-side tool starts running.
    pub on_tool: bool,
    /// Speak it when the answer has not started within [`InterimResponse::latency_threshold_ms`].
    pub on_latency: bool,
    /// The latency trigger's threshold.
    pub latency_threshold_ms: u64,
}

impl InterimResponse {
    /// Reads the configuration at `path` (`session.interim_response`).
    pub fn read(value: &Value, path: &str) -> Result<InterimResponse, ProtocolError> {
        let o = Obj::expect(value, path)?;
        let kind = o.required_str("type")?.replace('-', "_");
        let triggers = o.strings("triggers")?.value().unwrap_or_else(|| vec!["latency".into(), "tool".into()]);
        let (mut on_tool, mut on_latency) = (false, false);
        for (i, t) in triggers.iter().enumerate() {
            match t.as_str() {
                "tool" => on_tool = true,
                "latency" => on_latency = true,
                other => {
                    return Err(bad_value(
                        &format!("{}[{i}]", o.param("triggers")),
                        format!("Invalid trigger '{other}': expected 'tool' or 'latency'."),
                    ));
                }
            }
        }
        let latency_threshold_ms = o.u64("latency_threshold_ms")?.value().unwrap_or(DEFAULT_LATENCY_THRESHOLD_MS);
        if !(100..=60_000).contains(&latency_threshold_ms) {
            return Err(bad_value(
                &o.param("latency_threshold_ms"),
                "Invalid 'latency_threshold_ms': expected 100 to 60000.",
            ));
        }
        let source = match kind.as_str() {
            "static_interim_response" => {
                let texts = o.strings("texts")?.value().unwrap_or_default();
                if texts.len() > MAX_TEXTS {
                    return Err(bad_value(&o.param("texts"), format!("Too many texts: at most {MAX_TEXTS}.")));
                }
                if let Some(i) = texts.iter().position(|t| t.trim().is_empty() || t.chars().count() > MAX_TEXT_CHARS) {
                    return Err(bad_value(
                        &format!("{}[{i}]", o.param("texts")),
                        format!("Each interim text must be 1 to {MAX_TEXT_CHARS} characters."),
                    ));
                }
                let texts =
                    if texts.is_empty() { DEFAULT_TEXTS.iter().map(|t| (*t).to_owned()).collect() } else { texts };
                InterimSource::Static { texts }
            }
            "llm_interim_response" => {
                let instructions = o.str("instructions")?.value().unwrap_or(DEFAULT_INSTRUCTIONS).to_owned();
                let max_completion_tokens =
                    o.u64("max_completion_tokens")?.value().unwrap_or(DEFAULT_MAX_COMPLETION_TOKENS).clamp(1, 200);
                InterimSource::Llm { instructions, max_completion_tokens }
            }
            other => {
                return Err(bad_value(
                    &o.param("type"),
                    format!(
                        "Invalid interim response type '{other}': expected 'static_interim_response' or 'llm_interim_response'."
                    ),
                ));
            }
        };
        Ok(InterimResponse { source, on_tool, on_latency, latency_threshold_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn static_with_both_triggers_and_hyphenated_type() {
        let v = json!({"type": "static-interim-response", "triggers": ["tool", "latency"],
            "latency_threshold_ms": 1500, "texts": ["Hold on."]});
        let r = InterimResponse::read(&v, "session.interim_response").unwrap();
        assert_eq!(r.source, InterimSource::Static { texts: vec!["Hold on.".into()] });
        assert!(r.on_tool && r.on_latency);
        assert_eq!(r.latency_threshold_ms, 1500);
    }

    #[test]
    fn llm_defaults() {
        let r = InterimResponse::read(&json!({"type": "llm_interim_response", "triggers": ["tool"]}), "s").unwrap();
        assert!(r.on_tool && !r.on_latency);
        assert_eq!(r.latency_threshold_ms, DEFAULT_LATENCY_THRESHOLD_MS);
        assert!(matches!(r.source, InterimSource::Llm { max_completion_tokens: 50, .. }));
    }

    #[test]
    fn precise_errors() {
        let e = InterimResponse::read(&json!({"type": "static_interim_response", "triggers": ["soon"]}), "s.i")
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("s.i.triggers[0]"));
        let e = InterimResponse::read(&json!({"type": "clever"}), "s.i").unwrap_err();
        assert!(e.message.contains("clever"), "{}", e.message);
        let e = InterimResponse::read(&json!({"triggers": ["tool"]}), "s.i").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("s.i.type"));
        let e = InterimResponse::read(&json!({"type": "static_interim_response", "texts": [""]}), "s.i").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("s.i.texts[0]"));
        assert!(InterimResponse::read(&json!("static"), "s.i").is_err());
    }
}
