//! Avatar background pictures (`avatar.video.background.image_url`) and photo avatars'
//! portraits (`photo_url`): fetched over http(s) or unpacked from a `data:` URL, decoded once,
//! and shared by every avatar naming the same URL.
//!
//! A client names the URL, so the fetch is guarded as a server-side request forgery would be
//! tried: only public addresses (checked after resolving, on every redirect, and connected to as
//! checked) unless the `fetch_allow` setting admits a host or network; one error sentence for
//! every failure; size, time and pixel limits checked before the work they bound; at most
//! `CONCURRENT_LOADS` (two) loads at once; a cache bounded in bytes.
//! Loading runs on a thread of its own, so a slow server never holds up an avatar's connection:
//! the avatar shows its background colour until the picture arrives.

use brazen_avatar::Backdrop;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// The largest picture accepted, bytes (encoded).
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;
/// Decoded pixels the cache keeps, bytes; the least recently used pictures go first.
const CACHE_BYTES: usize = 128 * 1024 * 1024;
/// Pictures fetched and decoded at once; more wait their turn (each may hold up to 64 MiB
/// while it is decoded).
const CONCURRENT_LOADS: usize = 2;
/// The longest a fetch may take, redirects included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Redirects followed (each one's address is checked again).
const MAX_REDIRECTS: u32 = 5;

/// The one answer a client gets for a picture at a URL that could not be used, whatever the
/// reason: telling "refused", "timed out", "HTTP 404" and "not a PNG" apart would let a client
/// map the server's network. The reason goes to the server's log.
const UNUSABLE: &str = "could not be loaded: it must be a PNG or JPEG of at most 16 MiB and 4096×4096 pixels at a public http(s) address that answers within 10 s (the server's log says more; its fetch_allow setting admits private addresses)";

/// Which addresses pictures may be fetched from: public ones always; private, loopback and
/// link-local ones (cloud metadata services included) only when the server's `fetch_allow`
/// setting names the host or a network holding the address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FetchPolicy {
    hosts: Vec<String>,
    networks: Vec<(IpAddr, u8)>,
}

impl FetchPolicy {
    /// From the `fetch_allow` entries: host names (`images.internal`), addresses (`10.0.0.7`)
    /// or networks in CIDR form (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse(entries: &[String]) -> Result<FetchPolicy, String> {
        let mut policy = FetchPolicy::default();
        for entry in entries {
            let entry = entry.trim();
            let (addr, bits) = match entry.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (entry, None),
            };
            match (addr.parse::<IpAddr>(), bits) {
                (Ok(ip), bits) => {
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    let bits =
                        match bits {
                            None => max,
                            Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| {
                                format!("fetch_allow entry {entry:?}: the prefix length must be 0–{max}")
                            })?,
                        };
                    policy.networks.push((ip, bits));
                }
                (Err(_), None) if !entry.is_empty() && !entry.contains([':', ' ']) => {
                    policy.hosts.push(entry.to_ascii_lowercase());
                }
                _ => {
                    return Err(format!(
                        "fetch_allow entry {entry:?} is not a host name, an IP address or a network (10.0.0.0/8)"
                    ));
                }
            }
        }
        Ok(policy)
    }

    /// Whether a picture at `host` may come from `ip`.
    fn allows(&self, host: &str, ip: IpAddr) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        is_public(ip)
            || self.hosts.contains(&host)
            || self.networks.iter().any(|(net, bits)| in_network(ip, *net, *bits))
    }
}

