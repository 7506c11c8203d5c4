//! The HTTP surface: routes, the WebSocket upgrade with authentication and dialect choice,
//! health and metrics.

use crate::auth;
use crate::client_secrets::Redeemed;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::ws;
use axum::Router;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use brazen_avatar::character::Catalog;
use brazen_protocol::Dialect;
use brazen_runtime::avatar_media::AvatarMedia;
use brazen_runtime::connection::{ConnectionOptions, Resume};
use brazen_runtime::engines::Engines;
use brazen_runtime::{Hooks, Runtime};
use serde_json::json;
use std::sync::Arc;

/// Shared state of the server.
pub struct AppState {
    /// Configuration in force.
    pub config: Config,
    /// The engines, characters, media port and sessions.
    pub runtime: Arc<Runtime>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The retail sample API's sessions.
    pub retail: crate::retail_api::RetailSessions,
    /// The agent's database (`None` without an agent).
    pub store: Option<brazen_store::Store>,
    /// What `/api/agent` says about the agent (`None` without one).
    pub agent: Option<serde_json::Value>,
    /// The upstream Voice Live sessions are relayed to, when brazen is a relay.
    pub relay: Option<Arc<crate::relay::Relay>>,
    /// The TTS-avatar REST API's sessions and speech tokens.
    pub avatar_api: crate::avatar_api::AvatarSessions,
    /// Client secrets minted and not yet used.
    pub client_secrets: crate::client_secrets::ClientSecrets,
    /// The limits on new sessions per address and per key.
    pub admission: crate::admission::Admission,
}

/// What the server offers besides answering sessions itself.
#[derive(Default)]
pub struct Services {
    /// The agent's database.
    pub store: Option<brazen_store::Store>,
    /// What `/api/agent` says about the agent.
    pub agent: Option<serde_json::Value>,
    /// The upstream sessions are relayed to.
    pub relay: Option<Arc<crate::relay::Relay>>,
}

impl AppState {
    /// State for a server with this configuration, these engines and `hooks` (its observer is
    /// replaced by the server's metrics).
    pub fn new(
        config: Config,
        engines: Engines,
        avatars: Catalog,
        media: Option<AvatarMedia>,
        hooks: Hooks,
        services: Services,
    ) -> Arc<Self> {
        let Services { store, agent, relay } = services;
        let metrics = Arc::new(Metrics::new());
        let limits = config.runtime_limits();
        let hooks = Hooks { observer: metrics.clone(), ..hooks };
        let runtime = Runtime::new(engines, avatars, media, limits, hooks);
        let admission =
            crate::admission::Admission::new(config.connections_per_minute, config.connections_per_minute_per_key);
        Arc::new(AppState {
            admission,
            client_secrets: crate::client_secrets::ClientSecrets::new(store.clone()),
            config,
            runtime,
            metrics,
            retail: Default::default(),
            store,
            agent,
            relay,
            avatar_api: Default::default(),
        })
    }

    /// Whether a request may see secrets (TURN credentials): the server has no key, or the
    /// request presents a valid one.
    pub fn authenticated(&self, headers: &HeaderMap, query: Option<&str>) -> bool {
        self.config.api_keys.is_empty()
            || auth::key_accepted(&self.config.api_keys, auth::presented_key(headers, query).as_deref())
    }

    /// Whether a request may start or drive sessions: [`AppState::authenticated`], or it
    /// presents a speech token still in force (`/api/avatar/speech-token`). Admin reads and
    /// minting tokens need a key.
    pub fn may_use_sessions(&self, headers: &HeaderMap, query: Option<&str>) -> bool {
        self.config.api_keys.is_empty() || self.key_ok(auth::presented_key(headers, query).as_deref())
    }

    /// Whether `key` is one of the server's keys or a speech token still in force. (A client
    /// secret is taken by the Realtime endpoint alone, which uses it up.)
    pub fn key_ok(&self, key: Option<&str>) -> bool {
        auth::key_accepted(&self.config.api_keys, key) || key.is_some_and(|k| self.avatar_api.token_valid(k))
    }

