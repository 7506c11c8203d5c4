//! Entra ID tokens for Azure services, found the way Azure's own identity libraries find them
//! (`DefaultAzureCredential`'s order, for the sources a server has):
//!
//! 1. **A client secret** in the environment: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//!    `AZURE_CLIENT_SECRET`, and `AZURE_AUTHORITY_HOST` (default
//!    `https://login.microsoftonline.com`): `POST {authority}/{tenant}/oauth2/v2.0/token` with the
//!    client-credentials grant.
//! 2. **A managed identity**: App Service / Container Apps (`IDENTITY_ENDPOINT` and
//!    `IDENTITY_HEADER`), else the VM's instance metadata service
//!    (`http://169.254.169.254/metadata/identity/oauth2/token`); `AZURE_CLIENT_ID` picks a
//!    user-assigned identity.
//! 3. **The Azure CLI**: `az account get-access-token --resource …`.
//!
//! [`Tokens`] keeps the token and fetches a new one when less than [`REFRESH_BEFORE`] of its
//! life is left, so what it hands out is always good for at least that long; a session that
//! started with the old token is not touched.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How long before its expiry a token is replaced.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// The scope (resource) of Azure AI services: Voice Live, Speech, Azure OpenAI.
pub const COGNITIVE_SERVICES_SCOPE: &str = "https://cognitiveservices.azure.com/.default";

/// Where tokens come from.
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    /// An app registration's client secret.
    ClientSecret {
        /// `https://login.microsoftonline.com` or another cloud's.
        authority: String,
        /// The tenant.
        tenant: String,
        /// The app's client id.
        client_id: String,
        /// Its secret.
        secret: String,
    },
    /// App Service's identity endpoint.
    AppService {
        /// `IDENTITY_ENDPOINT`.
        endpoint: String,
        /// `IDENTITY_HEADER`.
        header: String,
        /// A user-assigned identity's client id.
        client_id: Option<String>,
    },
    /// The VM's instance metadata service.
    Imds {
        /// A user-assigned identity's client id.
        client_id: Option<String>,
    },
    /// `az account get-access-token`.
    AzureCli,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Source {
    /// The source the environment names, in the order above (the metadata service only when
    /// `imds` says the machine is in Azure; the CLI when `az` is on the PATH).
    pub fn from_env(imds: bool) -> Option<Source> {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
        if let (Some(tenant), Some(client_id), Some(secret)) =
            (var("AZURE_TENANT_ID"), var("AZURE_CLIENT_ID"), var("AZURE_CLIENT_SECRET"))
        {
            let authority = var("AZURE_AUTHORITY_HOST").unwrap_or_else(|| "https://login.microsoftonline.com".into());
            return Some(Source::ClientSecret { authority, tenant, client_id, secret });
        }
        if let (Some(endpoint), Some(header)) = (var("IDENTITY_ENDPOINT"), var("IDENTITY_HEADER")) {
            return Some(Source::AppService { endpoint, header, client_id: var("AZURE_CLIENT_ID") });
        }
        if imds {
            return Some(Source::Imds { client_id: var("AZURE_CLIENT_ID") });
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).any(|d| d.join("az").is_file()).then_some(Source::AzureCli)
    }

    /// What it is, without its secret.
    pub fn describe(&self) -> String {
        match self {
            Source::ClientSecret { authority, tenant, client_id, .. } => {
                format!("client secret of {client_id} in tenant {tenant} ({authority})")
            }
            Source::AppService { .. } => "managed identity (App Service)".into(),
            Source::Imds { .. } => "managed identity (instance metadata)".into(),
            Source::AzureCli => "Azure CLI".into(),
        }
    }
}

/// A token and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The bearer token.
    pub value: String,
    /// When it stops being accepted.
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(…, expires {:?})", self.expires_at)
    }
}

/// Tokens for one scope from one source, cached and refreshed ahead of expiry.
pub struct Tokens {
    source: Source,
    scope: String,
    agent: ureq::Agent,
    current: Mutex<Option<Token>>,
}

