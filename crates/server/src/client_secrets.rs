//! Short-lived client secrets, as OpenAI makes them (`POST /v1/realtime/client_secrets`): a
//! backend that holds the server's API key mints one for a browser or an app, which presents it
//! where it would present a key (the `openai-insecure-api-key.<secret>` subprotocol, the bearer,
//! `api-key`) to start **one** session. The session starts with the configuration the secret was
//! minted with (`session`, over the server's own defaults); the client may still change it with
//! `session.update`. So a page never holds the key, and a leaked secret is worth one session
//! within its life (10 s to 2 h, default 10 minutes).
//!
//! (OpenAI lets a secret start sessions until it expires; brazen takes it once, so a secret
//! copied from a page's traffic cannot start a second session.)

use crate::app::{AppState, json_error};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use brazen_protocol::{ClientEvent, Dialect, SessionConfig, SessionPatch, client};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A secret's life when the request names none.
const DEFAULT_LIFE: Duration = Duration::from_secs(600);
/// The shortest and longest life a request may ask for, in seconds (OpenAI's bounds).
const LIFE_SECONDS: std::ops::RangeInclusive<u64> = 10..=7_200;
/// Secrets held unused at once; minting more is refused until some are used or expire.
const MAX_OUTSTANDING: usize = 100_000;
/// The prefix of every secret (OpenAI's `ek_`), by which a presented one is told from a key.
pub const PREFIX: &str = "ek_";

/// A secret not yet used.
struct Minted {
    /// Unix seconds after which it starts nothing.
    expires_at: u64,
    /// The id its session will have (given out with the secret).
    session_id: String,
    /// The configuration its session starts with.
    session: Option<Arc<SessionPatch>>,
    /// The API key it was minted with (for the per-key session limit), if any.
    key: Option<String>,
}

/// What a used secret gives its session.
#[derive(Debug, Clone, Default)]
pub struct Redeemed {
    /// The id the session was given out with.
    pub session_id: String,
    /// The configuration the session starts with.
    pub session: Option<Arc<SessionPatch>>,
}

/// The server's unused client secrets.
#[derive(Default)]
pub struct ClientSecrets {
    minted: Mutex<HashMap<String, Minted>>,
}

/// Unix seconds now.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl ClientSecrets {
    /// A new secret living `life`, starting session `session_id` with `session`; `None` when
    /// too many are outstanding.
    fn mint(
        &self,
        life: Duration,
        session_id: String,
        session: Option<Arc<SessionPatch>>,
        key: Option<String>,
    ) -> Option<(String, u64)> {
        let bytes: [u8; 24] = rand::random(); // the thread's ChaCha generator, seeded by the OS
        let value =
            format!("{PREFIX}{}", base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes));
        let expires_at = unix_now() + life.as_secs();
        let mut minted = self.minted.lock().ok()?;
        if minted.len() >= MAX_OUTSTANDING {
            let now = unix_now();
            minted.retain(|_, m| m.expires_at > now);
            if minted.len() >= MAX_OUTSTANDING {
                return None;
            }
        }
        minted.insert(value.clone(), Minted { expires_at, session_id, session, key });
        Some((value, expires_at))
    }

    /// Whether `value` is a secret that would start a session now.
    pub fn valid(&self, value: &str) -> bool {
        let now = unix_now();
        self.minted.lock().ok().and_then(|m| m.get(value).map(|s| s.expires_at > now)).unwrap_or(false)
    }

    /// The API key `value` was minted with, if it is a secret and was minted with one.
    pub fn key_of(&self, value: &str) -> Option<String> {
        self.minted.lock().ok()?.get(value)?.key.clone()
    }

    /// Uses `value` up: what its session starts with, or `None` when it is unknown, used or
    /// expired.
    pub fn redeem(&self, value: &str) -> Option<Redeemed> {
        let minted = self.minted.lock().ok()?.remove(value)?;
        (minted.expires_at > unix_now()).then_some(Redeemed { session_id: minted.session_id, session: minted.session })
    }

    /// Forgets expired secrets.
    pub fn sweep(&self) {
        let now = unix_now();
        if let Ok(mut minted) = self.minted.lock() {
            minted.retain(|_, m| m.expires_at > now);
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
    if let Some(patch) = &patch {
        config.apply(patch.clone());
    }
    let effective = config.to_json(Dialect::Ga);
    let key = key.filter(|_| !state.config.api_keys.is_empty());
    match state.client_secrets.mint(life, session_id, patch.map(Arc::new), key) {
        Some((value, expires_at)) => {
            axum::Json(json!({"value": value, "expires_at": expires_at, "session": effective})).into_response()
        }
        None => json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_secrets",
            "Too many client secrets are waiting to be used; try again once some are used or expire.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_starts_one_session_within_its_life() {
        let secrets = ClientSecrets::default();
        let (value, expires_at) =
            secrets.mint(Duration::from_secs(60), "sess_1".into(), None, Some("k".into())).unwrap();
        assert!(value.starts_with(PREFIX) && value.len() > 30, "{value}");
        assert!(expires_at >= unix_now() + 59);
        assert!(secrets.valid(&value));
        assert_eq!(secrets.key_of(&value).as_deref(), Some("k"));
        assert_eq!(secrets.redeem(&value).unwrap().session_id, "sess_1");
        assert!(!secrets.valid(&value) && secrets.redeem(&value).is_none(), "used up");
        let (old, _) = secrets.mint(Duration::ZERO, "sess_2".into(), None, None).unwrap();
        assert!(!secrets.valid(&old) && secrets.redeem(&old).is_none(), "expired");
        assert!(secrets.redeem("ek_made_up").is_none());
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
