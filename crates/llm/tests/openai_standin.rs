//! The OpenAI-compatible engine against a stand-in server written from the published Chat
//! Completions wire format (server-sent `chat.completion.chunk`s, `[DONE]`, error objects,
//! `Retry-After`): what it sends, what it reads, and how it meets refusals, stalls, broken
//! servers and a caller that goes away. The real-server test is `llama_server.rs`.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use brazen_llm::openai::{AZURE_API_VERSION, Credential, Flavor, OpenAiConfig, OpenAiLlm};
use brazen_protocol::{Content, Item, ItemStatus, Role, Tool, ToolChoice};
use brazen_providers::{Llm, LlmEvent, LlmRequest, LlmUsage};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the stand-in answers to each request, by its number (0-based); the last one repeats.
#[derive(Clone)]
enum Answer {
    /// 200 with these SSE chunks (each a `data:` line), then `[DONE]`.
    Stream(Vec<Value>),
    /// A status with an OpenAI error body and headers.
    Status(u16, &'static str, Vec<(&'static str, &'static str)>),
    /// 200, one chunk, then nothing more, the connection held open; sets the flag when the
    /// client goes away.
    Stall(Arc<AtomicBool>),
}

#[derive(Default)]
struct Seen {
    bodies: Vec<Value>,
    headers: Vec<HeaderMap>,
    paths: Vec<String>,
    queries: Vec<HashMap<String, String>>,
}

#[derive(Clone)]
struct StandIn {
    answers: Arc<Vec<Answer>>,
    count: Arc<AtomicUsize>,
    seen: Arc<Mutex<Seen>>,
}

/// Sets its flag when dropped: the body stream is dropped when the client disconnects.
struct Gone(Arc<AtomicBool>);
impl Drop for Gone {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn sse(chunks: &[Value]) -> String {
    let mut out = String::new();
    for c in chunks {
        out.push_str(&format!("data: {c}\n\n"));
    }
    out + "data: [DONE]\n\n"
}

async fn handle(
    State(s): State<StandIn>,
    path: Option<Path<String>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let n = s.count.fetch_add(1, Ordering::SeqCst);
    {
        let mut seen = s.seen.lock().unwrap();
        seen.bodies.push(serde_json::from_str(&body).unwrap_or(Value::Null));
        seen.headers.push(headers);
        seen.paths.push(path.map(|p| p.0).unwrap_or_default());
        seen.queries.push(query);
    }
    let answer = s.answers.get(n).or(s.answers.last()).unwrap().clone();
    let builder = Response::builder().header("content-type", "text/event-stream");
    match answer {
        Answer::Stream(chunks) => builder.body(Body::from(sse(&chunks))).unwrap(),
        Answer::Status(code, message, extra) => {
            let mut b = Response::builder()
                .status(StatusCode::from_u16(code).unwrap())
                .header("content-type", "application/json");
            for (k, v) in extra {
                b = b.header(k, v);
            }
            b.body(Body::from(json!({"error": {"message": message, "type": "test_error", "code": null}}).to_string()))
                .unwrap()
        }
        Answer::Stall(flag) => {
            let first = format!("data: {}\n\n", text_chunk("Hel"));
            let guard = Gone(flag);
            let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) })
                .chain(futures_util::stream::pending())
                .map(move |x| {
                    let _ = &guard;
                    x
                });
            builder.body(Body::from_stream(stream)).unwrap()
        }
    }
}

async fn serve(answers: Vec<Answer>) -> (String, StandIn) {
    let state = StandIn { answers: Arc::new(answers), count: Default::default(), seen: Default::default() };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(handle))
        .route("/openai/deployments/{deployment}/chat/completions", post(handle))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

fn text_chunk(text: &str) -> Value {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
}

fn request() -> LlmRequest {
    LlmRequest {
        instructions: "Be brief.".into(),
        items: vec![Item::message("i1", Role::User, vec![Content::InputText("hi".into())], ItemStatus::Completed)],
        tools: vec![Tool {
            name: "lookup".into(),
            description: "Look it up".into(),
            parameters: json!({"type": "object", "properties": {"q": {"type": "string"}}}),
        }],
        tool_choice: ToolChoice::Auto,
        temperature: 0.6,
        max_output_tokens: Some(64),
        routing: None,
    }
}

fn engine(url: String, tweak: impl FnOnce(&mut OpenAiConfig)) -> OpenAiLlm {
    let mut config = OpenAiConfig::new(url, Some("test-model".into()));
    config.timeout = Duration::from_millis(800);
    tweak(&mut config);
    OpenAiLlm::new(config).unwrap()
}

async fn collect(llm: &OpenAiLlm) -> Vec<LlmEvent> {
    tokio::time::timeout(Duration::from_secs(30), llm.generate(request()).collect()).await.expect("the turn ends")
}

