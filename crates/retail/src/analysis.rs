//! Call analysis: the model reads a call's transcript and fills in
//! `{call_reason, customer_satisfaction, customer_sentiment, rating, rating_justification, product}`
//! by calling the one tool it is offered, `record_call_analysis`, whose parameters are that
//! object's JSON Schema (all required). `tool_choice` forces the call, so a local model writes the
//! arguments under its schema grammar; the decoded object is checked again here.
//!
//! The enumerations: `customer_satisfaction` is `satisfied` / `neutral` / `dissatisfied`,
//! `customer_sentiment` is `positive` / `neutral` / `negative`; `rating` is an integer from 1
//! (poor service) to 5 (excellent); `product` is the product id or name the call was about, or
//! `none`.

use brazen_protocol::{Content, Item, ItemStatus, Role, Tool, ToolChoice};
use brazen_providers::{Llm, LlmEvent, LlmRequest};
use brazen_store::{CallAnalysis, ConversationDetail, EntryKind, EntryRole, Store};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;

/// The name of the function the model is made to call.
pub const ANALYSIS_TOOL: &str = "record_call_analysis";

/// The satisfaction values.
pub const SATISFACTION: [&str; 3] = ["satisfied", "neutral", "dissatisfied"];

/// The sentiment values.
pub const SENTIMENT: [&str; 3] = ["positive", "neutral", "negative"];

/// How long one analysis may take in [`analyse_conversation`].
pub const ANALYSIS_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest transcript given to the model, in characters (its start and end are kept).
const MAX_TRANSCRIPT_CHARS: usize = 6000;

/// The instructions of an analysis request.
const INSTRUCTIONS: &str = "You review customer service calls of Contoso, an online fashion shop. Read the call \
transcript the user gives and record your analysis by calling record_call_analysis once. Judge only from the \
transcript.";

/// The `record_call_analysis` tool: its parameters are the analysis' JSON Schema.
pub fn analysis_tool() -> Tool {
    Tool {
        name: ANALYSIS_TOOL.into(),
        description: "Record the analysis of one customer call.".into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "call_reason": {"type": "string", "maxLength": 120,
                    "description": "Why the customer called, in a few words."},
                "customer_satisfaction": {"type": "string", "enum": SATISFACTION,
                    "description": "How satisfied the customer was at the end."},
                "customer_sentiment": {"type": "string", "enum": SENTIMENT,
                    "description": "The customer's overall tone."},
                "rating": {"type": "integer", "minimum": 1, "maximum": 5,
                    "description": "How well the agent served the customer: 1 poor to 5 excellent."},
                "rating_justification": {"type": "string", "maxLength": 240,
                    "description": "One sentence on why that rating."},
                "product": {"type": "string", "maxLength": 80,
                    "description": "The product id or name the call was about, or none."}
            },
            "required": ["call_reason", "customer_satisfaction", "customer_sentiment", "rating",
                "rating_justification", "product"]
        }),
    }
}

/// Shortens a transcript to [`MAX_TRANSCRIPT_CHARS`], keeping its first third and its end.
fn clip(transcript: &str) -> String {
    let chars: Vec<char> = transcript.chars().collect();
    if chars.len() <= MAX_TRANSCRIPT_CHARS {
        return transcript.to_owned();
    }
    let head = MAX_TRANSCRIPT_CHARS / 3;
    let tail = MAX_TRANSCRIPT_CHARS - head;
    let start: String = chars[..head].iter().collect();
    let end: String = chars[chars.len() - tail..].iter().collect();
    format!("{start}\n[… part of the call left out …]\n{end}")
}

