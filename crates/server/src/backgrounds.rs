//! Avatar background pictures (`avatar.video.background.image_url`): fetched over http(s) or
//! unpacked from a `data:` URL, decoded once, and shared by every avatar naming the same URL.
//! Loading runs on a thread of its own, so a slow server never holds up an avatar's connection:
//! the avatar shows its background colour until the picture arrives.

use brazen_avatar::Backdrop;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The largest picture accepted, bytes (encoded).
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Pictures kept decoded; past this the cache starts afresh.
const CACHE_ENTRIES: usize = 32;

fn cache() -> &'static Mutex<HashMap<String, Arc<Backdrop>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Backdrop>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Loads `url` on a thread of its own and hands the picture, or why it could not be used, to
/// `done`.
pub fn load_in_background(url: String, done: impl FnOnce(Result<Arc<Backdrop>, String>) + Send + 'static) {
    let spawned = std::thread::Builder::new().name("avatar-background".into()).spawn({
        let url = url.clone();
        move || done(load(&url))
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot load the background {url}: {e}");
    }
}

/// The picture at `url`, from the cache or loaded now.
pub fn load(url: &str) -> Result<Arc<Backdrop>, String> {
    if let Some(b) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(url) {
        return Ok(b.clone());
    }
    let bytes = fetch(url)?;
    let backdrop =
        Arc::new(Backdrop::decode(&bytes).map_err(|e| format!("The background image_url cannot be used: {e}."))?);
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= CACHE_ENTRIES {
        cache.clear();
    }
    cache.insert(url.to_owned(), backdrop.clone());
    Ok(backdrop)
}

/// The bytes a `data:` or http(s) URL names, at most [`MAX_BYTES`].
fn fetch(url: &str) -> Result<Vec<u8>, String> {
    if let Some(rest) = url.strip_prefix("data:") {
        return data_url(rest);
    }
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(15)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response =
        agent.get(url).call().map_err(|e| format!("The background image_url {url} could not be fetched: {e}."))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(format!("The background image_url {url} answered HTTP {status}."));
    }
    response.body_mut().with_config().limit(MAX_BYTES).read_to_vec().map_err(|e| {
        format!(
            "The background image_url {url} could not be read (pictures up to {} MiB are taken): {e}.",
            MAX_BYTES >> 20
        )
    })
}

/// The payload of a `data:` URL (after `data:`): `[<type>][;base64],<payload>`.
fn data_url(rest: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let (meta, payload) = rest.split_once(',').ok_or("The background data: URL has no ',' before its data.")?;
    if (payload.len() as u64) > MAX_BYTES * 4 / 3 + 4 {
        return Err(format!("The background data: URL is over {} MiB.", MAX_BYTES >> 20));
    }
    if meta.ends_with(";base64") {
        base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|e| format!("The background data: URL is not valid base64: {e}."))
    } else {
        Err("The background data: URL must be base64 (data:image/png;base64,…).".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_are_unpacked_and_bad_ones_say_why() {
        assert_eq!(data_url("image/png;base64,aGVsbG8=").unwrap(), b"hello");
        assert!(data_url("image/png;base64").unwrap_err().contains("','"));
        assert!(data_url("image/png,hello").unwrap_err().contains("base64"));
        assert!(data_url("image/png;base64,@@@").unwrap_err().contains("base64"));
        assert!(load("data:image/png;base64,aGVsbG8=").unwrap_err().contains("not a PNG or a JPEG"));
    }

    #[test]
    fn an_unreachable_server_is_a_clear_error() {
        // Nothing listens on port 9 of loopback.
        let e = load("http://127.0.0.1:9/office.png").unwrap_err();
        assert!(e.contains("could not be fetched"), "{e}");
    }
}
