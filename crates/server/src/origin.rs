//! Which web pages may drive the server: the WebSocket's `Origin` and the request's `Host`.
//!
//! A browser lets any page open a WebSocket to any address, 127.0.0.1 included, and sends the
//! page's `Origin` with it; it is the server's job to refuse pages it does not serve. And a page
//! can reach a loopback server through a DNS name of its own that it re-points at 127.0.0.1
//! (DNS rebinding): the browser then believes it talks to the page's own site, but sends that
//! site's name as `Host`. So:
//!
//! - The WebSocket accepts clients that send no `Origin` (SDKs, servers), pages of the server's
//!   own origin, and the origins of the `allowed_origins` setting (`*`: any). A server with an
//!   API key and no `allowed_origins` accepts every origin: the key is the check. A server
//!   without a key also accepts pages from loopback origins (`http://localhost:5173`, a
//!   development server): they are served by software on this machine, which can reach a
//!   loopback server anyway; a remote page's origin is never a loopback name.
//! - A server without an API key (which listens on loopback only) answers only requests whose
//!   `Host` is a loopback name or address, or one of the `allowed_hosts` setting.

use crate::config::Config;
use axum::http::HeaderMap;

/// Why a configured origin cannot be used, if it cannot: it must be `*` or
/// `scheme://host[:port]` with nothing after it, as browsers send it.
pub fn check_configured_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let ok = split_origin(origin)
        .is_some_and(|(_, authority)| !authority.is_empty() && !authority.contains(['/', '?', '#', ' ', '@']));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "allowed_origins entry {origin:?} is not an origin: write it as the browser sends it, scheme and host and port only, e.g. \"http://localhost:5173\" or \"https://app.example.com\" (\"*\" admits every origin)"
        ))
    }
}

/// An origin's scheme and authority (`host[:port]`), lower-cased, with the scheme's default
/// port removed; `None` for anything but `http(s)://…`.
fn split_origin(origin: &str) -> Option<(&'static str, String)> {
    let lower = origin.trim().to_ascii_lowercase();
    let (scheme, rest) = if let Some(rest) = lower.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = lower.strip_prefix("http://") {
        ("http", rest)
    } else {
        return None;
    };
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = rest.strip_suffix(default_port).unwrap_or(rest);
    Some((scheme, authority.to_owned()))
}

/// A `Host` header's value lower-cased with a default port removed (`x:80` → `x`).
fn normal_host(host: &str, scheme: &str) -> String {
    let lower = host.trim().to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    lower.strip_suffix(default_port).map(str::to_owned).unwrap_or(lower)
}

/// Whether a WebSocket request may proceed given its `Origin`; `Err` holds the reason for the
/// client.
pub fn check_origin(config: &Config, headers: &HeaderMap) -> Result<(), String> {
    let Some(origin) = headers.get("origin") else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("null");
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default();
    if let Some((scheme, authority)) = split_origin(origin) {
        if !host.is_empty() && authority == normal_host(host, scheme) {
            return Ok(());
        }
        let listed = config
            .allowed_origins
            .iter()
            .any(|allowed| allowed == "*" || split_origin(allowed).is_some_and(|(s, a)| s == scheme && a == authority));
        if listed {
            return Ok(());
        }
    } else if config.allowed_origins.iter().any(|a| a == "*") {
        return Ok(());
    }
    if !config.api_keys.is_empty() && config.allowed_origins.is_empty() {
        return Ok(());
    }
    if config.api_keys.is_empty() && split_origin(origin).is_some_and(|(_, authority)| is_loopback_name(&authority)) {
        return Ok(());
    }
    let origin: String = origin.chars().take(200).collect();
    Err(if config.api_keys.is_empty() {
        format!(
            "Pages from {origin} may not use this server: it has no API key, so only its own pages and the allowed_origins setting's may connect from a browser. Add the origin to allowed_origins (BRAZEN_ALLOWED_ORIGINS), or give the server an API key."
        )
    } else {
        format!("Pages from {origin} may not use this server: add the origin to its allowed_origins setting.")
    })
}

