//! `--llm openai` against a real OpenAI-compatible server: llama-cpp-python's (PyPI; scripts/test
//! builds it into a venv and names its Python in `BRAZEN_TEST_LLAMA_PYTHON`) serving the same
//! GGUF brazen installs. A Voice Live conversation calls a client's tool and answers from its
//! output; `brazen eval` runs retail cases through it; and an unreachable server fails the
//! response with an error that names it while the session goes on.
//!
//! Without `BRAZEN_TEST_LLAMA_PYTHON` the real-server tests say so and pass, unless
//! `BRAZEN_TEST_STRICT` is set (scripts/test sets it), when they fail.

use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

mod common;
use common::llama::LlamaServer;
use common::{Server, Ws, send};

/// Events until `response.done`, with a generous wait (two cores, a 1.5B model).
async fn response(ws: &mut Ws) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let e = common::next_within(ws, Duration::from_secs(300)).await.expect("an event within 5 minutes");
        let done = e["type"] == "response.done";
        events.push(e);
        if done {
            return events;
        }
    }
}

fn user_text(text: &str) -> Value {
    json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": text}]}})
}

async fn session(port: u16) -> Ws {
    let (mut ws, _) = common::connect(port, "/voice-live/realtime", &[]).await.unwrap();
    common::until(&mut ws, "session.created").await;
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_calls_a_client_tool_and_answers_from_it_on_llama_cpp_python() {
    let Some(llama) = LlamaServer::start() else { return };
    let url = llama.url();
    let server =
        Server::start(&["--agent", "none", "--llm", "openai", "--llm-url", &url, "--llm-model", "qwen2.5-coder-1.5b"]);
    assert_eq!(server.engines()["llm"], "openai");
    let mut ws = session(server.port).await;
    send(
        &mut ws,
        json!({"type": "session.update", "session": {
            "modalities": ["text"],
            "instructions": "You are a weather assistant. Use get_weather for any question about the weather.",
            "tools": [{"type": "function", "name": "get_weather", "description": "The current weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
            "tool_choice": "auto", "temperature": 0.6}}),
    )
    .await;
    send(&mut ws, user_text("What is the weather like in Paris right now?")).await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let events = response(&mut ws).await;
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "completed", "{done}");
    let call = done["response"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap_or_else(|| panic!("a function call: {done}"));
    assert_eq!(call["name"], "get_weather");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert!(args["city"].as_str().unwrap_or_default().contains("Paris"), "{args}");

    send(
        &mut ws,
        json!({"type": "conversation.item.create", "item": {"type": "function_call_output",
            "call_id": call["call_id"], "output": "{\"temperature_c\": 18, \"sky\": \"light rain\"}"}}),
    )
    .await;
    // An answer from the output, no further call (a per-response override, as clients send it).
    send(&mut ws, json!({"type": "response.create", "response": {"tool_choice": "none"}})).await;
    let events = response(&mut ws).await;
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "completed", "{done}");
    let said: String = events
        .iter()
        .filter(|e| e["type"] == "response.text.delta" || e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    eprintln!("answer: {said}");
    let lower = said.to_lowercase();
    assert!(lower.contains("18") || lower.contains("rain"), "the answer uses the tool's output: {said}");
}

#[test]
fn brazen_eval_runs_retail_cases_through_llama_cpp_python() {
    let Some(llama) = LlamaServer::start() else { return };
    let all =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../agents/retail/eval/cases.jsonl")).unwrap();
    let wanted = ["\"order-01\"", "\"delivery-01\"", "\"policy-01\"", "\"smalltalk-01\""];
    let subset: Vec<&str> = all.lines().filter(|l| wanted.iter().any(|w| l.contains(w))).collect();
    assert_eq!(subset.len(), wanted.len());
    let path = std::env::temp_dir().join(format!("brazen-llama-eval-{}.jsonl", std::process::id()));
    std::fs::write(&path, subset.join("\n")).unwrap();
    let out = Command::new(common::binary())
        .args(["eval", "--cases", path.to_str().unwrap(), "--llm", "openai", "--llm-url", &llama.url()])
        .args(["--llm-model", "qwen2.5-coder-1.5b"])
        .output()
        .unwrap();
    std::fs::remove_file(&path).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{stdout}");
    assert!(stdout.contains("model openai at http://127.0.0.1:"), "{stdout}");
    assert!(!stdout.contains("error:"), "every case got an answer from the server: {stdout}");
    let overall = stdout.lines().find(|l| l.starts_with("overall")).expect("an overall line");
    let ok: usize = overall.split_whitespace().nth(1).and_then(|f| f.split('/').next()?.parse().ok()).unwrap();
    assert!(ok >= 2, "{overall}");
}

#[tokio::test]
async fn an_unreachable_server_fails_the_response_and_the_session_goes_on() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let server = Server::start_with_env(
        &["--agent", "none", "--llm", "openai", "--llm-url", &url, "--llm-model", "m"],
        &[("BRAZEN_LLM_TIMEOUT_S", "5")],
    );
    let mut ws = session(server.port).await;
    send(&mut ws, user_text("Hello?")).await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let events = response(&mut ws).await;
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "failed", "{done}");
    let message = done["response"]["status_details"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("cannot connect") && message.contains(&port.to_string()), "{message}");
    // The session is still there.
    send(&mut ws, json!({"type": "session.update", "session": {"instructions": "Still here."}})).await;
    common::until(&mut ws, "session.updated").await;
}
