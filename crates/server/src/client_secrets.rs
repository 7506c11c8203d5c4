//! Short-lived client secrets, as OpenAI makes them (`POST /v1/realtime/client_secrets`): a
//! backend that holds the server's API key mints one for a browser or an app, which presents it
//! where it would present a key (the `openai-insecure-api-key.<secret>` subprotocol, the bearer,
//! `api-key`) to start **one** Realtime session. The session starts with the configuration the
//! secret was minted with (`session`, over the server's own defaults) and the id given out with
//! it; the client may still change the configuration with `session.update`. So a page never
//! holds the key, and a leaked secret is worth one session within its life (10 s to 2 h,
//! default 10 minutes). A secret is used up when a connection presents it, even if the session
//! is then refused (the server full, a limit reached): mint another.
//!
//! With a database (an agent runs), secrets are kept there — only their SHA-256 — so a secret
//! minted through one node starts its session on any other; without one, in this process.
//!
//! (OpenAI lets a secret start sessions until it expires; brazen takes it once, so a secret
//! copied from a page's traffic cannot start a second session.)

use crate::app::{AppState, json_error};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use brazen_protocol::{ClientEvent, Dialect, SessionConfig, SessionPatch, client};
use brazen_store::{ClientSecret, Store};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A secret's life when the request names none.
const DEFAULT_LIFE: Duration = Duration::from_secs(600);
/// The shortest and longest life a request may ask for, in seconds (OpenAI's bounds).
const LIFE_SECONDS: std::ops::RangeInclusive<u64> = 10..=7_200;
/// Secrets minted with one key (or with none) held unused at once; minting more with it is
/// refused until some are used or expire (another key is not held up).
const MAX_OUTSTANDING: usize = 100_000;
/// The largest mint request read (its `session` is a session's configuration).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// The prefix of every secret (OpenAI's `ek_`), by which a presented one is told from a key.
pub const PREFIX: &str = "ek_";

/// What a used secret gives its session.
#[derive(Debug, Clone)]
pub struct Redeemed {
    /// The id the session was given out with.
    pub session_id: String,
    /// The configuration the session starts with.
    pub session: Option<Arc<SessionPatch>>,
}

/// The server's unused client secrets: in the shared database when there is one, else here.
pub struct ClientSecrets {
    store: Option<Store>,
    /// Hash → (expiry in unix ms, the secret), when there is no database.
    minted: Mutex<HashMap<String, (i64, ClientSecret)>>,
}

/// Unix milliseconds now.
fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// SHA-256 in hex: how secrets are looked up, and how keys are named in tables and limits
/// ([`key_tag`]) without being kept.
fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The name under which an API key is counted (its SHA-256), the same on every node.
pub fn key_tag(key: &str) -> String {
    sha256_hex(key)
}

impl ClientSecrets {
    /// Secrets kept in `store` (shared by every node using it), or in this process without one.
    pub fn new(store: Option<Store>) -> Self {
        ClientSecrets { store, minted: Mutex::new(HashMap::new()) }
    }