/// Whether a server without an API key answers a request with this `Host` (see the module
/// doc); servers with a key answer every `Host`.
pub fn host_allowed(config: &Config, headers: &HeaderMap) -> bool {
    if !config.api_keys.is_empty() {
        return true;
    }
    let Some(host) = headers.get("host") else { return true };
    let Ok(host) = host.to_str() else { return false };
    let host = host.trim().to_ascii_lowercase();
    is_loopback_name(&host)
        || config
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host_name(&host)) || h.eq_ignore_ascii_case(&host))
}

/// A `host[:port]` without its port (`[::1]:8080` → `::1`, `localhost:8080` → `localhost`).
fn host_name(host: &str) -> &str {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())).map_or(host, |(n, _)| n)
    };
    name.trim_end_matches('.')
}

/// Whether a lower-case `host[:port]` names this machine: `localhost`, `*.localhost`, or a
/// loopback address.
fn is_loopback_name(host: &str) -> bool {
    let name = host_name(host);
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tests::headers;

    fn config(keys: &[&str], origins: &[&str]) -> Config {
        Config {
            api_keys: keys.iter().map(|k| k.to_string()).collect(),
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            ..Config::default()
        }
    }

    #[test]
    fn a_keyless_server_takes_its_own_pages_and_listed_origins_only() {
        let open = config(&[], &[]);
        assert!(check_origin(&open, &headers(&[])).is_ok(), "no Origin: not a browser");
        let own = headers(&[("origin", "http://127.0.0.1:8080"), ("host", "127.0.0.1:8080")]);
        assert!(check_origin(&open, &own).is_ok());
        let evil = headers(&[("origin", "https://evil.example"), ("host", "127.0.0.1:8080")]);
        let e = check_origin(&open, &evil).unwrap_err();
        assert!(e.contains("https://evil.example") && e.contains("allowed_origins"), "{e}");
        assert!(check_origin(&open, &headers(&[("origin", "null"), ("host", "127.0.0.1:8080")])).is_err());
        let listed = config(&[], &["https://EVIL.example:443"]);
        assert!(check_origin(&listed, &evil).is_ok());
        assert!(check_origin(&config(&[], &["*"]), &evil).is_ok());
        let dev_server = headers(&[("origin", "http://localhost:5173"), ("host", "127.0.0.1:8080")]);
        assert!(check_origin(&open, &dev_server).is_ok(), "pages served on this machine");
        let lookalike = headers(&[("origin", "http://localhost.evil.example"), ("host", "127.0.0.1:8080")]);
        assert!(check_origin(&open, &lookalike).is_err());
    }

    #[test]
    fn a_server_with_a_key_takes_any_origin_unless_it_lists_some() {
        let evil = headers(&[("origin", "https://evil.example"), ("host", "brazen.example")]);
        assert!(check_origin(&config(&["k"], &[]), &evil).is_ok());
        assert!(check_origin(&config(&["k"], &["https://app.example"]), &evil).is_err());
        let local = headers(&[("origin", "http://localhost:5173"), ("host", "brazen.example")]);
        assert!(check_origin(&config(&["k"], &["https://app.example"]), &local).is_err(), "a listing server lists");
    }

    #[test]
    fn a_keyless_server_answers_loopback_hosts_only() {
        let open = config(&[], &[]);
        for ok in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "app.localhost:3000", "127.0.0.2"] {
            assert!(host_allowed(&open, &headers(&[("host", ok)])), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example"] {
            assert!(!host_allowed(&open, &headers(&[("host", bad)])), "{bad}");
        }
        let listed = Config { allowed_hosts: vec!["brazen.lan".into()], ..open };
        assert!(host_allowed(&listed, &headers(&[("host", "brazen.lan:8080")])));
        assert!(host_allowed(&config(&["k"], &[]), &headers(&[("host", "evil.example")])));
    }

    #[test]
    fn configured_origins_must_be_origins() {
        assert!(check_configured_origin("http://localhost:5173").is_ok());
        assert!(check_configured_origin("*").is_ok());
        assert!(check_configured_origin("localhost:5173").is_err());
        assert!(check_configured_origin("https://app.example/path").is_err());
    }
}
