//! A language model behind an OpenAI-compatible Chat Completions API: OpenAI itself, Azure
//! OpenAI (a deployment's URL with `api-version`, an `api-key` or an Entra bearer token), and the
//! servers that speak the same API — vLLM, TGI, llama.cpp's server, llama-cpp-python, Ollama.
//!
//! Each turn is one streamed `POST …/chat/completions` ([`wire`] builds the body, [`stream`]
//! reads the answer). Before any of the answer has arrived, a refused connection, a `429` or a
//! `5xx` is retried with exponential backoff (honouring `Retry-After` / `retry-after-ms`), up
//! to [`OpenAiConfig::max_retries`] times; other statuses fail at once with the server's own
//! message. The answer must start within [`OpenAiConfig::timeout`], and no gap between two
//! pieces of it may be longer. Dropping the stream (a barge-in, `response.cancel`) closes the
//! connection, which tells the server to stop.
//!
//! A server that passes a model's tool call through as text (`<tool_call>{…}</tool_call>`, as
//! servers running a model's own chat template do) is understood too ([`text_calls`]).
//!
//! The agent's routing by meaning ([`brazen_providers::Routing`]) acts on the local model's
//! own scores and is not sent: a remote model chooses its tools alone.

pub mod stream;
pub mod text_calls;
pub mod wire;

use brazen_protocol::ToolChoice;
use brazen_providers::{EngineStream, Llm, LlmEvent, LlmRequest};
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use stream::{Chunks, SseLines, Step};
use text_calls::TextCalls;
use tokio::sync::mpsc;

/// The `api-version` of Azure OpenAI's data-plane API used when none is given (the GA
/// version with streaming, tools and `stream_options`).
pub const AZURE_API_VERSION: &str = "2024-10-21";

/// The longest wait a server's `Retry-After` may ask for; longer ones fail at once.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The first backoff; each retry doubles it.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Which shape of the API the server has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// OpenAI's: `{url}/chat/completions`, the model in the body, a key as the bearer token.
    OpenAi,
    /// Azure OpenAI's: `{url}/openai/deployments/{model}/chat/completions?api-version=…`, a
    /// key in the `api-key` header.
    Azure {
        /// The `api-version` query parameter.
        api_version: String,
    },
}

/// Supplies bearer tokens that expire (an Entra ID token for Azure): asked before each request,
/// so it can hand out a cached token and refresh it ahead of its expiry.
pub trait TokenSource: Send + Sync {
    /// The token to send now.
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>>;
}

/// A bearer token given once (`$AZURE_OPENAI_AD_TOKEN`); it is not refreshed.
pub struct StaticToken(pub String);

impl TokenSource for StaticToken {
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + '_>> {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }
}

/// How brazen proves who it is to the server.
#[derive(Clone, Default)]
pub enum Credential {
    /// Nothing (a local server).
    #[default]
    None,
    /// An API key: `Authorization: Bearer KEY` for OpenAI's shape, `api-key: KEY` for Azure's.
    ApiKey(String),
    /// A bearer token from a source that refreshes it (Azure with Entra ID).
    Token(Arc<dyn TokenSource>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::None => "None",
            Credential::ApiKey(_) => "ApiKey(…)",
            Credential::Token(_) => "Token(…)",
        })
    }
}

/// Where the server is and how to talk to it.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The API's base URL (`https://api.openai.com/v1`, `http://127.0.0.1:8000/v1`), or for
    /// Azure the resource's endpoint (`https://NAME.openai.azure.com`). A URL that already ends
    /// in `/chat/completions` is used as it is.
    pub url: String,
    /// The model (`gpt-4o-mini`, the name vLLM serves) or, for Azure, the deployment.
    pub model: Option<String>,
    /// The API's shape.
    pub flavor: Flavor,
    /// The credential.
    pub credential: Credential,
    /// The longest wait for the answer to start, and between two pieces of it.
    pub timeout: Duration,
    /// Retries of a refused connection, a 429 or a 5xx before the answer starts.
    pub max_retries: u32,
}

impl OpenAiConfig {
    /// A configuration for `url` with OpenAI's shape, no credential, a 60 s timeout and 3
    /// retries.
    pub fn new(url: impl Into<String>, model: Option<String>) -> OpenAiConfig {
        OpenAiConfig {
            url: url.into(),
            model,
            flavor: Flavor::OpenAi,
            credential: Credential::None,
            timeout: Duration::from_secs(60),
            max_retries: 3,
        }
    }