impl Tokens {
    /// Tokens for `scope` (e.g. [`COGNITIVE_SERVICES_SCOPE`]) from `source`.
    pub fn new(source: Source, scope: impl Into<String>) -> Tokens {
        let agent = ureq::Agent::config_builder()
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build())
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        Tokens { source, scope: scope.into(), agent, current: Mutex::new(None) }
    }

    /// Where the tokens come from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// A token good for at least [`REFRESH_BEFORE`]: the cached one, or a new one. Blocking
    /// (an HTTP request or a process): call it from a blocking task.
    pub fn token(&self) -> Result<String, String> {
        let now = SystemTime::now();
        if let Some(t) = self.current.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && t.expires_at > now + REFRESH_BEFORE
        {
            return Ok(t.value.clone());
        }
        let fresh = self.fetch().map_err(|e| format!("cannot get a token from the {}: {e}", self.source.describe()))?;
        let value = fresh.value.clone();
        tracing::info!(
            "new Entra ID token from the {} (valid for {} s)",
            self.source.describe(),
            fresh.expires_at.duration_since(now).unwrap_or_default().as_secs()
        );
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh);
        Ok(value)
    }

    fn fetch(&self) -> Result<Token, String> {
        let resource = self.scope.trim_end_matches("/.default");
        let (status, body) = match &self.source {
            Source::ClientSecret { authority, tenant, client_id, secret } => {
                let url = format!("{}/{tenant}/oauth2/v2.0/token", authority.trim_end_matches('/'));
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", secret.as_str()),
                    ("scope", self.scope.as_str()),
                ];
                let response = self.agent.post(&url).send_form(form).map_err(|e| format!("{url}: {e}"))?;
                read(response)?
            }
            Source::AppService { endpoint, header, client_id } => {
                let mut request = self
                    .agent
                    .get(endpoint)
                    .query("api-version", "2019-08-01")
                    .query("resource", resource)
                    .header("X-IDENTITY-HEADER", header);
                if let Some(id) = client_id {
                    request = request.query("client_id", id);
                }
                read(request.call().map_err(|e| format!("{endpoint}: {e}"))?)?
            }
            Source::Imds { client_id } => {
                let url = "http://169.254.169.254/metadata/identity/oauth2/token";
                let mut request = self
                    .agent
                    .get(url)
                    .query("api-version", "2018-02-01")
                    .query("resource", resource)
                    .header("Metadata", "true");
                if let Some(id) = client_id {
                    request = request.query("client_id", id);
                }
                read(request.call().map_err(|e| format!("{url}: {e}"))?)?
            }
            Source::AzureCli => {
                let out = std::process::Command::new("az")
                    .args(["account", "get-access-token", "--resource", resource, "--output", "json"])
                    .output()
                    .map_err(|e| format!("cannot run az: {e}"))?;
                if !out.status.success() {
                    return Err(format!("az failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
                }
                (200, String::from_utf8_lossy(&out.stdout).into_owned())
            }
        };
        if status != 200 {
            let shown: String = body.chars().take(300).collect();
            return Err(format!("HTTP {status}: {shown}"));
        }
        parse(&body, SystemTime::now())
    }
}

fn read(response: ureq::http::Response<ureq::Body>) -> Result<(u16, String), String> {
    let status = response.status().as_u16();
    let body = response.into_body().with_config().limit(1 << 20).read_to_string().map_err(|e| e.to_string())?;
    Ok((status, body))
}

/// A token answer: `access_token` (`accessToken` from the CLI) and its life, as `expires_in`
/// seconds (a number or a string), `expires_on` (Unix seconds) or the CLI's `expires_on`.
pub fn parse(body: &str, now: SystemTime) -> Result<Token, String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("the token answer is not JSON: {e}"))?;
    let value = v["access_token"]
        .as_str()
        .or(v["accessToken"].as_str())
        .filter(|t| !t.is_empty())
        .ok_or("the token answer has no access_token")?
        .to_owned();
    let number = |x: &serde_json::Value| x.as_u64().or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()));
    let expires_at = if let Some(secs) = number(&v["expires_in"]) {
        now + Duration::from_secs(secs)
    } else if let Some(unix) = number(&v["expires_on"]) {
        SystemTime::UNIX_EPOCH + Duration::from_secs(unix)
    } else {
        now + Duration::from_secs(3600)
    };
    Ok(Token { value, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_of_each_source_are_read() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let t = parse(r#"{"token_type":"Bearer","expires_in":3599,"access_token":"abc"}"#, now).unwrap();
        assert_eq!((t.value.as_str(), t.expires_at), ("abc", now + Duration::from_secs(3599)));
        let t = parse(r#"{"access_token":"x","expires_in":"600"}"#, now).unwrap();
        assert_eq!(t.expires_at, now + Duration::from_secs(600));
        let t = parse(r#"{"access_token":"m","expires_on":"5000"}"#, now).unwrap();
        assert_eq!(t.expires_at, SystemTime::UNIX_EPOCH + Duration::from_secs(5_000));
        assert!(parse(r#"{"error":"invalid_client"}"#, now).unwrap_err().contains("no access_token"));
        assert!(parse("<html>", now).is_err());
    }
}