/// Whether `ip` is in the network `net`/`bits`.
fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, len) = match (canonical(ip), canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32u32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128u32),
        _ => return false,
    };
    let bits = u32::from(bits).min(len);
    bits == 0 || (ip ^ net) >> (len - bits) == 0
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is a public unicast address: not loopback, private, shared (CGNAT),
/// link-local (169.254.169.254, where cloud metadata lives, among them), unspecified,
/// multicast, broadcast, documentation or otherwise reserved; IPv6 likewise (unique-local,
/// link-local, IPv4-mapped and NAT64 forms of the IPv4 ranges).
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            // NAT64 (64:ff9b::/96) and IPv4-translated (::ffff:0:a.b.c.d) addresses carry an
            // IPv4 address in their last 32 bits; 6to4 (2002::/16) in bits 16–47.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..6] == [0, 0, 0, 0, 0xffff, 0] {
                return is_public_v4(v4(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return is_public_v4(v4(s[1], s[2]));
            }
            // Local-use NAT64 (64:ff9b:1::/48) and Teredo (2001::/32) reach addresses that
            // cannot be checked from here.
            if (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) || (s[0] == 0x2001 && s[1] == 0) {
                return false;
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
                || s[0] == 0x2001 && s[1] == 0x0db8 // documentation
                || v6.to_ipv4().is_some() && s[..6] == [0; 6]) // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0) // IETF protocol assignments 192.0.0.0/24 (and 192.0.2.0/24)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// Resolves as usual, then keeps only the addresses the policy allows; ureq connects to what
/// this returns, so a name cannot resolve one way for the check and another for the connection,
/// and every redirect's host goes through it again.
#[derive(Debug)]
struct GuardedResolver(Arc<FetchPolicy>);

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default().to_owned();
        let resolved = DefaultResolver::default().resolve(uri, config, timeout)?;
        let mut kept = self.empty();
        for addr in resolved.iter().filter(|a| self.0.allows(&host, a.ip())) {
            kept.push(*addr);
        }
        if kept.is_empty() {
            let seen: Vec<SocketAddr> = resolved.iter().copied().collect();
            tracing::info!("picture fetch refused: {host} resolves to non-public {seen:?} (see fetch_allow)");
            return Err(ureq::Error::HostNotFound);
        }
        Ok(kept)
    }
}

fn policy_cell() -> &'static OnceLock<Arc<FetchPolicy>> {
    static POLICY: OnceLock<Arc<FetchPolicy>> = OnceLock::new();
    &POLICY
}

/// Sets the process's fetch policy (once, at start-up; later calls are ignored). Without it,
/// only public addresses are fetched from.
pub fn set_policy(policy: FetchPolicy) {
    let _ = policy_cell().set(Arc::new(policy));
}

/// The decoded pictures by their URL's hash (a `data:` URL may be megabytes long: it is not
/// kept), most recently used last, and the bytes their pixels hold.
#[derive(Default)]
struct Cache {
    pictures: VecDeque<(u64, Arc<Backdrop>)>,
    bytes: usize,
}

/// A URL's key in the cache: its hash under a key chosen at random per process (so a client
/// cannot make two URLs collide on purpose).
fn cache_key(url: &str) -> u64 {
    use std::hash::BuildHasher;
    static HASHER: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    HASHER.get_or_init(Default::default).hash_one(url)
}

impl Cache {
    fn get(&mut self, url: &str) -> Option<Arc<Backdrop>> {
        let key = cache_key(url);
        let i = self.pictures.iter().position(|(k, _)| *k == key)?;
        let entry = self.pictures.remove(i)?;
        let picture = entry.1.clone();
        self.pictures.push_back(entry);
        Some(picture)
    }

    fn insert(&mut self, url: &str, picture: Arc<Backdrop>) {
        if self.get(url).is_some() {
            return;
        }
        self.bytes += picture.byte_size();
        self.pictures.push_back((cache_key(url), picture));
        while self.bytes > CACHE_BYTES {
            let Some((_, old)) = self.pictures.pop_front() else { break };
            self.bytes -= old.byte_size();
        }
    }
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// A turn among the [`CONCURRENT_LOADS`] loads that may run at once, given back on drop.
struct LoadTurn;

fn load_slots() -> &'static (Mutex<usize>, Condvar) {
    static SLOTS: OnceLock<(Mutex<usize>, Condvar)> = OnceLock::new();
    SLOTS.get_or_init(|| (Mutex::new(0), Condvar::new()))
}

