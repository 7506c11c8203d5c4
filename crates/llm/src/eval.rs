//! The tool-calling evaluation: cases written as an ASR hears people (no punctuation, spelled
//! numbers and ids), run through the same request mapping and decoder as `serve`, scored
//! without a judge model: the right tool or none, every expected argument, and — for answers
//! after a tool result — the facts the spoken answer must mention.
//!
//! The retail set (`eval/retail-cases.jsonl`, `eval/retail-tools.json`,
//! `eval/retail-instructions.txt`) is built in; `brazen eval` runs it or another set.

use crate::local::{LocalModel, Output};
use crate::request::turn_for;
use brazen_protocol::{Content, Item, ItemBody, ItemStatus, Role, Tool, ToolChoice};
use brazen_providers::LlmRequest;
use serde::Deserialize;
use serde_json::Value;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// The built-in retail cases (JSON lines).
pub const RETAIL_CASES: &str = include_str!("../eval/retail-cases.jsonl");
/// The retail agent's tools (a JSON array of function tools).
pub const RETAIL_TOOLS: &str = include_str!("../eval/retail-tools.json");
/// The retail agent's instructions.
pub const RETAIL_INSTRUCTIONS: &str = include_str!("../eval/retail-instructions.txt");

/// One earlier step of a case's conversation.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Step {
    /// The user said this.
    User {
        /// What they said.
        user: String,
    },
    /// The assistant said this.
    Assistant {
        /// What it said.
        assistant: String,
    },
    /// The assistant called a tool, which returned `result`.
    Call {
        /// `{"name": …, "arguments": {…}}`.
        call: Value,
        /// The tool's result.
        result: Value,
    },
}

/// What a case expects.
#[derive(Debug, Clone, Deserialize)]
pub struct Expect {
    /// The tool to call, or `None` for a spoken reply.
    pub tool: Option<String>,
    /// Expected arguments: a value to equal (ids compared on letters and digits, case-blind),
    /// or `{"contains": [..]}` / `{"any": [..]}` for substrings of a free-text argument.
    #[serde(default)]
    pub args: serde_json::Map<String, Value>,
    /// Facts the spoken reply must mention, each `a|b` for alternatives (case-blind).
    #[serde(default)]
    pub mentions: Vec<String>,
}

/// One evaluation case.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// Its id.
    pub id: String,
    /// Its category (search, order, no_tool, answer, …).
    pub category: String,
    /// The conversation before the last user message.
    #[serde(default)]
    pub history: Vec<Step>,
    /// The last user message (absent when the case ends with a tool result).
    #[serde(default)]
    pub user: Option<String>,
    /// What the reply must be.
    pub expect: Expect,
}

/// Reads cases, one JSON object per line (blank lines skipped).
pub fn parse_cases(jsonl: &str) -> Result<Vec<Case>, String> {
    jsonl
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Reads tools: a JSON array of `{"type": "function", "name", "description", "parameters"}`.
pub fn parse_tools(json: &str) -> Result<Vec<Tool>, String> {
    let list: Vec<Value> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    list.iter()
        .map(|t| {
            Ok(Tool {
                name: t["name"].as_str().ok_or("a tool has no name")?.to_owned(),
                description: t["description"].as_str().unwrap_or_default().to_owned(),
                parameters: t["parameters"].clone(),
            })
        })
        .collect()
}

/// How one case went.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The case.
    pub id: String,
    /// Its category.
    pub category: String,
    /// Whether it expected a tool call.
    pub expects_tool: bool,
    /// The call made, if any: name and arguments.
    pub called: Option<(String, String)>,
    /// What was said, if anything.
    pub said: String,
    /// The right tool (or none).
    pub tool_ok: bool,
    /// Tool right and every expected argument right, and the mentions present.
    pub ok: bool,
    /// Seconds the turn took.
    pub seconds: f64,
}

fn item(id: String, body: ItemBody) -> Item {
    Item { id, status: ItemStatus::Completed, body }
}