#[tokio::test]
async fn a_streamed_reply_and_a_streamed_call_are_read_as_they_come() {
    let call = |args: Value| json!({"choices": [{"index": 0, "delta": {"tool_calls": [args]}, "finish_reason": null}]});
    let (url, state) = serve(vec![
        Answer::Stream(vec![
            text_chunk("Hello"),
            text_chunk(" there."),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}}),
        ]),
        Answer::Stream(vec![
            call(json!({"index": 0, "id": "call_abc", "type": "function", "function": {"name": "lookup", "arguments": ""}})),
            call(json!({"index": 0, "function": {"arguments": "{\"q\": \"sh"}})),
            call(json!({"index": 0, "function": {"arguments": "oes\"}"}})),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        ]),
    ])
    .await;
    let llm = engine(format!("{url}/v1"), |c| c.credential = Credential::ApiKey("sk-test".into()));
    let reply = collect(&llm).await;
    assert_eq!(
        reply,
        vec![
            LlmEvent::TextDelta("Hello".into()),
            LlmEvent::TextDelta(" there.".into()),
            LlmEvent::Done {
                usage: LlmUsage { input_tokens: 21, cached_tokens: 0, output_tokens: 3 },
                hit_token_cap: false
            },
        ]
    );
    let called = collect(&llm).await;
    assert_eq!(called[0], LlmEvent::ToolCallStart { call_id: "call_abc".into(), name: "lookup".into() });
    let arguments: String = called
        .iter()
        .filter_map(|e| match e {
            LlmEvent::ToolCallArguments { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(arguments, r#"{"q": "shoes"}"#);
    assert!(matches!(called.last(), Some(LlmEvent::Done { .. })));

    let seen = state.seen.lock().unwrap();
    let body = &seen.bodies[0];
    assert_eq!(body["model"], "test-model");
    assert_eq!((body["stream"].as_bool(), body["max_tokens"].as_u64()), (Some(true), Some(64)));
    assert_eq!(body["messages"][0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(body["messages"][1], json!({"role": "user", "content": "hi"}));
    assert_eq!(body["tools"][0]["function"]["name"], "lookup");
    assert_eq!(seen.headers[0]["authorization"], "Bearer sk-test");
}

#[tokio::test]
async fn azure_gets_its_deployment_url_api_version_and_api_key() {
    let (url, state) = serve(vec![Answer::Stream(vec![text_chunk("Hi.")])]).await;
    let llm = engine(url, |c| {
        c.flavor = Flavor::Azure { api_version: AZURE_API_VERSION.into() };
        c.model = Some("my-gpt".into());
        c.credential = Credential::ApiKey("azure-key".into());
    });
    let events = collect(&llm).await;
    assert!(matches!(events.last(), Some(LlmEvent::Done { .. })), "{events:?}");
    let seen = state.seen.lock().unwrap();
    assert_eq!(seen.paths[0], "my-gpt");
    assert_eq!(seen.queries[0]["api-version"], AZURE_API_VERSION);
    assert_eq!(seen.headers[0]["api-key"], "azure-key");
    assert!(seen.headers[0].get("authorization").is_none());
    assert!(seen.bodies[0].get("model").is_none(), "the deployment names the model");
}

#[tokio::test]
async fn busy_and_failing_servers_are_retried_with_backoff_then_given_up_on() {
    let busy = Answer::Status(429, "Rate limit reached", vec![("retry-after-ms", "100")]);
    let (url, state) = serve(vec![busy.clone(), busy, Answer::Stream(vec![text_chunk("Finally.")])]).await;
    let events = collect(&engine(format!("{url}/v1"), |_| {})).await;
    assert_eq!(events[0], LlmEvent::TextDelta("Finally.".into()));
    assert_eq!(state.count.load(Ordering::SeqCst), 3, "two 429s, then the answer");

    let (url, state) = serve(vec![Answer::Status(503, "The engine is overloaded", vec![])]).await;
    let started = Instant::now();
    let events = collect(&engine(format!("{url}/v1"), |c| c.max_retries = 2)).await;
    match &events[..] {
        [LlmEvent::Failed(m)] => {
            assert!(m.contains("503") && m.contains("The engine is overloaded") && m.contains("3 attempts"), "{m}")
        }
        other => panic!("a clear failure: {other:?}"),
    }
    assert_eq!(state.count.load(Ordering::SeqCst), 3);
    assert!(started.elapsed() >= Duration::from_millis(1_500), "backoff 0.5 s then 1 s: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_refused_key_or_request_fails_at_once_with_the_servers_words() {
    let (url, state) = serve(vec![Answer::Status(401, "Incorrect API key provided", vec![])]).await;
    let events = collect(&engine(format!("{url}/v1"), |_| {})).await;
    assert!(
        matches!(&events[..], [LlmEvent::Failed(m)] if m.contains("401") && m.contains("Incorrect API key")),
        "{events:?}"
    );
    assert_eq!(state.count.load(Ordering::SeqCst), 1, "a 4xx other than 429 is not retried");

    let (url, _) = serve(vec![Answer::Status(429, "Quota exceeded", vec![("retry-after", "3600")])]).await;
    let events = collect(&engine(format!("{url}/v1"), |_| {})).await;
    assert!(
        matches!(&events[..], [LlmEvent::Failed(m)] if m.contains("Quota exceeded") && m.contains("3600")),
        "{events:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_named_in_the_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let events = collect(&engine(format!("http://127.0.0.1:{port}/v1"), |c| c.max_retries = 1)).await;
    assert!(
        matches!(&events[..], [LlmEvent::Failed(m)] if m.contains("cannot connect") && m.contains(&port.to_string())),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_stalled_stream_times_out_and_a_dropped_one_closes_the_connection() {
    let gone = Arc::new(AtomicBool::new(false));
    let (url, _) = serve(vec![Answer::Stall(gone.clone())]).await;
    let llm = engine(format!("{url}/v1"), |_| {});
    let events = collect(&llm).await;
    assert_eq!(events[0], LlmEvent::TextDelta("Hel".into()));
    assert!(matches!(&events[1], LlmEvent::Failed(m) if m.contains("sent nothing")), "{events:?}");

    let gone = Arc::new(AtomicBool::new(false));
    let (url, _) = serve(vec![Answer::Stall(gone.clone())]).await;
    let llm = engine(format!("{url}/v1"), |c| c.timeout = Duration::from_secs(30));
    let mut stream = llm.generate(request());
    assert_eq!(stream.next().await, Some(LlmEvent::TextDelta("Hel".into())));
    drop(stream); // a barge-in
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the server saw the client go");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
