//! [`Lifetime`]: how long a session may last and sit idle, and the server draining it for
//! shutdown. It keeps the session's time marks, announces an end ahead of time (a `warning`
//! event, which only Voice Live's dialect has), and says when the session is over; the session
//! then sends the `error` event [`Lifetime::error`] gives and [`crate::Output::Close`].

use crate::{Limits, SessionEnd};
use brazen_protocol::error::code;
use brazen_protocol::{ProtocolError, ServerEvent};
use std::time::{Duration, Instant};

/// How long before the maximum length its end is announced (at most half the length).
const LENGTH_NOTICE: Duration = Duration::from_secs(60);
/// How long before the idle timeout its end is announced (at most half the timeout).
const IDLE_NOTICE: Duration = Duration::from_secs(30);

/// A session's time marks and the ends it is heading for.
#[derive(Debug)]
pub(crate) struct Lifetime {
    /// When the session's end by length is announced, and when it comes (`None`: no limit).
    length: Option<(Instant, Instant)>,
    /// How long it may go idle (`None`: forever).
    idle: Option<Duration>,
    /// The last time something happened in it.
    active: Instant,
    /// The length's end was announced.
    length_announced: bool,
    /// The idle end was announced for this `active` mark (activity since makes it stale).
    idle_announced: Option<Instant>,
    /// The server is shutting down; the response in progress is cut off at this time.
    drain_deadline: Option<Instant>,
    /// How the session ended, once it has.
    ended: Option<SessionEnd>,
}

/// A limit as a duration, `None` when it is infinite (or not a positive number).
fn duration(ms: f64) -> Option<Duration> {
    (ms.is_finite() && ms > 0.0).then(|| Duration::from_secs_f64(ms / 1000.0))
}

impl Lifetime {
    /// A session opened at `now` under `limits`.
    pub(crate) fn new(limits: &Limits, now: Instant) -> Self {
        Lifetime {
            length: duration(limits.max_session_ms).map(|d| (now + d - LENGTH_NOTICE.min(d / 2), now + d)),
            idle: duration(limits.idle_timeout_ms),
            active: now,
            length_announced: false,
            idle_announced: None,
            drain_deadline: None,
            ended: None,
        }
    }

    /// Something happened in the session at `now`.
    pub(crate) fn touch(&mut self, now: Instant) {
        self.active = self.active.max(now);
    }

    /// The server began shutting down; the response in progress may run until `deadline`.
    pub(crate) fn drain(&mut self, deadline: Instant) {
        self.drain_deadline = Some(self.drain_deadline.map_or(deadline, |d| d.min(deadline)));
    }

    /// Whether the server is shutting down (no response may start).
    pub(crate) fn draining(&self) -> bool {
        self.drain_deadline.is_some()
    }

    /// How the session ended, if it has.
    pub(crate) fn ended(&self) -> Option<SessionEnd> {
        self.ended
    }

    /// Announces what is near and decides whether the session is over at `now`; `busy`: a
    /// response is in progress (a drain waits for it). Returns the end once, when it comes.
    pub(crate) fn poll(&mut self, now: Instant, busy: bool, emit: &mut impl FnMut(ServerEvent)) -> Option<SessionEnd> {
        if self.ended.is_some() {
            return None;
        }
        let end = if self.drain_deadline.is_some_and(|d| !busy || now >= d) {
            Some(SessionEnd::ShuttingDown)
        } else if self.length.is_some_and(|(_, at)| now >= at) {
            Some(SessionEnd::MaxLength)
        } else if self.idle.is_some_and(|idle| now >= self.active + idle) {
            Some(SessionEnd::Idle)
        } else {
            None
        };
        if end.is_some() {
            self.ended = end;
            return end;
        }
        if let Some((notice, expires)) = self.length
            && now >= notice
            && !self.length_announced
        {
            self.length_announced = true;
            let left = expires.saturating_duration_since(now);
            emit(ServerEvent::Warning {
                code: "session_ending",
                message: format!("The session reaches its maximum length in {} s and will then close.", left.as_secs()),
            });
        }
        if let Some(at) = self.idle_notice()
            && now >= at
            && self.idle_announced != Some(self.active)
        {
            self.idle_announced = Some(self.active);
            let left = self.idle.map_or(Duration::ZERO, |i| (self.active + i).saturating_duration_since(now));
            emit(ServerEvent::Warning {
                code: "session_idle",
                message: format!(
                    "Nothing has happened in the session for a while; it closes in {} s unless something does.",
                    left.as_secs()
                ),
            });
        }
        None
    }

    /// When the session's lifetime next needs a look: a notice, an end, or the drain deadline.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.ended.is_some() {
            return None;
        }
        let length = self.length.map(|(notice, expires)| if self.length_announced { expires } else { notice });
        let idle = match (self.idle, self.idle_announced == Some(self.active)) {
            (Some(idle), true) => Some(self.active + idle),
            (Some(_), false) => self.idle_notice(),
            (None, _) => None,
        };
        [length, idle, self.drain_deadline].into_iter().flatten().min()
    }

    fn idle_notice(&self) -> Option<Instant> {
        let idle = self.idle?;
        Some(self.active + idle - IDLE_NOTICE.min(idle / 2))
    }

    /// The `error` event's payload that tells the client why the session ended.
    pub(crate) fn error(end: SessionEnd, limits: &Limits) -> ProtocolError {
        let minutes = |ms: f64| {
            let m = ms / 60_000.0;
            match m {
                1.0 => "1 minute".to_owned(),
                m if m > 1.0 && m.fract() == 0.0 => format!("{m} minutes"),
                _ => format!("{} s", (ms / 1000.0).round()),
            }
        };
        match end {
            SessionEnd::MaxLength => ProtocolError::invalid(
                code::SESSION_EXPIRED,
                format!("Your session hit the maximum duration of {}.", minutes(limits.max_session_ms)),
            ),
            SessionEnd::Idle => ProtocolError::invalid(
                code::SESSION_IDLE,
                format!(
                    "The session was closed after {} without activity (no speech, events or responses).",
                    minutes(limits.idle_timeout_ms)
                ),
            ),
            SessionEnd::ShuttingDown => ProtocolError::server(
                code::SERVER_SHUTTING_DOWN,
                "The server is shutting down; reconnect to continue (another server may take the connection).",
            ),
        }
    }
}