/// The engine request for a case.
pub fn request(case: &Case, tools: &[Tool], instructions: &str) -> LlmRequest {
    let mut items = Vec::new();
    let message = |n: usize, role: Role, content: Content| {
        Item::message(format!("item_{n}"), role, vec![content], ItemStatus::Completed)
    };
    for (n, step) in case.history.iter().enumerate() {
        match step {
            Step::User { user } => items.push(message(n, Role::User, Content::InputText(user.clone()))),
            Step::Assistant { assistant } => {
                items.push(message(n, Role::Assistant, Content::Audio { transcript: assistant.clone() }));
            }
            Step::Call { call, result } => {
                let call_id = format!("call_{n}");
                items.push(item(
                    format!("item_{n}c"),
                    ItemBody::FunctionCall {
                        call_id: call_id.clone(),
                        name: call["name"].as_str().unwrap_or_default().to_owned(),
                        arguments: call["arguments"].to_string(),
                    },
                ));
                items.push(item(
                    format!("item_{n}o"),
                    ItemBody::FunctionCallOutput { call_id, output: result.to_string() },
                ));
            }
        }
    }
    if let Some(user) = &case.user {
        items.push(message(case.history.len(), Role::User, Content::InputText(user.clone())));
    }
    LlmRequest {
        instructions: instructions.to_owned(),
        items,
        tools: tools.to_vec(),
        tool_choice: ToolChoice::Auto,
        temperature: 0.0,
        max_output_tokens: None,
    }
}

/// Letters and digits of an id, upper-cased: `ord_555` and `ORD 555` are the same order.
fn id_key(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_uppercase()
}

/// Whether an argument matches its expectation.
fn argument_ok(expected: &Value, got: Option<&Value>) -> bool {
    let Some(got) = got else { return false };
    let text = got.as_str().map(str::to_lowercase).unwrap_or_else(|| got.to_string().to_lowercase());
    match expected {
        Value::Object(o) if o.contains_key("contains") => {
            o["contains"].as_array().is_some_and(|all| all.iter().filter_map(Value::as_str).all(|s| text.contains(s)))
        }
        Value::Object(o) if o.contains_key("any") => {
            o["any"].as_array().is_some_and(|any| any.iter().filter_map(Value::as_str).any(|s| text.contains(s)))
        }
        Value::Number(n) => got.as_f64().zip(n.as_f64()).is_some_and(|(a, b)| (a - b).abs() < 1e-9),
        Value::String(s) => got.as_str().is_some_and(|g| g == s || id_key(g) == id_key(s)),
        other => other == got,
    }
}

/// Runs one case.
pub fn run_case(model: &LocalModel, case: &Case, tools: &[Tool], instructions: &str) -> Result<Outcome, String> {
    let request = request(case, tools, instructions);
    let budget = model.context_budget();
    let turn = turn_for(&request, budget, model, &|| false).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut said = String::new();
    let mut called = None;
    model
        .generate(&turn, &AtomicBool::new(false), &mut |o| match o {
            Output::Text(t) => said.push_str(&t),
            Output::CallStart(_) => {}
            Output::CallDone { name, arguments } => called = Some((name, arguments)),
        })
        .map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let expect = &case.expect;
    let tool_ok = called.as_ref().map(|(n, _)| n) == expect.tool.as_ref();
    let args: serde_json::Map<String, Value> =
        called.as_ref().and_then(|(_, a)| serde_json::from_str(a).ok()).unwrap_or_default();
    let args_ok = expect.args.iter().all(|(k, v)| argument_ok(v, args.get(k)));
    let lower = said.to_lowercase();
    let mentions_ok = expect.mentions.iter().all(|m| m.split('|').any(|alt| lower.contains(&alt.to_lowercase())));
    Ok(Outcome {
        id: case.id.clone(),
        category: case.category.clone(),
        expects_tool: expect.tool.is_some(),
        called,
        said,
        tool_ok,
        ok: tool_ok && args_ok && mentions_ok,
        seconds,
    })
}

