//! From the engine's [`LlmRequest`] (session instructions, conversation items, tools, tool
//! choice) to a [`Turn`] for the local model.
//!
//! The conversation is rendered the way the model answers: every assistant message becomes a
//! call to `respond` with its text, function calls become calls, their outputs tool results.
//! So the history reads exactly like the model's own output, and the KV cache of one turn is
//! the prefix of the next.
//!
//! Which calls the reply may make follows `tool_choice`: `auto` allows every tool and
//! `respond`, except right after a tool result, when the model answers from it (`respond`
//! only); `none` allows `respond` only; `required` the tools only; a named function that one
//! only. The tools stay listed in the prompt whatever the choice (`respond` first), so its
//! cached prefix holds.
//!
//! User messages are read with spoken numbers and spelt-out ids as digits
//! ([`crate::spoken`]).
//!
//! Memory: when the prompt would exceed the context budget, the oldest messages (after the
//! system prompt) are dropped, a function call together with its output, until it fits.

use crate::chat::{Message, Role, ToolCall};
use crate::local::{RESPOND, ToolSpec, Turn};
use brazen_engine::providers::LlmRequest;
use brazen_protocol::{ItemBody, ToolChoice};
use serde_json::Value;

/// The system prompt when the session gives none.
pub const DEFAULT_INSTRUCTIONS: &str =
    "You are a helpful voice assistant. Answer in one or two short spoken sentences, without lists or markdown.";

/// Why a request cannot be turned into a prompt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// `tool_choice` names a function the session does not offer.
    #[error("tool_choice names the function {0:?}, which is not among the session's tools")]
    UnknownTool(String),
    /// `tool_choice` is `required` but there are no tools.
    #[error("tool_choice is \"required\" but the session offers no tools")]
    NoTools,
    /// The conversation does not fit even with only its last message.
    #[error("the conversation does not fit the model's context of {0} tokens")]
    TooLong(usize),
}

/// The turn for `request`. `count` gives a turn's prompt length in tokens; messages are dropped
/// from the oldest until it is at most `budget`.
pub fn turn_for(request: &LlmRequest, budget: usize, count: &dyn Fn(&Turn) -> usize) -> Result<Turn, RequestError> {
    let system = if request.instructions.trim().is_empty() { DEFAULT_INSTRUCTIONS } else { &request.instructions };
    let mut messages = vec![Message::text(Role::System, system)];
    let mut names = std::collections::HashMap::new();
    for item in &request.items {
        match &item.body {
            ItemBody::Message { role, .. } => {
                let text = item.text();
                if text.trim().is_empty() {
                    continue;
                }
                messages.push(match role {
                    brazen_protocol::Role::System => Message::text(Role::System, text),
                    brazen_protocol::Role::User => Message::text(Role::User, crate::spoken::normalize(text.trim())),
                    brazen_protocol::Role::Assistant => respond_call(&text),
                });
            }
            ItemBody::FunctionCall { call_id, name, arguments } => {
                names.insert(call_id.clone(), name.clone());
                let arguments = serde_json::from_str::<Value>(arguments)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| Value::Object(Default::default()));
                messages.push(Message {
                    role: Role::Assistant,
                    content: String::new(),
                    tool_calls: vec![ToolCall { name: name.clone(), arguments }],
                });
            }
            ItemBody::FunctionCallOutput { output, .. } => messages.push(Message::text(Role::Tool, output.clone())),
        }
    }
    let after_tool_result = messages.last().is_some_and(|m| m.role == Role::Tool);
    let client: Vec<ToolSpec> = request
        .tools
        .iter()
        .map(|t| ToolSpec {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: t.parameters.clone(),
        })
        .filter(|t| t.name != RESPOND)
        .collect();
    let allowed: Vec<String> = match &request.tool_choice {
        ToolChoice::Auto if after_tool_result || client.is_empty() => vec![RESPOND.into()],
        ToolChoice::Auto => client.iter().map(|t| t.name.clone()).chain([RESPOND.into()]).collect(),
        ToolChoice::None => vec![RESPOND.into()],
        ToolChoice::Required if client.is_empty() => return Err(RequestError::NoTools),
        ToolChoice::Required => client.iter().map(|t| t.name.clone()).collect(),
        ToolChoice::Function(name) if client.iter().any(|t| &t.name == name) => vec![name.clone()],
        ToolChoice::Function(name) => return Err(RequestError::UnknownTool(name.clone())),
    };
    // `respond` is listed first: with it last, the 1.5B model sent general questions ("what's
    // the capital of France") to a store tool more often (`brazen eval`: no-tool cases 19/21 →
    // 20/21 with it first; bench/README.md).
    let mut tools = vec![ToolSpec::respond()];
    tools.extend(client);
    let max_tokens = request.max_output_tokens.map_or(crate::MAX_TURN_TOKENS, |m| m as usize);
    let mut turn = Turn { messages, tools, allowed, temperature: request.temperature, max_tokens };
    while count(&turn) > budget {
        if turn.messages.len() <= 2 {
            return Err(RequestError::TooLong(budget));
        }
        // Drop the oldest message after the system prompt, and the tool results that answer
        // a dropped call.
        turn.messages.remove(1);
        while turn.messages.get(1).is_some_and(|m| m.role == Role::Tool) {
            turn.messages.remove(1);
        }
    }
    Ok(turn)
}

