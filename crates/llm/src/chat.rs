//! The prompt, rendered with the model's own chat template (`tokenizer.chat_template` in the
//! GGUF metadata) by minijinja. The template's `tojson` writes JSON the way Hugging Face's does
//! (Python `json.dumps`: `", "` / `": "` separators, keys in their declared order), because that
//! is the text the model was trained on.

use crate::grammar::python_json;
use serde::Serialize;
use serde_json::Value;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The system prompt.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

/// A call the assistant made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    /// The function.
    pub name: String,
    /// Its arguments (an object).
    pub arguments: Value,
}

/// One message of the conversation, as chat templates expect it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Its author.
    pub role: Role,
    /// Its text (a tool result's JSON for [`Role::Tool`]).
    pub content: String,
    /// The calls an assistant message makes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

impl Message {
    /// A message with text only.
    pub fn text(role: Role, content: impl Into<String>) -> Message {
        Message { role, content: content.into(), tool_calls: Vec::new() }
    }
}

/// A tool as templates list it: `{"type": "function", "function": {name, description, parameters}}`.
pub fn tool_json(name: &str, description: &str, parameters: &Value) -> Value {
    let mut function = serde_json::Map::new();
    function.insert("name".into(), Value::String(name.into()));
    function.insert("description".into(), Value::String(description.into()));
    function.insert("parameters".into(), parameters.clone());
    let mut tool = serde_json::Map::new();
    tool.insert("type".into(), Value::String("function".into()));
    tool.insert("function".into(), Value::Object(function));
    Value::Object(tool)
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
}

impl ChatTemplate {
    /// Compiles `source` (a Hugging Face chat template).
    pub fn new(source: &str) -> Result<ChatTemplate, String> {
        let mut env = minijinja::Environment::new();
        env.add_filter("tojson", |v: minijinja::Value| -> Result<String, minijinja::Error> {
            let json = serde_json::to_value(&v)
                .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))?;
            Ok(python_json(&json))
        });
        env.add_function("raise_exception", |message: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned("chat", source.to_owned())
            .map_err(|e| format!("the chat template does not compile: {e}"))?;
        Ok(ChatTemplate { env })
    }

    /// The prompt for `messages` with `tools` offered, ending with the opening of the
    /// assistant's turn.
    pub fn render(&self, messages: &[Message], tools: &[Value]) -> Result<String, String> {
        let template = self.env.get_template("chat").map_err(|e| e.to_string())?;
        template
            .render(minijinja::context! {
                messages => messages,
                tools => if tools.is_empty() { None } else { Some(tools) },
                add_generation_prompt => true,
            })
            .map_err(|e| format!("the chat template failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The start of Qwen2.5's template, enough to check the tool list and calls.
    const QWEN_LIKE: &str = r#"{%- if tools %}{{- '<|im_start|>system\n' + messages[0]['content'] + '\n<tools>' }}{%- for tool in tools %}{{- "\n" }}{{- tool | tojson }}{%- endfor %}{{- "\n</tools><|im_end|>\n" }}{%- endif %}{%- for message in messages %}{%- if message.role == "user" %}{{- '<|im_start|>user\n' + message.content + '<|im_end|>\n' }}{%- elif message.role == "assistant" %}{{- '<|im_start|>assistant' }}{%- for tool_call in message.tool_calls %}{{- '\n<tool_call>\n{"name": "' }}{{- tool_call.name }}{{- '", "arguments": ' }}{{- tool_call.arguments | tojson }}{{- '}\n</tool_call>' }}{%- endfor %}{{- '<|im_end|>\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"#;

    #[test]
    fn tools_and_calls_render_as_python_json_in_declared_order() {
        let t = ChatTemplate::new(QWEN_LIKE).unwrap();
        let params = json!({"type": "object", "properties": {"z": {"type": "string"}, "a": {"type": "number"}}});
        let messages = vec![
            Message::text(Role::System, "Be brief."),
            Message::text(Role::User, "hi"),
            Message {
                role: Role::Assistant,
                content: String::new(),
                tool_calls: vec![ToolCall { name: "f".into(), arguments: json!({"z": "é", "a": 2}) }],
            },
        ];
        let prompt = t.render(&messages, &[tool_json("f", "Does f.", &params)]).unwrap();
        assert_eq!(
            prompt,
            "<|im_start|>system\nBe brief.\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"Does f.\", \"parameters\": {\"type\": \"object\", \"properties\": {\"z\": {\"type\": \"string\"}, \"a\": {\"type\": \"number\"}}}}}\n</tools><|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"z\": \"é\", \"a\": 2}}\n</tool_call><|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn a_broken_template_is_a_clear_error() {
        assert!(ChatTemplate::new("{% if %}").err().unwrap().contains("does not compile"));
        let t = ChatTemplate::new("{{ raise_exception('no system message') }}").unwrap();
        assert!(t.render(&[], &[]).unwrap_err().contains("no system message"));
    }
}
