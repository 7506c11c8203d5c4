//! Azure AI Speech as brazen engines, over its REST APIs:
//!
//! - [`AzureTts`] (`tts = "azure"`): text to speech, `POST …/cognitiveservices/v1` with SSML
//!   ([`ssml`]: the voice, its speaking style, rate and pitch), 24 kHz 16-bit PCM back. The
//!   service returns no phoneme timings over REST, so brazen fits its own phonemizer's phonemes
//!   to the audio ([`brazen_speech::fit`]): visemes, blendshapes, word timings and the avatar move
//!   with every voice.
//! - [`AzureAsr`] (`asr = "azure"`): speech to text, the REST API for short audio
//!   (`POST …/speech/recognition/conversation/cognitiveservices/v1?language=…`, a 16 kHz WAV,
//!   `{"RecognitionStatus", "DisplayText"}` back). Previews of a turn still being spoken are not
//!   sent (each request costs).
//!
//! Where: a region (`https://{region}.tts.speech.microsoft.com`, `…stt…`) or a resource's custom
//! domain / private endpoint (`https://NAME.cognitiveservices.azure.com/tts/…`, `…/stt/…`), as
//! Azure's documentation for private endpoints spells them. How: a resource key
//! (`Ocp-Apim-Subscription-Key`), a bearer token (an `issueToken` token, or an Entra ID token
//! someone else renews), or an Entra ID identity ([`credential`]) whose tokens brazen renews
//! itself: sent as they are to a custom domain, or as `aad#RESOURCE_ID#TOKEN` where the
//! resource id is given (what a regional endpoint needs).

mod asr;
pub mod credential;
pub mod ssml;
mod tts;

pub use asr::AzureAsr;
pub use tts::AzureTts;

use std::time::Duration;

/// Where the Speech resource is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A region (`westeurope`): the regional host of each service.
    Region(String),
    /// A custom domain or private endpoint (`https://NAME.cognitiveservices.azure.com`): the
    /// service's name leads the path.
    Custom(String),
}

/// How brazen proves who it is to the Speech service.
#[derive(Clone)]
pub enum Auth {
    /// A resource key, in `Ocp-Apim-Subscription-Key`.
    Key(String),
    /// A bearer token, in `Authorization`.
    Bearer(String),
    /// Entra ID tokens, renewed ahead of expiry, in `Authorization`.
    Entra {
        /// The tokens (scope [`credential::COGNITIVE_SERVICES_SCOPE`]).
        tokens: std::sync::Arc<credential::Tokens>,
        /// The Speech resource's Azure resource id (`/subscriptions/…/accounts/NAME`): the
        /// token goes as `aad#RESOURCE_ID#TOKEN`, as regional endpoints need; without it, as it
        /// is (custom domains).
        resource_id: Option<String>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Key(_) => "Key(…)",
            Auth::Bearer(_) => "Bearer(…)",
            Auth::Entra { .. } => "Entra(…)",
        })
    }
}

/// A Speech resource: where it is and the credential.
#[derive(Debug, Clone)]
pub struct SpeechResource {
    /// Where.
    pub endpoint: Endpoint,
    /// The credential.
    pub auth: Auth,
    /// The longest a request may take.
    pub timeout: Duration,
}

impl SpeechResource {
    /// The URL of `path` on `service` (`tts`, `stt`).
    fn url(&self, service: &str, path: &str) -> String {
        match &self.endpoint {
            Endpoint::Region(region) => format!("https://{region}.{service}.speech.microsoft.com{path}"),
            Endpoint::Custom(base) => format!("{}/{service}{path}", base.trim_end_matches('/')),
        }
    }

    /// A request with the credential set, or why there is no credential (blocking: an Entra
    /// token may be fetched).
    fn post(&self, agent: &ureq::Agent, url: &str) -> Result<ureq::RequestBuilder<ureq::typestate::WithBody>, String> {
        let request = agent.post(url).header("User-Agent", concat!("brazen/", env!("CARGO_PKG_VERSION")));
        Ok(match &self.auth {
            Auth::Key(key) => request.header("Ocp-Apim-Subscription-Key", key),
            Auth::Bearer(token) => request.header("Authorization", &format!("Bearer {token}")),
            Auth::Entra { tokens, resource_id } => {
                let token = tokens.token()?;
                let value = match resource_id {
                    Some(id) => format!("Bearer aad#{id}#{token}"),
                    None => format!("Bearer {token}"),
                };
                request.header("Authorization", &value)
            }
        })
    }

    /// An HTTP agent for this resource: the platform's certificates, statuses read, not errors.
    fn agent(&self) -> ureq::Agent {
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
        ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .into()
    }
}

/// What went wrong with a request, in words: the status and the service's message.
fn refusal(service: &str, url: &str, status: u16, body: &str) -> String {
    let body = body.trim();
    let shown: String = body.chars().take(300).collect();
    let hint = match status {
        401 | 403 => " (check the key or token, and that it belongs to this region or endpoint)",
        429 => " (the resource's rate limit: retry later or raise its tier)",
        _ => "",
    };
    if shown.is_empty() {
        format!("Azure {service} at {url} answered HTTP {status}{hint}")
    } else {
        format!("Azure {service} at {url} answered HTTP {status}{hint}: {shown}")
    }
}

/// The innermost cause of an HTTP error.
fn cause(e: &ureq::Error) -> String {
    let mut innermost: &dyn std::error::Error = e;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}
