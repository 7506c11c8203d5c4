//! The tool-calling evaluation: cases written as an ASR hears people (no punctuation, spelled
//! numbers and ids), run through the same request mapping and decoder as `serve`, scored
//! without a judge model: the right tool or none, every expected argument, and — for answers
//! after a tool result — the facts the spoken answer must mention.
//!
//! Cases may also name the document a knowledge search should find (`expect.source`); the
//! caller runs the model's query through the agent's knowledge base and fills in
//! [`Outcome::sources`], and [`report`] gives the share found first and among the first three.
//!
//! `brazen eval` runs the retail agent's own set (`agents/retail/eval/cases.jsonl`). The set
//! here (`eval/retail-cases.jsonl`, `eval/retail-tools.json`, `eval/retail-instructions.txt`,
//! a hypothetical outdoor store with tools of its own) is this crate's regression set for the
//! decoder and the prompt (`tests/eval.rs`); `brazen eval --cases … --tools … --instructions …`
//! runs it too.

use crate::local::{LocalModel, Output};
use crate::request::turn_for;
use brazen_protocol::{Content, Item, ItemBody, ItemStatus, Role, Tool, ToolChoice};
use brazen_providers::{Llm, LlmEvent, LlmRequest};
use futures_util::StreamExt;
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
    /// Expected arguments: a value to equal (numbers compared numerically, strings equal or
    /// the same ids — letters and digits compared case-blind), `{"contains": [..]}` /
    /// `{"any": [..]}` for substrings of a free-text argument (case-blind), or
    /// `{"nonempty": true}` for a free-text argument that must be there and not blank.
    #[serde(default)]
    pub args: serde_json::Map<String, Value>,
    /// Facts the spoken reply must mention, each `a|b` for alternatives (case-blind).
    #[serde(default)]
    pub mentions: Vec<String>,
    /// The knowledge document (file name) that should answer the query of a knowledge search.
    #[serde(default)]
    pub source: Option<String>,
}

impl Expect {
    /// What is expected, in one line: `tool {"arg": …}` or `no tool`.
    pub fn describe(&self) -> String {
        match &self.tool {
            Some(tool) if self.args.is_empty() => tool.clone(),
            Some(tool) => format!("{tool} {}", Value::Object(self.args.clone())),
            None => "no tool".into(),
        }
    }
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
    /// What was expected ([`Expect::describe`]).
    pub expected: String,
    /// The document a knowledge search should have found, for cases that name one.
    pub expected_source: Option<String>,
    /// The documents the model's query found, best first (filled in by the caller, which holds
    /// the knowledge base; empty when the model made no search).
    pub sources: Vec<String>,
}

impl Outcome {
    /// A case the model did not finish (e.g. its decoder gave up): a failure, `error` in
    /// [`Outcome::said`].
    pub fn failed(case: &Case, error: String) -> Outcome {
        Outcome {
            id: case.id.clone(),
            category: case.category.clone(),
            expects_tool: case.expect.tool.is_some(),
            called: None,
            said: format!("error: {error}"),
            tool_ok: false,
            ok: false,
            seconds: 0.0,
            expected: case.expect.describe(),
            expected_source: case.expect.source.clone(),
            sources: Vec::new(),
        }
    }

    /// Where the expected document came among [`Outcome::sources`] (0: first), if at all.
    pub fn source_rank(&self) -> Option<usize> {
        let expected = self.expected_source.as_ref()?;
        self.sources.iter().position(|s| s == expected)
    }
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
        routing: None,
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
    let has = |s: &str| text.contains(&s.to_lowercase());
    match expected {
        Value::Object(o) if o.contains_key("contains") => {
            o["contains"].as_array().is_some_and(|all| all.iter().filter_map(Value::as_str).all(has))
        }
        Value::Object(o) if o.contains_key("any") => {
            o["any"].as_array().is_some_and(|any| any.iter().filter_map(Value::as_str).any(has))
        }
        Value::Object(o) if o.contains_key("nonempty") => match got {
            Value::String(s) => !s.trim().is_empty(),
            Value::Null => false,
            Value::Array(a) => !a.is_empty(),
            Value::Object(m) => !m.is_empty(),
            _ => true,
        },
        Value::Number(n) => got.as_f64().zip(n.as_f64()).is_some_and(|(a, b)| (a - b).abs() < 1e-9),
        Value::String(s) => got.as_str().is_some_and(|g| g == s || id_key(g) == id_key(s)),
        other => other == got,
    }
}

/// Runs one case on the local model directly, with the agent's `routing` when it has one (as
/// `serve` runs its turns).
pub fn run_case(
    model: &LocalModel,
    case: &Case,
    tools: &[Tool],
    instructions: &str,
    routing: Option<&brazen_providers::Routing>,
) -> Result<Outcome, String> {
    let mut request = request(case, tools, instructions);
    request.routing = routing.cloned();
    let budget = model.context_budget();
    let turn = turn_for(&request, budget, model, &|| false).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut said = String::new();
    let mut called = None;
    model
        .generate(&turn, &AtomicBool::new(false), &|| false, &mut |o| match o {
            Output::Text(t) => said.push_str(&t),
            Output::CallStart(_) => {}
            Output::CallDone { name, arguments } => called = Some((name, arguments)),
        })
        .map_err(|e| e.to_string())?;
    Ok(score(case, called, said, started.elapsed().as_secs_f64()))
}

