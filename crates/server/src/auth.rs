//! API-key authentication and the choice of WebSocket subprotocol.

use axum::http::HeaderMap;

/// The subprotocol prefix browsers use to carry an API key.
const KEY_PROTOCOL: &str = "openai-insecure-api-key.";

/// The key a request presents: `api-key` header, `Authorization: Bearer`, the
/// `openai-insecure-api-key.<key>` subprotocol, or the `api-key` query parameter.
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
    if let Some(k) =
        offered_protocols(headers).into_iter().find_map(|p| p.strip_prefix(KEY_PROTOCOL).map(str::to_owned))
    {
        return Some(k);
    }
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "api-key" && !v.is_empty()).then(|| percent_decode(v))
    })
}

/// Whether `presented` is one of `keys`, compared in constant time per key.
pub fn key_accepted(keys: &[String], presented: Option<&str>) -> bool {
    let Some(p) = presented else { return false };
    keys.iter().fold(false, |ok, k| ok | constant_time_eq(k.as_bytes(), p.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
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
        assert_eq!(percent_decode("a%20b+c%zz"), "a b c%zz");
    }
}
