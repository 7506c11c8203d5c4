//! The request body of a streamed Chat Completions call, from the engine's [`LlmRequest`].
//!
//! The conversation becomes `messages`: the session's instructions as the first `system`
//! message, user words (spoken numbers and spelt-out ids read as digits, as for the local
//! model: [`crate::spoken`]), assistant replies (text or the transcript of their audio), and
//! function calls as an assistant message's `tool_calls` followed by one `tool` message per
//! call. The API refuses a `tool` message without its call and a call without its answer, which
//! a realtime conversation can hold (a client deleted an item; a client tool has not answered
//! yet), so an output without its call is given as a `user` note and a call without its output
//! gets an output saying that none came.

use crate::request::DEFAULT_INSTRUCTIONS;
use brazen_protocol::{Item, ItemBody, Role, ToolChoice};
use brazen_providers::LlmRequest;
use serde_json::{Value, json};
use std::collections::HashSet;

/// What a call without an output is answered with, so the API accepts the history.
pub const NO_OUTPUT: &str = r#"{"error":"no result was given for this call"}"#;

/// The JSON body for `request`: streamed, with usage, `model` when given (an Azure deployment's
/// URL names it instead).
pub fn body(request: &LlmRequest, model: Option<&str>) -> Value {
    let mut body = json!({
        "messages": messages(request),
        "stream": true,
        "stream_options": {"include_usage": true},
        "temperature": request.temperature,
    });
    if let Some(model) = model {
        body["model"] = json!(model);
    }
    if let Some(cap) = request.max_output_tokens {
        body["max_tokens"] = json!(cap);
    }
    // With `tool_choice: none` the tools are left out: servers that render a model's own chat
    // template ignore `tool_choice`, and a model shown tools may call one anyway.
    if !request.tools.is_empty() && request.tool_choice != ToolChoice::None {
        body["tools"] = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
        body["tool_choice"] = match &request.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"), // not sent: see above
            ToolChoice::Required => json!("required"),
            ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
        };
    }
    body
}