    /// The tag ([`crate::client_secrets::key_tag`]) of the key a request presents, when the
    /// server has keys: what its new sessions count against.
    pub fn key_tag_of(&self, headers: &HeaderMap, query: Option<&str>) -> Option<String> {
        let key = auth::presented_key(headers, query).filter(|_| !self.config.api_keys.is_empty())?;
        Some(crate::client_secrets::key_tag(&key))
    }

    /// Lets one more session in from `address` counted against the key tagged `key`, or
    /// answers HTTP 429.
    #[allow(clippy::result_large_err)] // the refusal is the response itself, made once
    pub fn admit_connection(&self, address: Option<std::net::IpAddr>, key: Option<&str>) -> Result<(), Response> {
        let Some(address) = address else { return Ok(()) };
        self.admission.admit(address, key, std::time::Instant::now()).map_err(|refused| self.too_many(refused))
    }

    /// HTTP 429 for a new session refused by a limit, with `Retry-After`.
    fn too_many(&self, refused: crate::admission::Refused) -> Response {
        self.metrics.refused_total.with_label_values(&["rate_limit"]).inc();
        let whose = if refused.by == "key" { "this API key" } else { "this address" };
        let retry = refused.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let mut response = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            &format!(
                "Too many new sessions from {whose}: at most {} a minute; try again in {retry} s.",
                refused.per_minute
            ),
        );
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry));
        response
    }
}

/// The address of the client that sent a request, when the accept loop recorded it (as
/// `ConnectInfo`).
pub struct Peer(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// The router: the browser app (`/`, `/assets/…`, `/api/catalog`), `/health`, `/metrics`, and
/// the Realtime WebSocket at any path ending in `/voice-live/realtime`, `/v1/realtime`,
/// `/openai/realtime` or `/openai/v1/realtime`.
///
/// A server without an API key answers only loopback `Host` names (see [`crate::origin`]).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(crate::web::index))
        .route("/assets/{*file}", get(crate::web::asset))
        .route("/api/catalog", get(crate::web::catalog))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/images/products/{file}", get(crate::admin_api::picture))
        // The official avatar sample's backend (its page served from `web_root`).
        .route("/api/config", get(crate::avatar_sample::config))
        .route("/ws/{client_id}", get(crate::avatar_sample::socket))
        .merge(rest_routes(state.clone()))
        .fallback(realtime)
        .layer(axum::middleware::from_fn_with_state(state.clone(), check_host))
        .with_state(state)
}

/// The REST APIs pages of other origins call, with CORS from `allowed_origins`: the retail
/// sample's backend (`crate::retail_api`), the admin reads, the TTS-avatar REST API and client
/// secrets.
fn rest_routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    use crate::retail_api as r;
    let secrets_limit = axum::extract::DefaultBodyLimit::max(crate::client_secrets::MAX_REQUEST_BYTES);
    Router::new()
        // Client secrets, as OpenAI's and Azure OpenAI's GA paths name them.
        .route("/v1/realtime/client_secrets", post(crate::client_secrets::create).layer(secrets_limit))
        .route("/openai/v1/realtime/client_secrets", post(crate::client_secrets::create).layer(secrets_limit))
        // The TTS-avatar REST API.
        .route("/api/avatar/connect", post(crate::avatar_api::connect))
        .route("/api/avatar/speak", post(crate::avatar_api::speak))
        .route("/api/avatar/stop", post(crate::avatar_api::stop))
        .route("/api/avatar/disconnect", post(crate::avatar_api::disconnect))
        .route("/api/avatar/speech-token", get(crate::avatar_api::speech_token))
        .route("/api/avatar/ice-token", get(crate::avatar_api::ice_token))
        .route("/sessions", post(r::create))
        .route("/sessions/{id}/avatar-offer", post(r::avatar_offer))
        .route("/sessions/{id}/text", post(r::text))
        .route("/sessions/{id}/commit-audio", post(r::commit_audio))
        .route("/ws/sessions/{id}", get(r::socket))
        .route("/api/agent", get(agent))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/api/products", get(crate::admin_api::products))
        .route("/api/orders", get(crate::admin_api::orders))
        .route("/api/orders/{id}", get(crate::admin_api::order))
        .route("/api/shipments", get(crate::admin_api::shipments))
        .route("/api/conversations", get(crate::admin_api::conversations))
        .route("/api/conversations/{id}", get(crate::admin_api::conversation))
        .layer(axum::middleware::from_fn_with_state(state, cors))
}

