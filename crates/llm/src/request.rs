//! From the engine's [`LlmRequest`] (session instructions, conversation items, tools, tool
//! choice) to a [`Turn`] for the local model.
//!
//! The conversation is rendered the way the model answers. When the client offers tools,
//! every assistant message becomes a call to `respond` with its text, function calls become
//! calls, their outputs tool results. When it offers none, the reply is plain text
//! ([`Turn::plain`]: no tool list, no call around the words) and so are the assistant's
//! messages. Either way the history reads exactly like the model's own output, and the KV
//! cache of one turn is the prefix of the next.
//!
//! Which calls the reply may make follows `tool_choice`: `auto` allows every tool and
//! `respond`, except right after a tool result, when the model answers from it (`respond`
//! only); `none` allows `respond` only; `required` the tools only; a named function that one
//! only. The tools stay listed in the prompt whatever the choice (`respond` first), so its
//! cached prefix holds.
//!
//! When the request carries the agent's [`brazen_providers::Routing`], the turn gets its prior
//! for the last user message (over the calls the reply may make).
//!
//! User messages are read with spoken numbers and spelt-out ids as digits
//! ([`crate::spoken`]).
//!
//! Memory: when the prompt would exceed the context budget, the oldest messages (after the
//! system prompt) are dropped, a function call together with its output, until it fits. The
//! messages to keep are found walking back from the newest, counting each one's tokens once, so
//! the work grows with what is kept, not with the length of the conversation (a client may send
//! thousands of items); the whole prompt is then counted once to confirm. The caller's `stop`
//! is checked as it goes, so a request whose client has gone costs no more.

use crate::chat::{Message, Role, ToolCall};
use crate::local::{RESPOND, ToolSpec, Turn};
use brazen_protocol::{ItemBody, ToolChoice};
use brazen_providers::LlmRequest;
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
    /// The caller stopped it (its client went away).
    #[error("the request was cancelled")]
    Cancelled,
}

/// How long prompts are, in the model's tokens.
pub trait PromptSize {
    /// The tokens of a whole turn's prompt (`usize::MAX` when it cannot be rendered).
    fn prompt_tokens(&self, turn: &Turn) -> usize;
    /// The tokens of a piece of text on its own.
    fn text_tokens(&self, text: &str) -> usize;
}

/// Tokens the chat template adds around each message (`<|im_start|>role\n…<|im_end|>\n`):
/// added to each message's own text when estimating which ones fit.
const MESSAGE_TOKENS: usize = 5;

/// Messages walked between two looks at the caller's `stop`.
const STOP_EVERY: usize = 64;