/// The conversation as Chat Completions messages.
pub fn messages(request: &LlmRequest) -> Vec<Value> {
    let system = if request.instructions.trim().is_empty() { DEFAULT_INSTRUCTIONS } else { &request.instructions };
    let mut out = vec![json!({"role": "system", "content": system})];
    let answered: HashSet<&str> = request
        .items
        .iter()
        .filter_map(|i| match &i.body {
            ItemBody::FunctionCallOutput { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    // The assistant message that holds the calls being made one after another.
    let mut current: Option<usize> = None;
    let mut calls_made: HashSet<&str> = HashSet::new();
    for item in &request.items {
        match &item.body {
            ItemBody::FunctionCall { call_id, name, arguments } => {
                let at = *current.get_or_insert_with(|| {
                    // "" rather than null: some servers (llama-cpp-python) want a string.
                    out.push(json!({"role": "assistant", "content": "", "tool_calls": []}));
                    out.len() - 1
                });
                let arguments = if serde_json::from_str::<Value>(arguments).is_ok_and(|v| v.is_object()) {
                    arguments.clone()
                } else {
                    "{}".to_owned()
                };
                if let Some(calls) = out[at]["tool_calls"].as_array_mut() {
                    calls.push(json!({"id": call_id, "type": "function",
                        "function": {"name": name, "arguments": arguments}}));
                }
                calls_made.insert(call_id);
                if !answered.contains(call_id.as_str()) {
                    out.push(json!({"role": "tool", "tool_call_id": call_id, "content": NO_OUTPUT}));
                }
            }
            ItemBody::FunctionCallOutput { call_id, output } => {
                current = None;
                if calls_made.contains(call_id.as_str()) {
                    out.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
                } else {
                    out.push(json!({"role": "user", "content": format!("(A tool's result: {output})")}));
                }
            }
            ItemBody::Message { role, .. } => {
                current = None;
                if let Some(message) = message(item, *role) {
                    out.push(message);
                }
            }
        }
    }
    order_tool_messages(out)
}

/// A message item as a chat message (none when it has no text).
fn message(item: &Item, role: Role) -> Option<Value> {
    let text = item.text();
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(match role {
        Role::System => json!({"role": "system", "content": text}),
        Role::User => json!({"role": "user", "content": crate::spoken::normalize(text)}),
        Role::Assistant => json!({"role": "assistant", "content": text}),
    })
}

/// Puts each assistant message's `tool` messages right after it, in the order of its calls:
/// the outputs of parallel calls may arrive after the next call was made, and the API wants
/// every answer before anything else.
fn order_tool_messages(messages: Vec<Value>) -> Vec<Value> {
    let mut tools: Vec<Value> = Vec::new();
    let mut rest: Vec<Value> = Vec::new();
    for m in messages {
        if m["role"] == "tool" { tools.push(m) } else { rest.push(m) }
    }
    let mut out = Vec::with_capacity(rest.len() + tools.len());
    for m in rest {
        let ids: Vec<String> = m["tool_calls"]
            .as_array()
            .map(|calls| calls.iter().filter_map(|c| c["id"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        out.push(m);
        for id in ids {
            // Of several outputs for one call (a client answered twice), the last counts.
            if let Some(answer) = tools.iter().rev().find(|t| t["tool_call_id"] == id.as_str()) {
                out.push(answer.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_protocol::{Content, ItemStatus, Tool};

    fn user(id: &str, text: &str) -> Item {
        Item::message(id, Role::User, vec![Content::InputText(text.into())], ItemStatus::Completed)
    }

    fn call(id: &str, call_id: &str) -> Item {
        Item {
            id: id.into(),
            status: ItemStatus::Completed,
            body: ItemBody::FunctionCall {
                call_id: call_id.into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
            },
        }
    }

    fn output(id: &str, call_id: &str, text: &str) -> Item {
        Item {
            id: id.into(),
            status: ItemStatus::Completed,
            body: ItemBody::FunctionCallOutput { call_id: call_id.into(), output: text.into() },
        }
    }

    fn request(items: Vec<Item>) -> LlmRequest {
        LlmRequest {
            instructions: String::new(),
            items,
            tools: vec![Tool {
                name: "get_weather".into(),
                description: "Weather".into(),
                parameters: json!({"type": "object"}),
            }],
            tool_choice: ToolChoice::Function("get_weather".into()),
            temperature: 0.7,
            max_output_tokens: Some(100),
            routing: None,
        }
    }

    #[test]
    fn a_request_becomes_a_streamed_chat_completion_with_tools() {
        let b = body(&request(vec![user("a", "I want two of them")]), Some("qwen"));
        assert_eq!(b["model"], "qwen");
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["max_tokens"], 100);
        assert_eq!(b["messages"][0], json!({"role": "system", "content": DEFAULT_INSTRUCTIONS}));
        assert_eq!(b["messages"][1], json!({"role": "user", "content": "I want 2 of them"}));
        assert_eq!(b["tools"][0]["function"]["name"], "get_weather");
        assert_eq!(b["tool_choice"], json!({"type": "function", "function": {"name": "get_weather"}}));
        let mut refused = request(vec![]);
        refused.tool_choice = ToolChoice::None;
        assert!(body(&refused, None).get("tools").is_none(), "tool_choice none leaves the tools out");
        let mut no_tools = request(vec![]);
        no_tools.tools.clear();
        let b = body(&no_tools, None);
        assert!(b.get("tools").is_none() && b.get("tool_choice").is_none() && b.get("model").is_none(), "{b}");
    }

    #[test]
    fn calls_and_outputs_pair_up_even_when_the_history_does_not() {
        let m = messages(&request(vec![
            user("a", "weather?"),
            call("b", "c1"),
            call("c", "c2"),
            output("d", "c2", "rain"),
            output("e", "c1", "sun"),
            output("f", "gone", "orphan"),
            call("g", "c3"),
            user("h", "and now?"),
        ]));
        let roles: Vec<&str> = m.iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "tool", "user", "assistant", "tool", "user"]);
        assert_eq!(m[2]["tool_calls"].as_array().unwrap().len(), 2, "parallel calls share one message");
        assert_eq!((m[3]["tool_call_id"].as_str(), m[3]["content"].as_str()), (Some("c1"), Some("sun")));
        assert_eq!((m[4]["tool_call_id"].as_str(), m[4]["content"].as_str()), (Some("c2"), Some("rain")));
        assert!(m[5]["content"].as_str().unwrap().contains("orphan"), "an output without its call is a note");
        assert_eq!(m[7]["content"], NO_OUTPUT, "a call without an output is answered");
    }
}
