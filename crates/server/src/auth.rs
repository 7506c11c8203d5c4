//! API-key authentication and the choice of WebSocket subprotocol.

use axum::http::HeaderMap;

/// The subprotocol prefix browsers use to carry an API key.
const KEY_PROTOCOL: &str = "openai-insecure-api-key.";

/// The key a request presents: `api-key` header, `Authorization: Bearer`, the
/// `openai-insecure-api-key.<key>` subprotocol, or the `api-key` query parameter. A blank key
/// (empty, or only spaces) counts as none.
pub fn presented_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(k) = header("api-key").filter(|k| !k.is_empty()) {
        return Some(k.to_owned());
    }
    if let Some(auth) = header("authorization") {
        let (scheme, token) = auth.split_once(' ').unwrap_or((auth, ""));
        if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
            return Some(token.trim().to_owned());
        }
    }
    if let Some(k) = offered_protocols(headers)
        .into_iter()
        .find_map(|p| p.strip_prefix(KEY_PROTOCOL).map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned))
    {
        return Some(k);
    }
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        if k != "api-key" {
            return None;
        }
        let v = percent_decode(v);
        let v = v.trim();
        (!v.is_empty()).then(|| v.to_owned())
    })
}

/// Whether `presented` is one of `keys`. Blank keys never match (the configuration refuses
/// them too). The comparison takes the same time whatever the keys hold and however long they
/// are: it depends only on the presented key's length.
pub fn key_accepted(keys: &[String], presented: Option<&str>) -> bool {
    let Some(p) = presented.filter(|p| !p.trim().is_empty()) else { return false };
    keys.iter().filter(|k| !k.trim().is_empty()).fold(false, |ok, k| ok | constant_time_eq(k.as_bytes(), p.as_bytes()))
}

/// Whether `key` equals `presented`, in time that depends only on `presented`'s length: each
/// presented byte is compared with a key byte (cycling through a shorter key), and a length
/// difference is folded into the result rather than returned early.
fn constant_time_eq(key: &[u8], presented: &[u8]) -> bool {
    if key.is_empty() {
        return false;
    }
    let mut diff = (key.len() != presented.len()) as u8;
    for (i, b) in presented.iter().enumerate() {
        diff |= key[i % key.len()] ^ b;
    }
    std::hint::black_box(diff) == 0
}

/// Why a configured API key cannot be used, if it cannot: a blank key would let in whoever
/// sends an empty one (which is what `--api-key "$BRAZEN_KEY"` becomes with the variable unset).
pub fn check_configured_key(key: &str) -> Result<(), String> {
    if key.trim().is_empty() {
        return Err("an API key is empty (was --api-key given an unset variable?). Give a real key (16 or more random characters, e.g. `openssl rand -hex 24`), or leave out --api-key / BRAZEN_API_KEYS to serve on 127.0.0.1 without one".into());
    }
    if key.trim() != key {
        return Err("an API key starts or ends with whitespace, which clients cannot send; remove it".into());
    }
    if key.starts_with(crate::client_secrets::PREFIX) {
        return Err(format!(
            "an API key starts with {:?}, which marks client secrets; choose another key",
            crate::client_secrets::PREFIX
        ));
    }
    Ok(())
}

/// The subprotocols a client offered.
pub fn offered_protocols(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// The subprotocol to select: `realtime` when offered, else the first offered one that carries
/// no key (browsers reject a handshake that selects none of several offered).
pub fn chosen_protocol(headers: &HeaderMap) -> Option<String> {
    let offered = offered_protocols(headers);
    if offered.contains(&"realtime") {
        return Some("realtime".into());
    }
    offered.into_iter().find(|p| !p.starts_with(KEY_PROTOCOL)).map(str::to_owned)
}

/// The value of the query parameter `name` (decoded), if it is there and not empty.
pub fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| match pair.split_once('=') {
        Some((k, v)) if k == name && !v.is_empty() => Some(percent_decode(v)),
        _ => None,
    })
}

/// Decodes `%XX` escapes and `+` in a query value.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// Request headers from name–value pairs.
    pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn every_way_of_presenting_a_key() {
        assert_eq!(presented_key(&headers(&[("api-key", "k1")]), None).as_deref(), Some("k1"));
        assert_eq!(presented_key(&headers(&[("authorization", "Bearer k2")]), None).as_deref(), Some("k2"));
        let h = headers(&[("sec-websocket-protocol", "realtime, openai-insecure-api-key.k3, openai-beta.realtime-v1")]);
        assert_eq!(presented_key(&h, None).as_deref(), Some("k3"));
        assert_eq!(chosen_protocol(&h).as_deref(), Some("realtime"));
        assert_eq!(presented_key(&HeaderMap::new(), Some("model=x&api-key=k%2B4")).as_deref(), Some("k+4"));
        assert_eq!(presented_key(&HeaderMap::new(), Some("model=x")), None);
    }

    #[test]
    fn keys_must_match_exactly() {
        let keys = vec!["secret".to_string()];
        assert!(key_accepted(&keys, Some("secret")));
        assert!(!key_accepted(&keys, Some("secre")));
        assert!(!key_accepted(&keys, Some("secret2")));
        assert!(!key_accepted(&keys, None));
        // Blank keys never match, configured or presented.
        let blank = vec![String::new(), " ".to_string()];
        assert!(!key_accepted(&blank, Some("")));
        assert!(!key_accepted(&blank, Some(" ")));
        assert!(check_configured_key("").is_err() && check_configured_key("  ").is_err());
        assert!(check_configured_key(" padded").is_err() && check_configured_key("fine-key").is_ok());
        assert!(check_configured_key("ek_looks_like_a_secret").is_err());
        assert_eq!(presented_key(&HeaderMap::new(), Some("api-key=+")), None);
        assert_eq!(presented_key(&HeaderMap::new(), Some("api-key=%20%20")), None);
        let h = headers(&[("sec-websocket-protocol", "realtime, openai-insecure-api-key.")]);
        assert_eq!(presented_key(&h, None), None);
        assert_eq!(percent_decode("a%20b+c%zz"), "a b c%zz");
    }
}