/// Reads and checks the arguments of a `record_call_analysis` call.
pub fn decode_analysis(arguments: &str) -> Result<CallAnalysis, String> {
    let value: Value = serde_json::from_str(arguments)
        .map_err(|e| format!("The analysis arguments are not valid JSON ({e}): {}", preview(arguments)))?;
    let Some(o) = value.as_object() else {
        return Err(format!("The analysis arguments are not a JSON object: {}", preview(arguments)));
    };
    let text = |key: &str| -> Result<String, String> {
        match o.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            Some(Value::String(_)) => Err(format!("The analysis field '{key}' is empty.")),
            Some(other) => Err(format!("The analysis field '{key}' must be a string; got {other}.")),
            None => Err(format!("The analysis is missing the field '{key}'.")),
        }
    };
    let choice = |key: &str, allowed: &[&str]| -> Result<String, String> {
        let v = text(key)?.to_lowercase();
        if allowed.contains(&v.as_str()) {
            Ok(v)
        } else {
            Err(format!("The analysis field '{key}' must be one of {}; got '{v}'.", allowed.join(", ")))
        }
    };
    let rating = match o.get("rating") {
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e9 => f as i64,
            _ => return Err(format!("The analysis rating must be a whole number from 1 to 5; got {n}.")),
        },
        Some(other) => return Err(format!("The analysis rating must be a whole number from 1 to 5; got {other}.")),
        None => return Err("The analysis is missing the field 'rating'.".into()),
    };
    if !(1..=5).contains(&rating) {
        return Err(format!("The analysis rating must be from 1 to 5; got {rating}."));
    }
    Ok(CallAnalysis {
        call_reason: text("call_reason")?,
        customer_satisfaction: choice("customer_satisfaction", &SATISFACTION)?,
        customer_sentiment: choice("customer_sentiment", &SENTIMENT)?,
        rating,
        rating_justification: text("rating_justification")?,
        product: text("product")?,
    })
}

fn preview(text: &str) -> String {
    let mut p: String = text.chars().take(200).collect();
    if p.len() < text.len() {
        p.push('…');
    }
    p
}

/// Asks `llm` for the analysis of a call's transcript (forcing one `record_call_analysis`
/// call) and decodes it. The error says what went wrong: the model failed, wrote text instead of
/// the call, or wrote arguments that do not fit the schema.
pub async fn analyse(llm: &dyn Llm, transcript: &str) -> Result<CallAnalysis, String> {
    if transcript.trim().is_empty() {
        return Err("The call transcript is empty; there is nothing to analyse.".into());
    }
    let request = LlmRequest {
        instructions: INSTRUCTIONS.into(),
        items: vec![Item::message(
            "item_call_transcript",
            Role::User,
            vec![Content::InputText(format!("Call transcript:\n{}", clip(transcript)))],
            ItemStatus::Completed,
        )],
        tools: vec![analysis_tool()],
        tool_choice: ToolChoice::Function(ANALYSIS_TOOL.into()),
        temperature: 0.2,
        max_output_tokens: Some(512),
        routing: None,
    };
    let mut stream = llm.generate(request);
    let mut call: Option<(String, String)> = None; // (call_id, arguments)
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        match event {
            LlmEvent::ToolCallStart { call_id, name } if name == ANALYSIS_TOOL && call.is_none() => {
                call = Some((call_id, String::new()));
            }
            LlmEvent::ToolCallStart { name, .. } if name != ANALYSIS_TOOL => {
                return Err(format!("The model called '{name}' instead of {ANALYSIS_TOOL}."));
            }
            LlmEvent::ToolCallStart { .. } => {}
            LlmEvent::ToolCallArguments { call_id, delta } => {
                if let Some((_, arguments)) = call.as_mut().filter(|(id, _)| *id == call_id) {
                    arguments.push_str(&delta);
                }
            }
            LlmEvent::TextDelta(delta) => text.push_str(&delta),
            LlmEvent::Done { hit_token_cap, .. } => {
                if hit_token_cap {
                    return Err("The model hit its token cap before finishing the analysis.".into());
                }
                break;
            }
            LlmEvent::Failed(e) => return Err(format!("The model failed: {e}")),
        }
    }
    match call {
        Some((_, arguments)) => decode_analysis(&arguments),
        None if text.trim().is_empty() => Err(format!("The model did not call {ANALYSIS_TOOL}.")),
        None => Err(format!("The model wrote text instead of calling {ANALYSIS_TOOL}: {}", preview(&text))),
    }
}