    /// The URL requests go to, or why there is none.
    pub fn endpoint(&self) -> Result<String, String> {
        let url = self.url.trim();
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("the LLM URL {url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("the LLM URL {url:?} must start with http:// or https://"));
        }
        if parsed.path().trim_end_matches('/').ends_with("/chat/completions") {
            return Ok(url.to_owned());
        }
        let base = url.trim_end_matches('/');
        match &self.flavor {
            Flavor::OpenAi => Ok(format!("{base}/chat/completions")),
            Flavor::Azure { api_version } => {
                let deployment =
                    self.model.as_deref().filter(|m| !m.trim().is_empty()).ok_or(
                        "Azure OpenAI needs the deployment's name: set llm_model (--llm-model) to it".to_owned(),
                    )?;
                Ok(format!("{base}/openai/deployments/{deployment}/chat/completions?api-version={api_version}"))
            }
        }
    }
}

/// A model behind an OpenAI-compatible API.
pub struct OpenAiLlm {
    client: reqwest::Client,
    config: Arc<OpenAiConfig>,
    endpoint: String,
}

impl OpenAiLlm {
    /// The engine for `config`; fails when its URL is unusable.
    pub fn new(config: OpenAiConfig) -> Result<OpenAiLlm, String> {
        let endpoint = config.endpoint()?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("brazen/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(OpenAiLlm { client, config: Arc::new(config), endpoint })
    }

    /// The URL turns are posted to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Llm for OpenAiLlm {
    fn generate(&self, request: LlmRequest) -> EngineStream<LlmEvent> {
        let (events, rx) = mpsc::unbounded_channel();
        let body = wire::body(&request, self.model_in_body());
        let offered = if request.tool_choice == ToolChoice::None { Vec::new() } else { request.tools.clone() };
        let text_calls = TextCalls::new(offered.into_iter().map(|t| t.name).collect());
        let turn =
            Turn { client: self.client.clone(), config: self.config.clone(), url: self.endpoint.clone(), events };
        Box::pin(Events { work: Some(Box::pin(turn.run(body))), rx, text_calls, ready: VecDeque::new() })
    }
}

impl OpenAiLlm {
    fn model_in_body(&self) -> Option<&str> {
        match self.config.flavor {
            Flavor::OpenAi => self.config.model.as_deref(),
            Flavor::Azure { .. } => None,
        }
    }
}

/// The events of one turn: the request runs as the stream is polled (no task of its own), so
/// dropping the stream drops the connection. Calls written as text are read out on the way
/// ([`TextCalls`]).
struct Events {
    work: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    rx: mpsc::UnboundedReceiver<LlmEvent>,
    text_calls: TextCalls,
    ready: VecDeque<LlmEvent>,
}

impl futures_core::Stream for Events {
    type Item = LlmEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LlmEvent>> {
        if let Some(work) = self.work.as_mut()
            && work.as_mut().poll(cx).is_ready()
        {
            self.work = None;
        }
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Poll::Ready(Some(event));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(event)) => {
                    let mapped = self.text_calls.map(event);
                    self.ready.extend(mapped);
                }
                other => return other,
            }
        }
    }
}

/// One turn's request and where its events go.
struct Turn {
    client: reqwest::Client,
    config: Arc<OpenAiConfig>,
    url: String,
    events: mpsc::UnboundedSender<LlmEvent>,
}

/// Why an attempt did not get an answer.
enum Refusal {
    /// Worth another try after the wait (or the backoff when none is given).
    Retry(String, Option<Duration>),
    /// Final.
    Fail(String),
}

impl Turn {
    async fn run(self, body: serde_json::Value) {
        let mut attempt = 0;
        let response = loop {
            match self.attempt(&body).await {
                Ok(response) => break response,
                Err(Refusal::Retry(why, wait)) if attempt < self.config.max_retries => {
                    let wait = wait.unwrap_or(FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(attempt)));
                    tracing::warn!("LLM request failed ({why}); retrying in {} ms", wait.as_millis());
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(Refusal::Retry(why, _)) => {
                    let tries = attempt + 1;
                    return self.fail(format!("{why} (gave up after {tries} attempts)"));
                }
                Err(Refusal::Fail(why)) => return self.fail(why),
            }
        };
        self.read(response).await;
    }

    fn fail(&self, why: String) {
        let _ = self.events.send(LlmEvent::Failed(why));
    }