/// `GET /api/agent`: the agent sessions start as (name, description, its tools, whether it
/// has documents and analyses calls), or 404 when the server runs none.
#[utoipa::path(get, path = "/api/agent", responses((status = 200, description = "`{name, description, tools, knowledge, analyse_calls}`"),
    (status = 404, description = "no agent")))]
pub async fn agent(State(state): State<Arc<AppState>>) -> Response {
    match &state.agent {
        Some(agent) => axum::Json(agent.clone()).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "no_agent", "This server runs no agent (agent = \"none\")."),
    }
}

/// CORS for the REST routes: a preflight from an origin the server admits (its own, loopback
/// pages on a key-less server, `allowed_origins`) is answered; responses to such origins carry
/// `Access-Control-Allow-Origin`. Other origins' preflights are refused (403), and their pages
/// cannot read the answers. Every answer varies by `Origin` (for caches).
async fn cors(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let allowed = crate::origin::check_origin(&state.config, request.headers());
    if request.method() == axum::http::Method::OPTIONS {
        if let Err(message) = allowed {
            return json_error(StatusCode::FORBIDDEN, "origin_not_allowed", &message);
        }
        let requested = request.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, header::HeaderValue::from_static("GET, POST, OPTIONS"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            requested.unwrap_or(header::HeaderValue::from_static("content-type, authorization, api-key")),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, header::HeaderValue::from_static("600"));
        if let Some(origin) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(header::VARY, header::HeaderValue::from_static("Origin"));
        }
        return response;
    }
    let mut response = next.run(request).await;
    response.headers_mut().insert(header::VARY, header::HeaderValue::from_static("Origin"));
    if let (Some(origin), Ok(())) = (origin, allowed) {
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    response
}

/// Refuses a request whose `Host` a key-less server does not answer to (HTTP 421).
async fn check_host(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if crate::origin::host_allowed(&state.config, request.headers()) {
        return next.run(request).await;
    }
    state.metrics.refused_total.with_label_values(&["host"]).inc();
    json_error(
        StatusCode::MISDIRECTED_REQUEST,
        "host_not_allowed",
        "This server has no API key and answers only requests addressed to a loopback name (localhost, 127.0.0.1, [::1]) or to its allowed_hosts setting.",
    )
}

async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    axum::Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "engines": state.runtime.engines.names,
        "sessions": state.runtime.open_sessions(),
        "auth": !state.config.api_keys.is_empty(),
        "avatar_media": state.runtime.media.as_ref().map(|m| json!({
            "address": format!("udp:{}", m.public_addr()),
            "stun": format!("udp:{}", m.stun_addr()),
            "peers": m.peers(),
        })),
    }))
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// A JSON error response: `{"error": {"code", "message"}}`.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

/// The dialect a request asks for, or `None` if the path is not a Realtime endpoint.
///
/// `/voice-live/...` speaks Voice Live; an `OpenAI-Beta: realtime=…` header asks for the beta;
/// every other endpoint starts in GA (the `openai` SDKs' GA clients send no header, whatever
/// `api-version` they carry). The connection then follows the shape of the client's
/// `session.update` (see `brazen_runtime::connection`).
pub fn dialect_for(path: &str, headers: &HeaderMap) -> Option<Dialect> {
    let path = path.trim_end_matches('/');
    let beta_header = headers
        .get("openai-beta")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("realtime"));
    let base = if path.ends_with("/voice-live/realtime") {
        Dialect::VoiceLive
    } else if ["/openai/v1/realtime", "/v1/realtime", "/openai/realtime"].iter().any(|p| path.ends_with(p)) {
        Dialect::Ga
    } else {
        return None;
    };
    Some(if beta_header && base != Dialect::VoiceLive { Dialect::Beta } else { base })
}