    /// A new secret living `life`, starting session `session_id` with `session` (JSON, as the
    /// request gave it); minted with the key tagged `key`. `Err` says why not.
    async fn mint(
        &self,
        life: Duration,
        session_id: String,
        session: Option<String>,
        key: Option<String>,
    ) -> Result<(String, i64), (StatusCode, &'static str, String)> {
        let bytes: [u8; 24] = rand::random(); // the thread's ChaCha generator, seeded by the OS
        let value =
            format!("{PREFIX}{}", base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes));
        let now = unix_ms();
        let expires_at = now + life.as_millis() as i64;
        let secret = ClientSecret { session_id, session, key_hash: key };
        let full = || {
            (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_secrets",
                "Too many client secrets are waiting to be used; try again once some are used or expire.".to_owned(),
            )
        };
        match &self.store {
            Some(store) => {
                let unavailable = |e: brazen_store::StoreError| {
                    tracing::warn!("cannot keep a client secret: {e}");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "database_unavailable",
                        "The secret cannot be kept now (the database is unavailable); try again.".to_owned(),
                    )
                };
                let key = secret.key_hash.as_deref();
                if store.client_secrets_waiting(key).await.map_err(unavailable)? >= MAX_OUTSTANDING as i64 {
                    store.forget_expired_client_secrets(now).await.map_err(unavailable)?;
                    if store.client_secrets_waiting(key).await.map_err(unavailable)? >= MAX_OUTSTANDING as i64 {
                        return Err(full());
                    }
                }
                store.put_client_secret(&sha256_hex(&value), expires_at, &secret).await.map_err(unavailable)?;
            }
            None => {
                let mut minted = self.minted.lock().map_err(|_| full())?;
                let waiting = |m: &HashMap<String, (i64, ClientSecret)>| {
                    m.values().filter(|(_, s)| s.key_hash == secret.key_hash).count()
                };
                if minted.len() >= MAX_OUTSTANDING && waiting(&minted) >= MAX_OUTSTANDING {
                    minted.retain(|_, (expires, _)| *expires > now);
                    if waiting(&minted) >= MAX_OUTSTANDING {
                        return Err(full());
                    }
                }
                minted.insert(sha256_hex(&value), (expires_at, secret));
            }
        }
        Ok((value, expires_at / 1000))
    }

    /// Whether `value` would start a session now, without using it up: `Ok(Some(key))` with
    /// the tag of the key it was minted with (`None` on a server without keys), `Ok(None)`
    /// when it is unknown, used or expired; `Err` when the database cannot say now.
    pub async fn peek(&self, value: &str) -> Result<Option<Option<String>>, String> {
        let hash = sha256_hex(value);
        let now = unix_ms();
        match &self.store {
            Some(store) => {
                Ok(store.peek_client_secret(&hash, now).await.map_err(|e| e.to_string())?.map(|secret| secret.key_hash))
            }
            None => Ok(self.minted.lock().ok().and_then(|m| {
                m.get(&hash).filter(|(expires, _)| *expires > now).map(|(_, secret)| secret.key_hash.clone())
            })),
        }
    }

    /// Uses `value` up: what its session starts with; `Ok(None)` when it is unknown, used or
    /// expired; `Err` when the database cannot say now.
    pub async fn redeem(&self, value: &str) -> Result<Option<Redeemed>, String> {
        let hash = sha256_hex(value);
        let now = unix_ms();
        let secret = match &self.store {
            Some(store) => store.take_client_secret(&hash, now).await.map_err(|e| e.to_string())?,
            None => self
                .minted
                .lock()
                .ok()
                .and_then(|mut m| m.remove(&hash))
                .and_then(|(expires, secret)| (expires > now).then_some(secret)),
        };
        let Some(secret) = secret else { return Ok(None) };
        let session = match secret.session.as_deref().map(serde_json::from_str::<Value>) {
            Some(Ok(json)) => session(&json!({ "session": json })).ok().flatten().map(Arc::new),
            _ => None,
        };
        Ok(Some(Redeemed { session_id: secret.session_id, session }))
    }

    /// Forgets expired secrets.
    pub async fn sweep(&self) {
        let now = unix_ms();
        match &self.store {
            Some(store) => {
                if let Err(e) = store.forget_expired_client_secrets(now).await {
                    tracing::debug!("cannot forget expired client secrets now: {e}");
                }
            }
            None => {
                if let Ok(mut minted) = self.minted.lock() {
                    minted.retain(|_, (expires, _)| *expires > now);
                }
            }
        }
    }
}

/// Reads a request's `expires_after` (`{anchor: "created_at", seconds}`).
fn life(request: &Value) -> Result<Duration, String> {
    let Some(after) = request.get("expires_after").filter(|v| !v.is_null()) else { return Ok(DEFAULT_LIFE) };
    let Some(after) = after.as_object() else { return Err("'expires_after' must be an object".into()) };
    if let Some(anchor) = after.get("anchor").filter(|v| !v.is_null())
        && anchor != "created_at"
    {
        return Err(format!("'expires_after.anchor' must be \"created_at\", not {anchor}"));
    }
    match after.get("seconds").filter(|v| !v.is_null()) {
        None => Ok(DEFAULT_LIFE),
        Some(seconds) => match seconds.as_u64() {
            Some(s) if LIFE_SECONDS.contains(&s) => Ok(Duration::from_secs(s)),
            _ => Err(format!(
                "'expires_after.seconds' must be a whole number from {} to {}, not {seconds}",
                LIFE_SECONDS.start(),
                LIFE_SECONDS.end()
            )),
        },
    }
}

