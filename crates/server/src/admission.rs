//! How many new sessions each client address and each API key may open: a token bucket per
//! address and per key, refilled at the configured rate per minute and holding at most a
//! minute's worth, so a client may open a minute's sessions at once and then as many as the
//! rate gives back. A session refused is answered with HTTP 429 and `Retry-After`.
//!
//! The tables forget buckets that have filled up again (they are the same as new ones), so
//! clients that come and go cost no memory.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before full ones are forgotten.
const SWEEP_ABOVE: usize = 10_000;

/// A refused session: whose limit it met and when a place comes back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Refused {
    /// `"address"` or `"key"`.
    pub by: &'static str,
    /// The limit per minute that was met.
    pub per_minute: f64,
    /// When one more session would be let in.
    pub retry_after: Duration,
}

/// One client's bucket: tokens left at `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets keyed by `K`, refilled at `per_minute`.
#[derive(Debug)]
struct Buckets<K> {
    per_minute: f64,
    table: HashMap<K, Bucket>,
    /// The table's size below which it is not swept (twice what the last sweep kept), so a
    /// sweep's cost is spread over as many admissions as it looked at.
    sweep_at: usize,
}

impl<K: Hash + Eq> Buckets<K> {
    fn new(per_minute: f64) -> Self {
        Buckets { per_minute, table: HashMap::new(), sweep_at: SWEEP_ABOVE }
    }

    fn limited(&self) -> bool {
        self.per_minute > 0.0
    }

    /// What a bucket holds when full: a minute's worth, and at least one session.
    fn capacity(&self) -> f64 {
        self.per_minute.max(1.0)
    }

    /// The tokens `key` has at `now`.
    fn tokens(&self, key: &K, now: Instant) -> f64 {
        self.table.get(key).map_or(self.capacity(), |b| {
            let refill = now.saturating_duration_since(b.at).as_secs_f64() * self.per_minute / 60.0;
            (b.tokens + refill).min(self.capacity())
        })
    }

    /// How long until `key` has a whole token, if it has none now.
    fn wait(&self, key: &K, now: Instant) -> Option<Duration> {
        let tokens = self.tokens(key, now);
        (self.limited() && tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - tokens) * 60.0 / self.per_minute))
    }

    fn take(&mut self, key: K, now: Instant) {
        if !self.limited() {
            return;
        }
        let tokens = self.tokens(&key, now) - 1.0;
        self.table.insert(key, Bucket { tokens, at: now });
        if self.table.len() > self.sweep_at {
            let (per_minute, capacity) = (self.per_minute, self.capacity());
            self.table.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_minute / 60.0 < capacity
            });
            self.sweep_at = (self.table.len() * 2).max(SWEEP_ABOVE);
        }
    }
}

/// The limits on new sessions of one server.
#[derive(Debug)]
pub struct Admission {
    /// Keys are kept as hashes (with a per-process seed), not as the secrets themselves.
    state: Mutex<(Buckets<IpAddr>, Buckets<u64>)>,
    hasher: RandomState,
}

impl Admission {
    /// Limits of `per_address` and `per_key` new sessions a minute (0: none).
    pub fn new(per_address: f64, per_key: f64) -> Self {
        Admission { state: Mutex::new((Buckets::new(per_address), Buckets::new(per_key))), hasher: RandomState::new() }
    }

    /// Lets one more session in from `address` with `key` (the API key it presented, or the
    /// key a client secret was minted with) at `now`, or says why not. A refusal takes
    /// nothing from either bucket.
    pub fn admit(&self, address: IpAddr, key: Option<&str>, now: Instant) -> Result<(), Refused> {
        let Ok(mut state) = self.state.lock() else { return Ok(()) };
        let (addresses, keys) = &mut *state;
        let key = key.map(|k| self.hasher.hash_one(k));
        let address = client_of(address);
        if let Some(retry_after) = addresses.wait(&address, now) {
            return Err(Refused { by: "address", per_minute: addresses.per_minute, retry_after });
        }
        if let Some(key) = key
            && let Some(retry_after) = keys.wait(&key, now)
        {
            return Err(Refused { by: "key", per_minute: keys.per_minute, retry_after });
        }
        addresses.take(address, now);
        if let Some(key) = key {
            keys.take(key, now);
        }
        Ok(())
    }
}

/// Whom an address stands for: itself for IPv4, its /64 network for IPv6 (one machine is
/// routinely given a whole /64).
fn client_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minutes_worth_at_once_then_the_rate() {
        let limits = Admission::new(6.0, 0.0);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..6 {
            assert!(limits.admit(a, None, t0).is_ok());
        }
        let refused = limits.admit(a, None, t0).unwrap_err();
        assert_eq!(refused.by, "address");
        assert!(refused.retry_after > Duration::from_secs(9) && refused.retry_after <= Duration::from_secs(10));
        assert!(limits.admit(b, None, t0).is_ok(), "another address has its own bucket");
        assert!(limits.admit(a, None, t0 + Duration::from_secs(9)).is_err());
        assert!(limits.admit(a, None, t0 + Duration::from_secs(10)).is_ok(), "one comes back every 10 s");
        assert!(limits.admit(a, None, t0 + Duration::from_secs(11)).is_err());
    }

    #[test]
    fn a_key_is_limited_across_addresses_and_a_refusal_costs_nothing() {
        let limits = Admission::new(0.0, 2.0);
        let t0 = Instant::now();
        let address = |n: u8| IpAddr::from([10, 0, 0, n]);
        assert!(limits.admit(address(1), Some("k"), t0).is_ok());
        assert!(limits.admit(address(2), Some("k"), t0).is_ok());
        assert_eq!(limits.admit(address(3), Some("k"), t0).unwrap_err().by, "key");
        assert!(limits.admit(address(3), Some("other"), t0).is_ok());
        assert!(limits.admit(address(3), None, t0).is_ok(), "no key, no key limit; addresses unlimited");
        // Refused by its address, a session takes nothing from its key.
        let both = Admission::new(1.0, 2.0);
        assert!(both.admit(address(1), Some("k"), t0).is_ok());
        assert_eq!(both.admit(address(1), Some("k"), t0).unwrap_err().by, "address");
        assert!(both.admit(address(2), Some("k"), t0).is_ok(), "the key still had one left");
    }

    #[test]
    fn an_ipv6_network_is_one_client_and_a_slow_rate_still_admits() {
        let limits = Admission::new(2.0, 0.0);
        let t0 = Instant::now();
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(limits.admit(one, None, t0).is_ok() && limits.admit(same_net, None, t0).is_ok());
        assert!(limits.admit(same_net, None, t0).is_err(), "the /64 shares a bucket");
        assert!(limits.admit("2001:db8:1:3::1".parse().unwrap(), None, t0).is_ok());
        let slow = Admission::new(0.5, 0.0);
        assert!(slow.admit(one, None, t0).is_ok(), "a rate under one a minute still lets one in");
        assert!(slow.admit(one, None, t0 + Duration::from_secs(60)).is_err());
        assert!(slow.admit(one, None, t0 + Duration::from_secs(121)).is_ok());
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let limits = Admission::new(600.0, 0.0);
        let t0 = Instant::now();
        for n in 0..(SWEEP_ABOVE as u32 + 10) {
            let at = t0 + Duration::from_millis(u64::from(n) * 20);
            assert!(limits.admit(IpAddr::from(n.to_be_bytes()), None, at).is_ok());
        }
        let kept = limits.state.lock().unwrap().0.table.len();
        assert!(kept < 1_000, "{kept} buckets kept");
    }
}
