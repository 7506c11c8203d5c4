//! Motion that makes a face alive when it is not talking and while it talks: blinks at
//! irregular intervals, a slow breathing sway of the head, a drifting gaze. Deterministic for a
//! seed, a pure function of time (ms on any clock).

use crate::blendshape::{Frame, at};

/// Shortest and longest time between two blinks, ms.
const BLINK_EVERY_MS: (f64, f64) = (2_200.0, 5_800.0);
/// How long the lids take to close and to open again, ms.
const BLINK_CLOSE_MS: f64 = 70.0;
const BLINK_OPEN_MS: f64 = 120.0;

/// Idle motion for one face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idle {
    seed: u64,
}

/// A number in [0, 1) from a seed and an index (splitmix64).
fn unit(seed: u64, n: u64) -> f64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl Idle {
    /// Idle motion that `seed` makes its own.
    pub fn new(seed: u64) -> Idle {
        Idle { seed }
    }

    /// How closed the lids are at `t_ms` (0 open, 1 shut).
    pub fn blink(&self, t_ms: f64) -> f32 {
        if t_ms < 0.0 {
            return 0.0;
        }
        // Blink n starts near n·mean (−100 … +1,700 ms); they are 2.2–5.8 s apart, so only the
        // last one started before `t_ms` can matter: step down from the first candidate after.
        let mean = (BLINK_EVERY_MS.0 + BLINK_EVERY_MS.1) / 2.0;
        let mut n = (t_ms / mean) as u64 + 1;
        let start_of = |n: u64| -> f64 {
            // Deterministic: blink n at n·mean plus a jitter of up to ± half the spread.
            let spread = BLINK_EVERY_MS.1 - BLINK_EVERY_MS.0;
            n as f64 * mean + (unit(self.seed, n) - 0.5) * spread * 0.5 + 800.0
        };
        while n > 0 && start_of(n) > t_ms {
            n -= 1;
        }
        let since = t_ms - start_of(n);
        let shut = if since < 0.0 {
            0.0
        } else if since < BLINK_CLOSE_MS {
            since / BLINK_CLOSE_MS
        } else if since < BLINK_CLOSE_MS + BLINK_OPEN_MS {
            1.0 - (since - BLINK_CLOSE_MS) / BLINK_OPEN_MS
        } else {
            0.0
        };
        shut as f32
    }

    /// Adds the idle motion at `t_ms` to `frame`.
    pub fn apply(&self, t_ms: f64, frame: &mut Frame) {
        let s = t_ms / 1000.0;
        let phase = unit(self.seed, u64::MAX) * std::f64::consts::TAU;
        let blink = self.blink(t_ms);
        frame[at::EYE_BLINK_LEFT] = frame[at::EYE_BLINK_LEFT].max(blink);
        frame[at::EYE_BLINK_RIGHT] = frame[at::EYE_BLINK_RIGHT].max(blink);
        // Breathing sway of the head (two slow periods so it never looks looped).
        let sway = 0.03 * (std::f64::consts::TAU * s / 7.3 + phase).sin()
            + 0.015 * (std::f64::consts::TAU * s / 3.1 + 2.0 * phase).sin();
        frame[at::HEAD_ROLL] = (frame[at::HEAD_ROLL] as f64 + sway).clamp(-1.0, 1.0) as f32;
        // The gaze drifts a little left and right.
        let gaze = 0.08 * (std::f64::consts::TAU * s / 5.7 + 3.0 * phase).sin();
        let (out_left, in_right) = if gaze > 0.0 { (gaze, gaze) } else { (0.0, 0.0) };
        let (in_left, out_right) = if gaze < 0.0 { (-gaze, -gaze) } else { (0.0, 0.0) };
        frame[at::EYE_LOOK_OUT_LEFT] += out_left as f32;
        frame[at::EYE_LOOK_IN_RIGHT] += in_right as f32;
        frame[at::EYE_LOOK_IN_LEFT] += in_left as f32;
        frame[at::EYE_LOOK_OUT_RIGHT] += out_right as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eyes_blink_every_few_seconds_and_briefly() {
        let idle = Idle::new(7);
        let shut: Vec<bool> = (0..60_000).step_by(10).map(|t| idle.blink(t as f64) > 0.9).collect();
        let blinks = shut.windows(2).filter(|w| !w[0] && w[1]).count();
        assert!((10..=27).contains(&blinks), "{blinks} blinks in a minute");
        let closed_ms = shut.iter().filter(|s| **s).count() * 10;
        assert!(closed_ms < blinks * 60, "each blink is brief: {closed_ms} ms shut in all");
        assert_ne!(
            (0..20_000).step_by(10).map(|t| idle.blink(t as f64) > 0.5).collect::<Vec<_>>(),
            (0..20_000).step_by(10).map(|t| Idle::new(8).blink(t as f64) > 0.5).collect::<Vec<_>>(),
            "another seed blinks at other times"
        );
    }

    #[test]
    fn lids_move_smoothly_through_every_blink() {
        for seed in 0..10 {
            let idle = Idle::new(seed);
            let lids: Vec<f32> = (0..60_000).step_by(10).map(|t| idle.blink(t as f64)).collect();
            let jump = lids.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
            assert!(jump < 0.2, "seed {seed}: the lid jumps by {jump} in 10 ms");
        }
    }

    #[test]
    fn the_head_sways_gently() {
        let idle = Idle::new(1);
        let rolls: Vec<f32> = (0..200)
            .map(|i| {
                let mut f = [0.0; crate::blendshape::COUNT];
                idle.apply(i as f64 * 100.0, &mut f);
                f[at::HEAD_ROLL]
            })
            .collect();
        let (lo, hi) = rolls.iter().fold((f32::MAX, f32::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
        assert!(hi - lo > 0.02 && hi.abs() < 0.1 && lo.abs() < 0.1, "{lo}..{hi}");
        assert!(rolls.windows(2).all(|w| (w[1] - w[0]).abs() < 0.01), "smooth");
    }
}