/// An assistant message as the model writes one: a call to `respond`.
fn respond_call(text: &str) -> Message {
    let mut arguments = serde_json::Map::new();
    arguments.insert("text".into(), Value::String(text.to_owned()));
    Message {
        role: Role::Assistant,
        content: String::new(),
        tool_calls: vec![ToolCall { name: RESPOND.into(), arguments: Value::Object(arguments) }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_protocol::{Content, Item, ItemStatus, Tool};
    use serde_json::json;

    fn request(items: Vec<Item>, choice: ToolChoice) -> LlmRequest {
        LlmRequest {
            instructions: "Be Ava.".into(),
            items,
            tools: vec![Tool {
                name: "get_order_status".into(),
                description: "Order status.".into(),
                parameters: json!({"type": "object", "properties": {"order_id": {"type": "string"}}}),
            }],
            tool_choice: choice,
            temperature: 0.8,
            max_output_tokens: Some(50),
        }
    }

    fn user(text: &str) -> Item {
        Item::message("u", brazen_protocol::Role::User, vec![Content::InputText(text.into())], ItemStatus::Completed)
    }

    fn call_and_output() -> Vec<Item> {
        vec![
            Item {
                id: "c".into(),
                status: ItemStatus::Completed,
                body: ItemBody::FunctionCall {
                    call_id: "call_1".into(),
                    name: "get_order_status".into(),
                    arguments: "{\"order_id\": \"7731\"}".into(),
                },
            },
            Item {
                id: "o".into(),
                status: ItemStatus::Completed,
                body: ItemBody::FunctionCallOutput {
                    call_id: "call_1".into(),
                    output: "{\"status\": \"shipped\"}".into(),
                },
            },
        ]
    }

    #[test]
    fn items_become_the_models_own_format() {
        let said = Item::message(
            "a",
            brazen_protocol::Role::Assistant,
            vec![Content::Audio { transcript: "Hello!".into() }],
            ItemStatus::Completed,
        );
        let mut items = vec![user("hi"), said, user("where is 7731")];
        items.extend(call_and_output());
        let turn = turn_for(&request(items, ToolChoice::Auto), 10_000, &|_| 0).unwrap();
        let roles: Vec<Role> = turn.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::User, Role::Assistant, Role::Tool]);
        assert_eq!(turn.messages[0].content, "Be Ava.");
        assert_eq!(turn.messages[2].tool_calls[0].arguments, json!({"text": "Hello!"}));
        assert_eq!(turn.messages[4].tool_calls[0].arguments, json!({"order_id": "7731"}));
        assert_eq!(turn.allowed, ["respond"], "after a tool result the model answers from it");
        assert_eq!(turn.tools.len(), 2, "tools stay listed");
        assert_eq!(turn.max_tokens, 50);
    }

    #[test]
    fn tool_choice_decides_what_may_be_called() {
        let allowed = |choice| turn_for(&request(vec![user("hi")], choice), 10_000, &|_| 0).map(|t| t.allowed);
        assert_eq!(allowed(ToolChoice::Auto).unwrap(), ["get_order_status", "respond"]);
        assert_eq!(allowed(ToolChoice::None).unwrap(), ["respond"]);
        assert_eq!(allowed(ToolChoice::Required).unwrap(), ["get_order_status"]);
        assert_eq!(allowed(ToolChoice::Function("get_order_status".into())).unwrap(), ["get_order_status"]);
        assert_eq!(allowed(ToolChoice::Function("nope".into())).unwrap_err(), RequestError::UnknownTool("nope".into()));
    }

    #[test]
    fn old_messages_are_dropped_to_fit_with_their_tool_results() {
        let mut items = vec![user("first")];
        items.extend(call_and_output());
        items.push(user("second"));
        let turn = turn_for(&request(items.clone(), ToolChoice::Auto), 3, &|t| t.messages.len()).unwrap();
        let texts: Vec<&str> = turn.messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["Be Ava.", "second"], "the call went, and its output with it");
        assert_eq!(
            turn_for(&request(items, ToolChoice::Auto), 1, &|t| t.messages.len()).unwrap_err(),
            RequestError::TooLong(1)
        );
    }
}
