//! [`Flood`]: token-bucket control of how many client events a session accepts.

use crate::Limits;
use brazen_protocol::ProtocolError;
use brazen_protocol::error::code;
use std::time::Instant;

/// A token bucket refilled at [`Limits::events_per_second`] up to [`Limits::burst`].
pub struct Flood {
    per_second: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
    /// When the last `rate_limit_exceeded` error was sent.
    warned_at: Option<Instant>,
}

/// Whether one client event gets in.
#[derive(Debug, PartialEq)]
pub enum Admit {
    /// Handle it.
    Yes,
    /// Drop it silently (the client was told less than a second ago).
    Drop,
    /// Drop it and send this error (at most one a second, so the answer to a flood is not a
    /// flood).
    DropWithError(ProtocolError),
}

impl Flood {
    /// A full bucket at `now`.
    pub fn new(limits: &Limits, now: Instant) -> Self {
        Flood {
            per_second: limits.events_per_second,
            burst: limits.burst,
            tokens: limits.burst,
            at: now,
            warned_at: None,
        }
    }

    /// Takes a token for one event at `now`, if there is one.
    pub fn admit(&mut self, now: Instant) -> Admit {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admit::Yes;
        }
        if self.warned_at.is_some_and(|t| now.saturating_duration_since(t).as_secs_f64() < 1.0) {
            return Admit::Drop;
        }
        self.warned_at = Some(now);
        Admit::DropWithError(ProtocolError::invalid(
            code::RATE_LIMIT_EXCEEDED,
            format!(
                "Too many events: the limit is {} a second (bursts of {}); events are being dropped.",
                self.per_second, self.burst
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn flood(now: Instant) -> Flood {
        Flood::new(&Limits { events_per_second: 10.0, burst: 3.0, ..Limits::default() }, now)
    }

    #[test]
    fn a_burst_gets_in_then_one_error_a_second() {
        let t0 = Instant::now();
        let mut f = flood(t0);
        for _ in 0..3 {
            assert_eq!(f.admit(t0), Admit::Yes);
        }
        assert!(matches!(f.admit(t0), Admit::DropWithError(e) if e.code == code::RATE_LIMIT_EXCEEDED));
        assert_eq!(f.admit(t0), Admit::Drop);
        assert_eq!(f.admit(t0 + Duration::from_millis(50)), Admit::Drop);
        assert!(matches!(f.admit(t0 + Duration::from_millis(1050)), Admit::Yes));
    }

    #[test]
    fn tokens_come_back_at_the_rate_up_to_the_burst() {
        let t0 = Instant::now();
        let mut f = flood(t0);
        for _ in 0..3 {
            f.admit(t0);
        }
        // 100 ms at 10 a second is one token.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(f.admit(t1), Admit::Yes);
        assert_ne!(f.admit(t1), Admit::Yes);
        // A long quiet spell refills only up to the burst.
        let t2 = t1 + Duration::from_secs(60);
        let admitted = (0..10).filter(|_| f.admit(t2) == Admit::Yes).count();
        assert_eq!(admitted, 3);
    }
}
