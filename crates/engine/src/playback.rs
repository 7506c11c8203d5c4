//! Where the client is in playing the assistant's audio, and cutting a transcript at a point of
//! the audio.
//!
//! The client plays audio as it arrives, in real time, one chunk after another. So after chunks
//! of `d₁, d₂, …` ms arrive at `t₁, t₂, …`, playback ends at `e = max(e_prev, tᵢ) + dᵢ`, and at
//! time `now` the client has played `sent − max(0, e − now)` ms. A barge-in truncates the item
//! there: the last sample the client could have played.

use std::time::{Duration, Instant};

/// One phrase of assistant audio on the item's audio clock.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Where its audio starts, in ms of the item's audio.
    pub start_ms: f64,
    /// How long its audio is, in ms (grows as chunks arrive).
    pub duration_ms: f64,
    /// What it says.
    pub text: String,
}

/// The transcript of the audio up to `end_ms`: whole phrases that end before it, and the
/// proportional share of words of the phrase it cuts.
pub fn transcript_until(segments: &[Segment], end_ms: f64) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in segments {
        if s.start_ms >= end_ms {
            break;
        }
        let words: Vec<&str> = s.text.split_whitespace().collect();
        let share = if s.duration_ms <= 0.0 { 1.0 } else { ((end_ms - s.start_ms) / s.duration_ms).min(1.0) };
        let keep = (words.len() as f64 * share).floor() as usize;
        out.extend(&words[..keep]);
    }
    out.join(" ")
}

/// Playback of one assistant item's audio on the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Playback {
    /// The response that produced it.
    pub response_id: String,
    /// The assistant item.
    pub item_id: String,
    /// The audio content part.
    pub content_index: u32,
    sent_ms: f64,
    play_end: Option<Instant>,
}

impl Playback {
    /// Nothing sent yet.
    pub fn new(response_id: String, item_id: String, content_index: u32) -> Self {
        Playback { response_id, item_id, content_index, sent_ms: 0.0, play_end: None }
    }

    /// Records a chunk of `ms` milliseconds sent at `now`; returns when the client starts
    /// playing it.
    pub fn sent(&mut self, ms: f64, now: Instant) -> Instant {
        let start = self.play_end.map_or(now, |e| e.max(now));
        self.play_end = Some(start + Duration::from_secs_f64(ms / 1000.0));
        self.sent_ms += ms;
        start
    }

    /// Milliseconds of audio sent.
    pub fn sent_ms(&self) -> f64 {
        self.sent_ms
    }

    /// Milliseconds the client has played by `now`.
    pub fn played_ms(&self, now: Instant) -> f64 {
        let ahead = self.play_end.map_or(0.0, |e| e.saturating_duration_since(now).as_secs_f64() * 1000.0);
        (self.sent_ms - ahead).max(0.0)
    }

    /// Milliseconds sent but not yet played at `now`: how far the client's buffer runs ahead.
    pub fn ahead_ms(&self, now: Instant) -> f64 {
        self.sent_ms - self.played_ms(now)
    }

    /// When the client's buffer will have drained to `lead_ms`, if it is above that now.
    pub fn drains_to(&self, lead_ms: f64) -> Option<Instant> {
        let end = self.play_end?;
        Some(end.checked_sub(Duration::from_secs_f64(lead_ms / 1000.0)).unwrap_or(end))
    }

    /// Whether the client is still playing at `now`.
    pub fn is_playing(&self, now: Instant) -> bool {
        self.play_end.is_some_and(|e| e > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn played_time_follows_real_time_and_waits_for_late_chunks() {
        let t0 = Instant::now();
        let ms = |x: u64| t0 + Duration::from_millis(x);
        let mut p = Playback::new("r".into(), "i".into(), 0);
        p.sent(200.0, ms(0)); // plays 0..200
        p.sent(200.0, ms(10)); // queued: plays 200..400
        assert!((p.played_ms(ms(150)) - 150.0).abs() < 0.01);
        assert!((p.played_ms(ms(390)) - 390.0).abs() < 0.01);
        assert!(p.is_playing(ms(399)));
        // A gap: playback runs dry at 400; the next chunk arrives at 1000 ms.
        assert!((p.played_ms(ms(999)) - 400.0).abs() < 0.01);
        p.sent(100.0, ms(1_000)); // plays 1000..1100
        assert!((p.played_ms(ms(1_050)) - 450.0).abs() < 0.01);
        assert!(!p.is_playing(ms(1_100)));
        assert_eq!(p.played_ms(ms(5_000)), 500.0);
    }

    #[test]
    fn transcript_is_cut_in_proportion_to_the_audio() {
        let segs = vec![
            Segment { start_ms: 0.0, duration_ms: 1_000.0, text: "one two three four".into() },
            Segment { start_ms: 1_000.0, duration_ms: 1_000.0, text: "five six".into() },
        ];
        assert_eq!(transcript_until(&segs, 500.0), "one two");
        assert_eq!(transcript_until(&segs, 1_000.0), "one two three four");
        assert_eq!(transcript_until(&segs, 1_500.0), "one two three four five");
        assert_eq!(transcript_until(&segs, 9_000.0), "one two three four five six");
        assert_eq!(transcript_until(&segs, 0.0), "");
    }
}