/// The summary: accuracy per category and overall, tool + arguments on cases that need a
/// tool, "no tool" on cases that need none.
pub fn report(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let mut categories: Vec<&str> = Vec::new();
    for o in outcomes {
        if !categories.contains(&o.category.as_str()) {
            categories.push(&o.category);
        }
    }
    let pct = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 * 100.0 / d as f64 };
    for c in categories {
        let of: Vec<&Outcome> = outcomes.iter().filter(|o| o.category == c).collect();
        let ok = of.iter().filter(|o| o.ok).count();
        out.push_str(&format!("{c:<12} {ok:>3}/{:<3} {:5.1}%\n", of.len(), pct(ok, of.len())));
    }
    let ok = outcomes.iter().filter(|o| o.ok).count();
    out.push_str(&format!("{:<12} {ok:>3}/{:<3} {:5.1}%\n", "overall", outcomes.len(), pct(ok, outcomes.len())));
    let tool: Vec<&Outcome> = outcomes.iter().filter(|o| o.expects_tool).collect();
    let tool_ok = tool.iter().filter(|o| o.ok).count();
    let none: Vec<&Outcome> = outcomes.iter().filter(|o| !o.expects_tool).collect();
    let none_ok = none.iter().filter(|o| o.called.is_none()).count();
    out.push_str(&format!(
        "tool + arguments correct {tool_ok}/{} = {:.1}%; no tool when none is needed {none_ok}/{} = {:.1}%\n",
        tool.len(),
        pct(tool_ok, tool.len()),
        none.len(),
        pct(none_ok, none.len())
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_lists_each_category_once_with_its_share() {
        let outcome = |category: &str, ok: bool| Outcome {
            id: "x".into(),
            category: category.into(),
            expects_tool: category != "no_tool",
            called: None,
            said: String::new(),
            tool_ok: ok,
            ok,
            seconds: 0.1,
        };
        let report = report(&[
            outcome("search", true),
            outcome("no_tool", true),
            outcome("search", false),
            outcome("no_tool", true),
        ]);
        let lines: Vec<&str> = report.lines().collect();
        assert!(lines[0].starts_with("search") && lines[0].contains("1/2") && lines[0].contains("50.0%"), "{report}");
        assert!(lines[1].starts_with("no_tool") && lines[1].contains("2/2"), "{report}");
        assert!(lines[2].starts_with("overall") && lines[2].contains("3/4"), "{report}");
    }
    use serde_json::json;

    #[test]
    fn the_built_in_set_covers_every_tool_and_kind_of_case() {
        let cases = parse_cases(RETAIL_CASES).unwrap();
        let tools = parse_tools(RETAIL_TOOLS).unwrap();
        assert!(cases.len() >= 60, "{} cases", cases.len());
        for t in &tools {
            assert!(
                cases.iter().any(|c| c.expect.tool.as_deref() == Some(t.name.as_str())),
                "no case calls {}",
                t.name
            );
        }
        assert!(cases.iter().filter(|c| c.expect.tool.is_none() && c.history.is_empty()).count() >= 10, "small talk");
        assert!(cases.iter().any(|c| !c.expect.mentions.is_empty()), "answers from tool results");
        let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), cases.len(), "ids are unique");
        for c in &cases {
            let r = request(c, &tools, RETAIL_INSTRUCTIONS);
            assert!(!r.items.is_empty(), "{}", c.id);
        }
    }

    #[test]
    fn arguments_are_compared_as_the_set_says() {
        assert!(argument_ok(&json!(60), Some(&json!(60.0))));
        assert!(!argument_ok(&json!(60), Some(&json!(600))));
        assert!(argument_ok(&json!("ORD555"), Some(&json!("ord_555"))));
        assert!(!argument_ok(&json!("AB1234"), Some(&json!("A1234"))));
        assert!(argument_ok(
            &json!({"contains": ["12 main", "springfield"]}),
            Some(&json!("12 Main Street, Springfield"))
        ));
        assert!(!argument_ok(&json!({"contains": ["12 main", "boston"]}), Some(&json!("12 Main Street, Springfield"))));
        assert!(argument_ok(&json!({"any": ["warrant"]}), Some(&json!("What is the warranty?"))));
        assert!(!argument_ok(&json!("Footwear"), None));
    }
}
