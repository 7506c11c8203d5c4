//! [`Timers`]: the session's named deadlines (quinn-proto's `TimerTable`): each part sets or
//! clears its own, and `poll_timeout` is the earliest.

use std::time::Instant;

/// A deadline the session keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Paced assistant audio may go out (the client's buffer drains under the lead).
    PacedAudio,
    /// A server-side tool call runs out of time.
    ToolDeadline,
    /// The response has been silent for the interim line's latency threshold.
    Interim,
    /// The session's length or idleness is to be announced or ends it, or a shutdown's
    /// deadline comes ([`crate::lifetime`]).
    Lifetime,
}

impl Timer {
    const COUNT: usize = 4;

    fn index(self) -> usize {
        self as usize
    }
}

/// When each [`Timer`] fires, if it is set.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    at: [Option<Instant>; Timer::COUNT],
}

impl Timers {
    /// Sets (`Some`) or clears (`None`) `timer`.
    pub(crate) fn set(&mut self, timer: Timer, at: Option<Instant>) {
        self.at[timer.index()] = at;
    }

    /// The earliest deadline set.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_set_timer_is_next() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        timers.set(Timer::ToolDeadline, Some(t0 + Duration::from_secs(5)));
        timers.set(Timer::PacedAudio, Some(t0 + Duration::from_millis(40)));
        assert_eq!(timers.next(), Some(t0 + Duration::from_millis(40)));
        timers.set(Timer::PacedAudio, None);
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(5)));
    }
}