async fn realtime(
    State(state): State<Arc<AppState>>,
    OriginalUri(uri): OriginalUri,
    Peer(peer): Peer,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // A page's own files (`web_root`), for requests that are not a socket.
    if upgrade.is_err()
        && let Some(root) = &state.config.web_root
        && let Some(file) = crate::web::user_file(root, uri.path()).await
    {
        return file;
    }
    let query = uri.query();
    let Some(dialect) = dialect_for(uri.path(), &headers) else {
        state.metrics.refused_total.with_label_values(&["not_found"]).inc();
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such endpoint. Realtime WebSockets live at /voice-live/realtime, /v1/realtime, /openai/realtime and /openai/v1/realtime.",
        );
    };
    if let Err(message) = crate::origin::check_origin(&state.config, &headers) {
        state.metrics.refused_total.with_label_values(&["origin"]).inc();
        return json_error(StatusCode::FORBIDDEN, "origin_not_allowed", &message);
    }
    let key = auth::presented_key(&headers, query);
    // A client secret is taken on any server (it carries its session's configuration).
    let secret = key.as_deref().filter(|k| k.starts_with(crate::client_secrets::PREFIX));
    if secret.is_none() && !state.config.api_keys.is_empty() && !state.key_ok(key.as_deref()) {
        state.metrics.refused_total.with_label_values(&["unauthorized"]).inc();
        let message = if key.is_some() {
            "The API key is not valid."
        } else {
            "Missing API key: send it as the api-key header, Authorization: Bearer, the api-key query parameter, or the openai-insecure-api-key.<key> subprotocol."
        };
        return json_error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    }
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                "websocket_required",
                &format!("This endpoint takes a WebSocket upgrade: {e}."),
            );
        }
    };
    // A secret is looked at now (one that would not start a session is refused before anything
    // else is done for it) and used up last, once nothing else can refuse the connection.
    let counted = match secret {
        Some(secret) => match state.client_secrets.peek(secret).await {
            Ok(Some(minted_with)) => minted_with,
            Ok(None) => return secret_refused(&state),
            Err(e) => return secret_unchecked(&e),
        },
        None => state.key_tag_of(&headers, query),
    };
    // New sessions count against the address and the key (a secret's: the one it was minted
    // with).
    if let Err(refused) = state.admit_connection(peer, counted.as_deref()) {
        return refused;
    }
    let Some(slot) = state.runtime.admit_session() else {
        state.metrics.refused_total.with_label_values(&["capacity"]).inc();
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "capacity",
            "The server is at its session limit; try again later.",
        );
    };
    let model = auth::query_value(query, "model")
        .or_else(|| auth::query_value(query, "deployment"))
        .unwrap_or_else(|| "brazen".to_owned());
    let upgrade = match auth::chosen_protocol(&headers) {
        Some(p) => upgrade.protocols([p]),
        None => upgrade,
    };
    if let Some(relay) = &state.relay {
        // The relay passes the query on (conversation-id included); a secret's session is not
        // sent upstream (the client's own session.update is).
        let upstream = match relay.connect(uri.path(), query).await {
            Ok(upstream) => upstream,
            Err(answer) => {
                state.metrics.refused_total.with_label_values(&["relay_upstream"]).inc();
                return answer;
            }
        };
        if let Err(refused) = redeem(&state, secret).await {
            return refused;
        }
        return crate::relay::upgrade(upgrade, slot, upstream, relay.clone(), state.metrics.clone());
    }
    let resume = match resume_of(&state, query).await {
        Ok(resume) => resume,
        Err(refused) => return refused,
    };
    let (session, session_id) = match redeem(&state, secret).await {
        Ok(Some(r)) => (r.session, Some(r.session_id)),
        Ok(None) => (None, None),
        Err(refused) => return refused,
    };
    ws::upgrade(upgrade, slot, ConnectionOptions { dialect, model, session, session_id, resume })
}