/// The turn for `request`, with messages dropped from the oldest until its prompt is at most
/// `budget` tokens by `size`. Checks `stop` as it goes and gives up with
/// [`RequestError::Cancelled`] once it says so.
pub fn turn_for(
    request: &LlmRequest,
    budget: usize,
    size: &dyn PromptSize,
    stop: &dyn Fn() -> bool,
) -> Result<Turn, RequestError> {
    let cancelled = |i: usize| i.is_multiple_of(STOP_EVERY) && stop();
    let system = if request.instructions.trim().is_empty() { DEFAULT_INSTRUCTIONS } else { &request.instructions };
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
    // Without the client's tools (and calls in the history) the reply is plain text, and so
    // are the assistant's messages.
    let calls = request.items.iter().any(|i| !matches!(i.body, ItemBody::Message { .. }));
    let plain = client.is_empty() && !calls;
    let mut messages = vec![Message::text(Role::System, system)];
    for (i, item) in request.items.iter().enumerate() {
        if cancelled(i) {
            return Err(RequestError::Cancelled);
        }
        match &item.body {
            ItemBody::Message { role, .. } => {
                let text = item.text();
                if text.trim().is_empty() {
                    continue;
                }
                messages.push(match role {
                    brazen_protocol::Role::System => Message::text(Role::System, text),
                    brazen_protocol::Role::User => Message::text(Role::User, crate::spoken::normalize(text.trim())),
                    brazen_protocol::Role::Assistant if plain => Message::text(Role::Assistant, text),
                    brazen_protocol::Role::Assistant => respond_call(&text),
                });
            }
            ItemBody::FunctionCall { name, arguments, .. } => {
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
    let allowed: Vec<String> = match &request.tool_choice {
        ToolChoice::Required if client.is_empty() => return Err(RequestError::NoTools),
        ToolChoice::Function(name) if !client.iter().any(|t| &t.name == name) => {
            return Err(RequestError::UnknownTool(name.clone()));
        }
        _ if plain => Vec::new(),
        ToolChoice::Auto if after_tool_result => vec![RESPOND.into()],
        ToolChoice::Auto => client.iter().map(|t| t.name.clone()).chain([RESPOND.into()]).collect(),
        ToolChoice::None => vec![RESPOND.into()],
        ToolChoice::Required => client.iter().map(|t| t.name.clone()).collect(),
        ToolChoice::Function(name) => vec![name.clone()],
    };
    // `respond` is listed first: with it last, the 1.5B model sent general questions ("what's
    // the capital of France") to a store tool more often (`brazen eval`: no-tool cases 19/21 →
    // 20/21 with it first; bench/README.md).
    let tools = if plain { Vec::new() } else { [ToolSpec::respond()].into_iter().chain(client).collect() };
    let max_tokens = request.max_output_tokens.map_or(crate::MAX_TURN_TOKENS, |m| m as usize);
    // The agent's routing hint for what the user just said (only when there is a choice).
    let prior = match (&request.routing, messages.last()) {
        (Some(routing), Some(last)) if last.role == Role::User && allowed.len() > 1 => {
            let names: Vec<&str> = allowed.iter().map(String::as_str).collect();
            routing.0.prior(&last.content, &names)
        }
        _ => Vec::new(),
    };
    let mut turn = Turn { messages: vec![], tools, allowed, prior, temperature: request.temperature, max_tokens };
    // What every prompt holds (the system prompt and the tools), then each message from the
    // newest back while the estimate fits; the newest is always kept.
    turn.messages = messages.drain(..1).collect();
    let mut used = size.prompt_tokens(&turn);
    let mut keep_from = messages.len();
    for (walked, i) in (0..messages.len()).rev().enumerate() {
        if cancelled(walked) {
            return Err(RequestError::Cancelled);
        }
        used = used.saturating_add(message_tokens(&messages[i], size));
        if used > budget && i + 1 < messages.len() {
            break;
        }
        keep_from = i;
    }
    drop_front(&mut messages, keep_from);
    turn.messages.extend(messages);
    // The estimate leaves out how the template joins messages: confirm, and when over, drop at
    // once the oldest messages whose estimates cover the excess (then confirm again).
    loop {
        let tokens = size.prompt_tokens(&turn);
        if tokens <= budget {
            return Ok(turn);
        }
        if stop() {
            return Err(RequestError::Cancelled);
        }
        if turn.messages.len() <= 2 {
            return Err(RequestError::TooLong(budget));
        }
        let mut rest = turn.messages.split_off(1);
        let mut covered = 0;
        let n = rest
            .iter()
            .take(rest.len() - 1)
            .take_while(|m| {
                let enough = covered >= tokens - budget;
                covered += message_tokens(m, size);
                !enough
            })
            .count()
            .max(1);
        drop_front(&mut rest, n);
        turn.messages.extend(rest);
    }
}

/// A message's estimated share of a prompt, in tokens.
fn message_tokens(message: &Message, size: &dyn PromptSize) -> usize {
    let calls: usize = message
        .tool_calls
        .iter()
        .map(|c| size.text_tokens(&c.name) + size.text_tokens(&c.arguments.to_string()) + MESSAGE_TOKENS)
        .sum();
    size.text_tokens(&message.content) + calls + MESSAGE_TOKENS
}

/// Drops the first `n` messages and then any tool results at the front (their call is gone).
fn drop_front(messages: &mut Vec<Message>, n: usize) {
    let n = n.min(messages.len());
    let results = messages[n..].iter().take_while(|m| m.role == Role::Tool).count();
    // The newest message stays even if it is a tool result.
    let drop = (n + results).min(messages.len().saturating_sub(1).max(n));
    messages.drain(..drop);
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

    /// Counts messages as prompt tokens: one per message, none for text.
    struct Messages;

    impl PromptSize for Messages {
        fn prompt_tokens(&self, turn: &Turn) -> usize {
            turn.messages.len()
        }
        fn text_tokens(&self, _text: &str) -> usize {
            0
        }
    }

    /// Counts bytes as tokens, and how often a whole prompt was counted.
    #[derive(Default)]
    struct Bytes(std::cell::Cell<usize>);

    impl PromptSize for Bytes {
        fn prompt_tokens(&self, turn: &Turn) -> usize {
            self.0.set(self.0.get() + 1);
            turn.messages.iter().map(|m| m.content.len() + MESSAGE_TOKENS).sum()
        }
        fn text_tokens(&self, text: &str) -> usize {
            text.len()
        }
    }

    fn never() -> bool {
        false
    }

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
            routing: None,
        }
    }

    fn user(text: &str) -> Item {
        Item::message("u", brazen_protocol::Role::User, vec![Content::InputText(text.into())], ItemStatus::Completed)
    }

    fn assistant(text: &str) -> Item {
        Item::message(
            "a",
            brazen_protocol::Role::Assistant,
            vec![Content::Audio { transcript: text.into() }],
            ItemStatus::Completed,
        )
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
        let said = assistant("Hello!");
        let mut items = vec![user("hi"), said, user("where is 7731")];
        items.extend(call_and_output());
        let turn = turn_for(&request(items, ToolChoice::Auto), 10_000, &Messages, &never).unwrap();
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
        let allowed =
            |choice| turn_for(&request(vec![user("hi")], choice), 10_000, &Messages, &never).map(|t| t.allowed);
        assert_eq!(allowed(ToolChoice::Auto).unwrap(), ["get_order_status", "respond"]);
        assert_eq!(allowed(ToolChoice::None).unwrap(), ["respond"]);
        assert_eq!(allowed(ToolChoice::Required).unwrap(), ["get_order_status"]);
        assert_eq!(allowed(ToolChoice::Function("get_order_status".into())).unwrap(), ["get_order_status"]);
        assert_eq!(allowed(ToolChoice::Function("nope".into())).unwrap_err(), RequestError::UnknownTool("nope".into()));
    }

    #[test]
    fn without_the_clients_tools_the_reply_and_the_history_are_plain_text() {
        let said = assistant("Hello!");
        let mut no_tools = request(vec![user("hi"), said, user("and you?")], ToolChoice::Auto);
        no_tools.tools.clear();
        let turn = turn_for(&no_tools, 10_000, &Messages, &never).unwrap();
        assert!(turn.plain() && turn.tools.is_empty() && turn.allowed.is_empty());
        assert_eq!(turn.messages[2].content, "Hello!");
        assert!(turn.messages[2].tool_calls.is_empty(), "no call to respond around it");
        no_tools.tool_choice = ToolChoice::None;
        assert!(turn_for(&no_tools, 10_000, &Messages, &never).unwrap().plain());
        no_tools.tool_choice = ToolChoice::Required;
        assert_eq!(turn_for(&no_tools, 10_000, &Messages, &never).unwrap_err(), RequestError::NoTools);
        // Calls in the history keep the call format, listing `respond` alone.
        let mut with_calls = request(vec![user("hi")], ToolChoice::Auto);
        with_calls.tools.clear();
        with_calls.items.extend(call_and_output());
        let turn = turn_for(&with_calls, 10_000, &Messages, &never).unwrap();
        assert!(!turn.plain() && turn.allowed == ["respond"], "{turn:?}");
        // With a tool offered, even one `tool_choice` rules out, the reply is a call.
        let none = turn_for(&request(vec![user("hi")], ToolChoice::None), 10_000, &Messages, &never).unwrap();
        assert!(!none.plain());
    }

    #[test]
    fn old_messages_are_dropped_to_fit_with_their_tool_results() {
        let mut items = vec![user("first")];
        items.extend(call_and_output());
        items.push(user("second"));
        let turn = turn_for(&request(items.clone(), ToolChoice::Auto), 3, &Messages, &never).unwrap();
        let texts: Vec<&str> = turn.messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["Be Ava.", "second"], "the call went, and its output with it");
        assert_eq!(
            turn_for(&request(items, ToolChoice::Auto), 1, &Messages, &never).unwrap_err(),
            RequestError::TooLong(1)
        );
    }

    #[test]
    fn a_long_conversation_is_cut_with_a_few_whole_prompt_counts() {
        let items: Vec<Item> = (0..5_000).map(|i| user(&format!("message number {i:05}"))).collect();
        let size = Bytes::default();
        let turn = turn_for(&request(items, ToolChoice::None), 1_000, &size, &never).unwrap();
        let last = turn.messages.last().unwrap();
        assert_eq!(last.content, "message number 04999");
        assert!(turn.messages.len() > 20, "as many as fit are kept: {}", turn.messages.len());
        assert!(size.prompt_tokens(&turn) <= 1_000);
        assert!(size.0.get() <= 4, "whole prompts counted {} times", size.0.get() - 1);
    }

    #[test]
    fn a_stopped_request_gives_up() {
        let items: Vec<Item> = (0..1_000).map(|i| user(&format!("m{i}"))).collect();
        let err = turn_for(&request(items, ToolChoice::None), 100, &Bytes::default(), &|| true).unwrap_err();
        assert_eq!(err, RequestError::Cancelled);
    }
}