/// Reads a request's `session` as a `session.update` would: `None` when it has none.
fn session(request: &Value) -> Result<Option<SessionPatch>, String> {
    let Some(session) = request.get("session").filter(|v| !v.is_null()) else { return Ok(None) };
    if session.get("type").and_then(Value::as_str) == Some("transcription") {
        return Err("transcription sessions are not offered; mint a secret for a \"realtime\" session".into());
    }
    let update = json!({"type": "session.update", "session": session}).to_string();
    match client::parse(&update) {
        Ok(message) => match message.event {
            ClientEvent::SessionUpdate(patch) => Ok(Some(*patch)),
            _ => Err("'session' is not a session".into()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// `POST /v1/realtime/client_secrets` (also under `/openai`): mints a secret for one session.
/// Needs the server's API key (not another secret). Body (optional): `{expires_after:
/// {anchor: "created_at", seconds}, session: {…}}`; answers `{value, expires_at, session}`
/// with the session as it will start.
pub async fn create(
    State(state): State<Arc<AppState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let key = crate::auth::presented_key(&headers, uri.query());
    if !state.authenticated(&headers, uri.query()) {
        let message = if key.is_some() {
            "The API key is not valid; a client secret is minted with the server's API key, never with another secret."
        } else {
            "Missing API key: a client secret is minted with the server's API key (Authorization: Bearer, or the api-key header)."
        };
        return json_error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    }
    let request: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return json_error(StatusCode::BAD_REQUEST, "invalid_request", "The body must be a JSON object."),
            Err(e) => {
                return json_error(StatusCode::BAD_REQUEST, "invalid_json", &format!("The body is not JSON: {e}."));
            }
        }
    };
    let (life, patch) = match (life(&request), session(&request)) {
        (Ok(life), Ok(patch)) => (life, patch),
        (Err(e), _) | (_, Err(e)) => return json_error(StatusCode::BAD_REQUEST, "invalid_value", &e),
    };
    // The session as it will start: the server's defaults, then the secret's.
    let session_id = state.runtime.session_id();
    let mut config = SessionConfig::new(session_id.clone(), "brazen");
    if let Some(defaults) = state.runtime.session_defaults() {
        config.apply((**defaults).clone());
    }
    if let Some(patch) = patch {
        config.apply(patch);
    }
    let effective = config.to_json(Dialect::Ga);
    let key = key.filter(|_| !state.config.api_keys.is_empty()).map(|k| key_tag(&k));
    let given = request.get("session").filter(|v| !v.is_null()).map(Value::to_string);
    match state.client_secrets.mint(life, session_id, given, key).await {
        Ok((value, expires_at)) => {
            axum::Json(json!({"value": value, "expires_at": expires_at, "session": effective})).into_response()
        }
        Err((status, code, message)) => json_error(status, code, &message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_secret_starts_one_session_within_its_life() {
        let secrets = ClientSecrets::new(None);
        let session = Some(r#"{"instructions": "Be brief."}"#.to_owned());
        let tag = Some(key_tag("k"));
        let (value, expires_at) =
            secrets.mint(Duration::from_secs(60), "sess_1".into(), session, tag.clone()).await.unwrap();
        assert!(value.starts_with(PREFIX) && value.len() > 30, "{value}");
        assert!(expires_at >= unix_ms() / 1000 + 59);
        assert!(!secrets.minted.lock().unwrap().contains_key(&value), "only its hash is kept");
        assert_eq!(secrets.peek(&value).await.unwrap(), Some(tag.clone()), "looked at, with its key");
        let redeemed = secrets.redeem(&value).await.unwrap().unwrap();
        assert_eq!(redeemed.session_id, "sess_1");
        assert_eq!(redeemed.session.unwrap().instructions, brazen_protocol::read::Field::Set("Be brief.".to_owned()));
        assert!(secrets.redeem(&value).await.unwrap().is_none(), "used up");
        assert_eq!(secrets.peek(&value).await.unwrap(), None);
        let (old, _) = secrets.mint(Duration::ZERO, "sess_2".into(), None, None).await.unwrap();
        assert!(secrets.redeem(&old).await.unwrap().is_none(), "expired");
        assert!(secrets.redeem("ek_made_up").await.unwrap().is_none());
    }

    #[test]
    fn requests_are_read_like_openais() {
        assert_eq!(life(&json!({})), Ok(DEFAULT_LIFE));
        assert_eq!(
            life(&json!({"expires_after": {"anchor": "created_at", "seconds": 30}})),
            Ok(Duration::from_secs(30))
        );
        assert!(life(&json!({"expires_after": {"seconds": 5}})).unwrap_err().contains("10 to 7200"));
        assert!(life(&json!({"expires_after": {"anchor": "now"}})).is_err());
        assert!(session(&json!({})).unwrap().is_none());
        let patch = session(&json!({"session": {"type": "realtime", "instructions": "Be brief."}})).unwrap().unwrap();
        assert_eq!(patch.instructions, brazen_protocol::read::Field::Set("Be brief.".to_owned()));
        assert!(session(&json!({"session": {"type": "transcription"}})).is_err());
        assert!(session(&json!({"session": {"temperature": "hot"}})).is_err());
    }
}