/// Uses up the client secret a connection presents (each starts one session), or answers why
/// it cannot be.
#[allow(clippy::result_large_err)] // the refusal is the response itself, made once
async fn redeem(state: &AppState, secret: Option<&str>) -> Result<Option<Redeemed>, Response> {
    let Some(secret) = secret else { return Ok(None) };
    match state.client_secrets.redeem(secret).await {
        Ok(Some(redeemed)) => Ok(Some(redeemed)),
        // Used by another connection since it was looked at.
        Ok(None) => Err(secret_refused(state)),
        Err(e) => Err(secret_unchecked(&e)),
    }
}

/// HTTP 401 for a client secret that starts no session.
fn secret_refused(state: &AppState) -> Response {
    state.metrics.refused_total.with_label_values(&["unauthorized"]).inc();
    json_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "The client secret is not valid: it was used already (each starts one session), it expired, or this server did not mint it. Mint a new one (POST /v1/realtime/client_secrets).",
    )
}

/// HTTP 503 for a client secret the database cannot check now.
fn secret_unchecked(error: &str) -> Response {
    tracing::warn!("cannot check a client secret: {error}");
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
        "The client secret cannot be checked now (the database is unavailable); try again.",
    )
}

/// The stored conversation a connection asks to continue (Voice Live's `conversation-id`: the
/// id of the session that began it), or why it cannot.
#[allow(clippy::result_large_err)] // the refusal is the response itself, made once
async fn resume_of(state: &AppState, query: Option<&str>) -> Result<Option<Resume>, Response> {
    let Some(id) = auth::query_value(query, "conversation-id") else { return Ok(None) };
    let Some(store) = &state.store else {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "conversation_not_stored",
            "This server keeps no conversations (it runs no agent), so there is none to continue; leave out conversation-id.",
        ));
    };
    match store.conversation(&id).await {
        Ok(Some(stored)) => {
            let items = stored
                .entries
                .iter()
                .map(|e| brazen_runtime::Restored {
                    item: crate::capture::item_of(e, format!("item_stored_{:04}", e.seq)),
                    seq: e.seq,
                    at_ms: e.at_ms,
                })
                .collect();
            Ok(Some(Resume { conversation_id: id, items }))
        }
        Ok(None) => Err(json_error(
            StatusCode::NOT_FOUND,
            "conversation_not_found",
            &format!("There is no stored conversation {:?} to continue.", id.chars().take(100).collect::<String>()),
        )),
        Err(e) => {
            tracing::warn!("cannot read conversation {id} to continue it: {e}");
            Err(json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "The stored conversation cannot be read now (the database is unavailable); try again.",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn dialect_by_path_and_header() {
        let none = HeaderMap::new();
        let mut beta = HeaderMap::new();
        beta.insert("openai-beta", HeaderValue::from_static("realtime=v1"));
        assert_eq!(dialect_for("/voice-live/realtime", &none), Some(Dialect::VoiceLive));
        assert_eq!(dialect_for("/some/prefix/voice-live/realtime/", &beta), Some(Dialect::VoiceLive));
        assert_eq!(dialect_for("/v1/realtime", &none), Some(Dialect::Ga));
        assert_eq!(dialect_for("/v1/realtime", &beta), Some(Dialect::Beta));
        assert_eq!(dialect_for("/openai/v1/realtime", &none), Some(Dialect::Ga));
        assert_eq!(dialect_for("/openai/realtime", &none), Some(Dialect::Ga));
        assert_eq!(dialect_for("/openai/realtime", &beta), Some(Dialect::Beta));
        assert_eq!(dialect_for("/realtime", &none), None);
        assert_eq!(dialect_for("/health", &none), None);
    }
}