    async fn attempt(&self, body: &serde_json::Value) -> Result<reqwest::Response, Refusal> {
        let mut request = self.client.post(&self.url).json(body).header("accept", "text/event-stream");
        match &self.config.credential {
            Credential::None => {}
            Credential::ApiKey(key) => match self.config.flavor {
                Flavor::OpenAi => request = request.bearer_auth(key),
                Flavor::Azure { .. } => request = request.header("api-key", key),
            },
            Credential::Token(source) => {
                let token =
                    source.token().await.map_err(|e| Refusal::Fail(format!("no token for the LLM server: {e}")))?;
                request = request.bearer_auth(token);
            }
        }
        let sent = tokio::time::timeout(self.config.timeout, request.send()).await;
        let response = match sent {
            Err(_) => {
                return Err(Refusal::Retry(
                    format!("the LLM server at {} did not answer within {} s", self.url, self.config.timeout.as_secs()),
                    None,
                ));
            }
            Ok(Err(e)) if e.is_connect() => {
                return Err(Refusal::Retry(
                    format!("cannot connect to the LLM server at {}: {}", self.url, root(&e)),
                    None,
                ));
            }
            Ok(Err(e)) => return Err(Refusal::Fail(format!("the request to the LLM server failed: {}", root(&e)))),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let wait = retry_after(response.headers());
        let text = tokio::time::timeout(self.config.timeout, response.text()).await.ok().and_then(Result::ok);
        let message = text
            .as_deref()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
            .and_then(|v| v.get("error").map(stream::error_text).or_else(|| v["detail"].as_str().map(str::to_owned)))
            .map(|m| stream::preview(&m))
            .or(text.as_deref().map(stream::preview).filter(|t| !t.trim().is_empty()))
            .unwrap_or_default();
        let why = format!(
            "the LLM server answered {status}{}",
            if message.is_empty() { String::new() } else { format!(": {message}") }
        );
        let retryable = status.as_u16() == 429 || status.is_server_error();
        match wait {
            Some(w) if w > MAX_RETRY_AFTER => Err(Refusal::Fail(format!("{why} (it asks to wait {} s)", w.as_secs()))),
            _ if retryable => Err(Refusal::Retry(why, wait)),
            _ => Err(Refusal::Fail(why)),
        }
    }

    /// Reads the answer, streamed or whole, into events.
    async fn read(&self, response: reqwest::Response) {
        let streamed = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|t| !t.starts_with("application/json"));
        let mut chunks = Chunks::default();
        if !streamed {
            let body = match tokio::time::timeout(self.config.timeout, response.json::<serde_json::Value>()).await {
                Ok(Ok(body)) => body,
                Ok(Err(e)) => return self.fail(format!("the LLM server's answer is not JSON: {}", root(&e))),
                Err(_) => return self.fail("the LLM server's answer did not arrive in time".into()),
            };
            for event in chunks.completion(&body) {
                let _ = self.events.send(event);
            }
            return;
        }
        let mut lines = SseLines::default();
        let mut bytes = response.bytes_stream();
        loop {
            let piece = match tokio::time::timeout(self.config.timeout, bytes.next()).await {
                Err(_) => {
                    return self.fail(format!(
                        "the LLM server sent nothing for {} s mid-answer",
                        self.config.timeout.as_secs()
                    ));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => return self.fail(format!("the LLM server's stream broke: {}", root(&e))),
                Ok(Some(Ok(piece))) => piece,
            };
            let datas = match lines.feed(&piece) {
                Ok(d) => d,
                Err(e) => return self.fail(format!("the LLM server's stream is malformed: {e}")),
            };
            for data in datas {
                match chunks.data(&data) {
                    Step::Events(events) => self.send_all(events),
                    Step::End(events) => return self.send_all(events),
                }
            }
        }
        if let Some(data) = lines.finish() {
            let (Step::Events(events) | Step::End(events)) = chunks.data(&data);
            self.send_all(events);
        }
        self.send_all(chunks.closed());
    }

    fn send_all(&self, events: Vec<LlmEvent>) {
        for event in events {
            let _ = self.events.send(event);
        }
    }
}

/// How long a response asks to wait: `retry-after-ms` (Azure) or `Retry-After` in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0)
    };
    // A wait too long to represent is as good as "too long" (it fails at once).
    let seconds = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX);
    number("retry-after-ms").map(|ms| seconds(ms / 1000.0)).or_else(|| number("retry-after").map(seconds))
}

/// The innermost cause of an HTTP error ("Connection refused (os error 111)"): reqwest's own
/// message repeats the URL and says only "error sending request".
fn root(e: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = e;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_each_apis_shape() {
        let openai = OpenAiConfig::new("http://127.0.0.1:8000/v1/", Some("m".into()));
        assert_eq!(openai.endpoint().unwrap(), "http://127.0.0.1:8000/v1/chat/completions");
        let whole = OpenAiConfig::new("https://x.example/v1/chat/completions", None);
        assert_eq!(whole.endpoint().unwrap(), "https://x.example/v1/chat/completions");
        let mut azure = OpenAiConfig::new("https://res.openai.azure.com", Some("gpt4o".into()));
        azure.flavor = Flavor::Azure { api_version: AZURE_API_VERSION.into() };
        assert_eq!(
            azure.endpoint().unwrap(),
            "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
        );
        azure.model = None;
        assert!(azure.endpoint().unwrap_err().contains("deployment"));
        assert!(OpenAiConfig::new("ftp://x", None).endpoint().unwrap_err().contains("http://"));
        assert!(OpenAiConfig::new("not a url", None).endpoint().unwrap_err().contains("not a URL"));
    }

    #[test]
    fn retry_waits_are_read_from_either_header() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        h.insert("retry-after-ms", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)), "an unreadable one is skipped");
        h.insert("retry-after-ms", "1e300".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::MAX), "an absurd wait does not panic");
    }
}