/// Runs one case on any engine (a remote model, the local one on its worker), with the agent's
/// `routing` in the request. The first call made is the one scored.
pub async fn run_case_on(
    llm: &dyn Llm,
    case: &Case,
    tools: &[Tool],
    instructions: &str,
    routing: Option<&brazen_providers::Routing>,
) -> Result<Outcome, String> {
    let mut request = request(case, tools, instructions);
    request.routing = routing.cloned();
    let started = Instant::now();
    let mut stream = llm.generate(request);
    let mut said = String::new();
    let mut calls: Vec<(String, String, String)> = Vec::new(); // (call_id, name, arguments)
    while let Some(event) = stream.next().await {
        match event {
            LlmEvent::TextDelta(t) => said.push_str(&t),
            LlmEvent::ToolCallStart { call_id, name } => calls.push((call_id, name, String::new())),
            LlmEvent::ToolCallArguments { call_id, delta } => {
                if let Some(call) = calls.iter_mut().find(|c| c.0 == call_id) {
                    call.2.push_str(&delta);
                }
            }
            LlmEvent::Done { .. } => break,
            LlmEvent::Failed(e) => return Err(e),
        }
    }
    let called = calls.into_iter().next().map(|(_, name, arguments)| (name, arguments));
    Ok(score(case, called, said, started.elapsed().as_secs_f64()))
}

/// Scores what the model did for `case`: the call it made (name, arguments) and what it said.
fn score(case: &Case, called: Option<(String, String)>, said: String, seconds: f64) -> Outcome {
    let expect = &case.expect;
    let tool_ok = called.as_ref().map(|(n, _)| n) == expect.tool.as_ref();
    let args: serde_json::Map<String, Value> =
        called.as_ref().and_then(|(_, a)| serde_json::from_str(a).ok()).unwrap_or_default();
    let args_ok = expect.args.iter().all(|(k, v)| argument_ok(v, args.get(k)));
    let lower = said.to_lowercase();
    let mentions_ok = expect.mentions.iter().all(|m| m.split('|').any(|alt| lower.contains(&alt.to_lowercase())));
    Outcome {
        id: case.id.clone(),
        category: case.category.clone(),
        expects_tool: expect.tool.is_some(),
        called,
        said,
        tool_ok,
        ok: tool_ok && args_ok && mentions_ok,
        seconds,
        expected: expect.describe(),
        expected_source: expect.source.clone(),
        sources: Vec::new(),
    }
}

/// The summary: accuracy per category and overall, tool + arguments on cases that need a
/// tool, "no tool" on cases that need none, and — when cases name a source — how often the
/// model's knowledge search found that document first (top-1) and among the first three (top-3).
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
    let sourced: Vec<&Outcome> = outcomes.iter().filter(|o| o.expected_source.is_some()).collect();
    if !sourced.is_empty() {
        let top1 = sourced.iter().filter(|o| o.source_rank() == Some(0)).count();
        let top3 = sourced.iter().filter(|o| o.source_rank().is_some_and(|r| r < 3)).count();
        let n = sourced.len();
        out.push_str(&format!(
            "policy source: top-1 {top1}/{n} = {:.1}%, top-3 {top3}/{n} = {:.1}%\n",
            pct(top1, n),
            pct(top3, n)
        ));
    }
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
            expected: String::new(),
            expected_source: None,
            sources: Vec::new(),
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
        assert!(!report.contains("policy source"), "{report}");
    }

    #[test]
    fn the_report_gives_the_policy_source_rates() {
        let outcome = |sources: &[&str]| Outcome {
            id: "p".into(),
            category: "policy".into(),
            expects_tool: true,
            called: None,
            said: String::new(),
            tool_ok: true,
            ok: true,
            seconds: 0.1,
            expected: String::new(),
            expected_source: Some("refunds.md".into()),
            sources: sources.iter().map(|s| s.to_string()).collect(),
        };
        let all = [
            outcome(&["refunds.md", "returns-policy.md"]),
            outcome(&["returns-policy.md", "refunds.md"]),
            outcome(&["a.md", "b.md", "c.md", "refunds.md"]),
            outcome(&[]),
        ];
        assert_eq!(all[1].source_rank(), Some(1));
        assert_eq!(all[3].source_rank(), None);
        let report = report(&all);
        assert!(report.contains("policy source: top-1 1/4 = 25.0%, top-3 2/4 = 50.0%"), "{report}");
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
        assert!(argument_ok(&json!({"contains": ["12 Main"]}), Some(&json!("12 main street"))));
        assert!(argument_ok(&json!({"nonempty": true}), Some(&json!("return window"))));
        assert!(!argument_ok(&json!({"nonempty": true}), Some(&json!("  "))));
        assert!(!argument_ok(&json!({"nonempty": true}), Some(&Value::Null)));
        assert!(!argument_ok(&json!({"nonempty": true}), None));
    }
}