/// The transcript of a stored conversation, one line per entry (`User: …`, `Assistant: …`, a
/// tool call and its output), in order.
pub fn render_transcript(conversation: &ConversationDetail) -> String {
    let mut out = String::new();
    for e in &conversation.entries {
        let name = e.name.as_deref().unwrap_or("a tool");
        let line = match (e.kind, e.role) {
            (EntryKind::Message, EntryRole::User) => format!("User: {}", e.text),
            (EntryKind::Message, EntryRole::Assistant) => format!("Assistant: {}", e.text),
            (EntryKind::Message, EntryRole::System) => continue,
            (EntryKind::Message, EntryRole::Tool) => format!("Tool: {}", e.text),
            (EntryKind::FunctionCall, _) => format!("Assistant called {name} with {}", e.text),
            (EntryKind::FunctionCallOutput, _) => format!("{name} returned: {}", preview_long(&e.text)),
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&line);
    }
    out
}

fn preview_long(text: &str) -> String {
    let mut p: String = text.chars().take(600).collect();
    if p.len() < text.len() {
        p.push('…');
    }
    p
}

/// A call log as a tool caller sends it: a JSON list of turns (`[{"role"|"speaker", "text"|
/// "content"|"message"}]`) becomes `Role: text` lines; any other text is used as it is.
pub fn render_call_log(call_log: &str) -> String {
    let Ok(Value::Array(turns)) = serde_json::from_str::<Value>(call_log) else { return call_log.trim().to_owned() };
    let lines: Vec<String> = turns
        .iter()
        .filter_map(|t| {
            let who = ["role", "speaker", "from"].iter().find_map(|k| t.get(*k)?.as_str())?;
            let text = ["text", "content", "message", "transcript"].iter().find_map(|k| t.get(*k)?.as_str())?;
            let mut who = who.to_owned();
            if let Some(first) = who.get(..1) {
                who = first.to_uppercase() + &who[1..];
            }
            Some(format!("{who}: {text}"))
        })
        .collect();
    if lines.is_empty() { call_log.trim().to_owned() } else { lines.join("\n") }
}

/// Analyses a stored conversation and records the outcome: the analysis (`done`) or the error
/// (`failed`, one more attempt counted). Returns the same outcome. The lead's session-end hook
/// and `brazen analyse` call this; [`brazen_store::Store::pending_analyses`] lists what to retry.
pub async fn analyse_conversation(store: &Store, llm: &dyn Llm, conversation_id: &str) -> Result<CallAnalysis, String> {
    let detail = store
        .conversation(conversation_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("There is no conversation '{conversation_id}'."))?;
    let transcript = render_transcript(&detail);
    let outcome = if transcript.trim().is_empty() {
        Err("The conversation has no transcript to analyse.".to_owned())
    } else {
        match tokio::time::timeout(ANALYSIS_TIMEOUT, analyse(llm, &transcript)).await {
            Ok(result) => result,
            Err(_) => Err(format!("The analysis took longer than {} s.", ANALYSIS_TIMEOUT.as_secs())),
        }
    };
    let recorded = match &outcome {
        Ok(analysis) => store.record_analysis(conversation_id, analysis).await,
        Err(error) => store.record_analysis_failure(conversation_id, error).await,
    };
    recorded.map_err(|e| format!("The analysis could not be stored: {e}"))?;
    outcome
}

/// The analysis as tools and admin routes show it.
pub fn analysis_json(analysis: &CallAnalysis) -> Value {
    serde_json::to_value(analysis).unwrap_or(Value::Null)
}