impl LoadTurn {
    fn wait() -> LoadTurn {
        let (running, freed) = load_slots();
        let mut n = running.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= CONCURRENT_LOADS {
            n = freed.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        LoadTurn
    }
}

impl Drop for LoadTurn {
    fn drop(&mut self) {
        let (running, freed) = load_slots();
        *running.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// Loads `url` on a thread of its own and hands the picture, or why it could not be used, to
/// `done`.
pub fn load_in_background(url: String, done: impl FnOnce(Result<Arc<Backdrop>, String>) + Send + 'static) {
    let spawned = std::thread::Builder::new().name("avatar-background".into()).spawn(move || done(load(&url)));
    if let Err(e) = spawned {
        tracing::warn!("cannot start loading a picture: {e}");
    }
}

/// The picture at `url`, from the cache or loaded now. A `data:` URL's error says what is wrong
/// with it; an http(s) URL's is always the same sentence (`UNUSABLE`).
pub fn load(url: &str) -> Result<Arc<Backdrop>, String> {
    if let Some(b) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(url) {
        return Ok(b);
    }
    let _turn = LoadTurn::wait();
    if let Some(b) = cache().lock().unwrap_or_else(|e| e.into_inner()).get(url) {
        return Ok(b);
    }
    let backdrop = match url.strip_prefix("data:") {
        Some(rest) => {
            let bytes = data_url(rest)?;
            Backdrop::decode(&bytes).map_err(|e| format!("The picture cannot be used: {e}."))?
        }
        None => {
            let unusable = |reason: String| {
                tracing::info!("picture {url}: {reason}");
                let shown: String = url.chars().take(200).collect();
                format!("The picture at {shown} {UNUSABLE}.")
            };
            Backdrop::decode(&fetch(url).map_err(unusable)?).map_err(unusable)?
        }
    };
    let backdrop = Arc::new(backdrop);
    cache().lock().unwrap_or_else(|e| e.into_inner()).insert(url, backdrop.clone());
    Ok(backdrop)
}

/// The bytes at an http(s) URL, at most [`MAX_BYTES`], from an address the policy allows; the
/// error says why not (for the log only).
fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let policy = policy_cell().get().cloned().unwrap_or_default();
    let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .proxy(None)
        .timeout_global(Some(FETCH_TIMEOUT))
        .max_redirects(MAX_REDIRECTS)
        .http_status_as_error(false)
        .build();
    let agent = ureq::Agent::with_parts(config, DefaultConnector::default(), GuardedResolver(policy));
    let mut response = agent.get(url).call().map_err(|e| format!("fetch failed: {e}"))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(format!("answered HTTP {status}"));
    }
    response.body_mut().with_config().limit(MAX_BYTES).read_to_vec().map_err(|e| format!("read failed: {e}"))
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
    fn private_addresses_are_refused_with_one_message() {
        // Nothing listens on port 9 of loopback; something might on 10.x: neither is asked.
        let a = load("http://127.0.0.1:9/office.png").unwrap_err();
        let b = load("http://10.1.2.3/office.png").unwrap_err();
        let c = load("http://[::1]:9/x.png").unwrap_err();
        let unsaid = |e: &str, url: &str| e.replace(url, "URL");
        assert_eq!(unsaid(&a, "http://127.0.0.1:9/office.png"), unsaid(&b, "http://10.1.2.3/office.png"));
        assert_eq!(unsaid(&a, "http://127.0.0.1:9/office.png"), unsaid(&c, "http://[::1]:9/x.png"));
        assert!(!a.contains("refused") && !a.contains("not found"), "{a}");
    }

    #[test]
    fn which_addresses_are_public() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "2002:7f00:1::",
            "64:ff9b:1::1",
            "2001:0:4136:e378::1",
            "::ffff:0:7f00:1",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "2002:0808:0808::1"] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn fetch_allow_admits_named_hosts_and_networks() {
        let policy = FetchPolicy::parse(&["10.0.0.0/8".into(), "images.internal".into(), "::1".into()]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(policy.allows("x", ip("10.9.8.7")));
        assert!(policy.allows("x", ip("::ffff:10.9.8.7")));
        assert!(!policy.allows("x", ip("192.168.0.1")));
        assert!(policy.allows("IMAGES.internal", ip("192.168.0.1")));
        assert!(policy.allows("[::1]", ip("::1")));
        assert!(!policy.allows("x", ip("127.0.0.1")));
        assert!(FetchPolicy::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(FetchPolicy::parse(&["not a host".into()]).is_err());
    }

    #[test]
    fn the_cache_is_bounded_in_bytes_least_recently_used_first() {
        let picture =
            |side: u32| Arc::new(Backdrop::from_rgba(side, side, vec![0; (side * side * 4) as usize]).unwrap());
        let mut cache = Cache::default();
        let side = 2_048; // 16 MiB each: eight fill the cache
        for i in 0..8 {
            cache.insert(&format!("u{i}"), picture(side));
        }
        assert_eq!(cache.bytes, CACHE_BYTES);
        assert!(cache.get("u0").is_some(), "used again: now the most recent");
        cache.insert("u8", picture(side));
        assert!(cache.get("u1").is_none(), "the least recently used went");
        assert!(cache.get("u0").is_some());
        assert!(cache.bytes <= CACHE_BYTES);
    }
}
