//! The browser app, embedded at build time (`build.rs` takes `web/dist`): the page at `/`, its
//! assets under `/assets/`, and `/api/catalog`, what the app offers in its settings.

use crate::app::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

/// Shown at `/` by a binary built without the app.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>brazen</title>\
<h1>The browser app is not built into this binary</h1>\
<p>Build it and then brazen: <code>scripts/serve</code> does both, or by hand \
<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code> followed by <code>cargo build -p brazen-server</code>.</p>\
<p>The Realtime WebSocket works without it, at <code>/voice-live/realtime</code> and <code>/v1/realtime</code>.</p>";

/// The app's first session (`web/src/default-session.json`, which the app imports too): its
/// instructions and the browser's tools.
const DEFAULT_SESSION: &str = include_str!("../../../web/src/default-session.json");

/// Has the LLM compute the prompt of the app's default session in the background, so that a first
/// conversation from the browser app starts its reply without waiting for it (a new system prompt
/// costs seconds on a CPU). Errors are only logged: this is an optimisation.
pub fn prepare_default_session(
    llm: &dyn brazen_providers::Llm,
    agent: Option<&brazen_protocol::SessionPatch>,
    tools: &dyn brazen_providers::Tools,
) {
    use brazen_protocol::{ClientEvent, ClientMessage};
    let mut config = brazen_protocol::session::SessionConfig::new("app-default", "default");
    match agent {
        // The app leaves an agent's session as it is: its prompt is the one to compute.
        Some(patch) => config.apply(patch.clone()),
        None => {
            let event = format!(r#"{{"type": "session.update", "session": {DEFAULT_SESSION}}}"#);
            match brazen_protocol::client::parse(&event) {
                Ok(ClientMessage { event: ClientEvent::SessionUpdate(patch), .. }) => config.apply(*patch),
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!("web/src/default-session.json is not a valid session: {}", e.message);
                    return;
                }
            }
        }
    }
    let mut request = brazen_providers::LlmRequest::new(&config, Vec::new());
    brazen_engine::offer_tools(&mut request, &tools.specs());
    llm.prepare(request);
}

/// Logs where the app is, or that this binary was built without it.
pub fn announce(addr: std::net::SocketAddr) {
    if FILES.is_empty() {
        tracing::warn!(
            "this binary has no browser app (web/dist was not built): run `cd web && npm ci && npm run build`, then build brazen again (scripts/serve does both)"
        );
    } else {
        tracing::info!("browser app: open http://{addr}/ and click Connect");
    }
}

fn file(path: &str) -> Option<&'static (&'static str, &'static [u8], &'static str)> {
    FILES.iter().find(|(p, _, _)| *p == path)
}

/// `GET /`: the app's page (never cached, so a new build is picked up at once).
pub async fn index(State(state): State<Arc<AppState>>) -> Response {
    if let Some(root) = &state.config.web_root {
        return user_file(root, "/index.html").await.unwrap_or_else(|| {
            crate::app::json_error(StatusCode::NOT_FOUND, "not_found", "web_root has no index.html.")
        });
    }
    match file("index.html") {
        Some((_, bytes, kind)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], NOT_BUILT)
            .into_response(),
    }
}

/// A file of the user's own pages under `root` (`web_root`) for the request path `path`
/// (percent-encoded, as it arrives), with its content type; `None` when there is no such file.
/// Paths that leave `root` (`..`, encoded or not; links pointing out) are refused.
pub async fn user_file(root: &std::path::Path, path: &str) -> Option<Response> {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8().ok()?;
    let relative = decoded.trim_start_matches('/');
    let relative = if relative.is_empty() { "index.html" } else { relative };
    if relative.split('/').any(|part| part == ".." || part.starts_with('.'))
        || relative.contains('\\')
        || relative.contains('\0')
    {
        return None;
    }
    let root = tokio::fs::canonicalize(root).await.ok()?;
    let full = tokio::fs::canonicalize(root.join(relative)).await.ok()?;
    if !full.starts_with(&root) || !tokio::fs::metadata(&full).await.is_ok_and(|m| m.is_file()) {
        return None;
    }
    let bytes = tokio::fs::read(&full).await.ok()?;
    let kind = match full.extension().and_then(|e| e.to_str()).unwrap_or_default() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "wasm" => "application/wasm",
        "mp4" => "video/mp4",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    };
    Some(
        (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
    )
}

/// `GET /assets/{file}`: a script, style sheet or worklet of the app (names carry a content hash,
/// so they are cached for good).
pub async fn asset(Path(name): Path<String>) -> Response {
    match file(&format!("assets/{name}")) {
        Some((_, bytes, kind)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => crate::app::json_error(StatusCode::NOT_FOUND, "not_found", &format!("No asset named {name:?}.")),
    }
}

/// `GET /api/catalog`: what this server offers a client to choose from: the synthesiser's voices,
/// the avatar characters with their styles, the installed portraits, the ICE servers for WebRTC
/// avatars, and whether an API key is needed. The ICE servers' `username` and `credential` (a
/// TURN relay's) are given only to a caller that presents the key when the server has one.
pub async fn catalog(
    State(state): State<Arc<AppState>>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    let mut ice_servers = state.runtime.media.as_ref().map(|m| m.ice_servers()).unwrap_or_default();
    if !state.authenticated(&headers, uri.query()) {
        for server in &mut ice_servers {
            if let Some(fields) = server.as_object_mut() {
                fields.remove("username");
                fields.remove("credential");
            }
        }
    }
    let characters: Vec<_> = state
        .runtime
        .avatars
        .characters()
        .iter()
        .map(|c| json!({"name": c.name, "description": c.description, "styles": c.styles.keys().collect::<Vec<_>>()}))
        .collect();
    axum::Json(json!({
        "tts": state.runtime.engines.names.tts,
        "voices": state.runtime.engines.voices,
        "characters": characters,
        "portraits": state.runtime.avatars.portrait_names(),
        "ice_servers": ice_servers,
        "auth": !state.config.api_keys.is_empty(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_providers::{EngineStream, Llm, LlmEvent, LlmRequest};
    use std::sync::Mutex;

    /// Keeps what it is asked to prepare.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<LlmRequest>>);

    impl Llm for Recorder {
        fn generate(&self, _request: LlmRequest) -> EngineStream<LlmEvent> {
            Box::pin(futures_util::stream::empty())
        }
        fn prepare(&self, request: LlmRequest) {
            self.0.lock().unwrap().push(request);
        }
    }

    #[test]
    fn the_app_default_session_is_prepared_as_the_app_sends_it() {
        let llm = Recorder::default();
        prepare_default_session(&llm, None, &brazen_providers::NoTools);
        let asked = llm.0.lock().unwrap();
        let [request] = asked.as_slice() else { panic!("one prompt to prepare, got {}", asked.len()) };
        let file: serde_json::Value = serde_json::from_str(DEFAULT_SESSION).unwrap();
        assert_eq!(request.instructions, file["instructions"].as_str().unwrap());
        assert!(request.items.is_empty());
        let names: Vec<&str> = request.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["get_local_time"]);
    }
}
