//! A response's lip-sync on its audio clock (ms from the start of the response's audio).
//!
//! Phrases are added as the voice times them ([`LipSync::add_phrase`]); viseme events and
//! blendshape frames are then taken as the audio they belong to is released
//! ([`LipSync::take_visemes`], [`LipSync::take_frames`]), so they stop exactly where the audio
//! stops at a barge-in.
//!
//! Frames blend every viseme near their time, each weighted by its dominance and by how far
//! the frame is from it (a Cohen–Massaro style co-articulation model): the mouth moves through
//! shapes instead of snapping, closures (p b m, f v) are still reached, and pauses relax it.
//! Stressed syllables lift the brows; idle motion ([`crate::idle`]) runs underneath.

use crate::blendshape::{self, COUNT, Frame, at};
use crate::idle::Idle;
use crate::viseme::{self, SILENCE, Sound};

/// Blendshape frames per second (Azure's rate).
pub const FPS: f64 = 60.0;
/// How far a viseme reaches into its neighbours' time, ms (the width of its weight's
/// Gaussian fall-off outside its own span).
const REACH_MS: f64 = 40.0;
/// The weight of the mouth at rest, everywhere: far from any viseme the mouth relaxes.
const REST_WEIGHT: f32 = 0.02;
/// How long brows stay lifted around a stressed syllable, ms.
const BROW_MS: f64 = 220.0;

pub use brazen_providers::Phone;

/// A viseme and when it starts on the response's audio clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisemeEvent {
    /// ms from the start of the response's audio.
    pub audio_offset_ms: u64,
    /// Azure viseme id (0–21).
    pub viseme_id: u8,
}

/// A stretch of one mouth shape.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    start_ms: f64,
    end_ms: f64,
    viseme: u8,
    stressed: bool,
}

/// The lip-sync of one response.
#[derive(Debug, Clone)]
pub struct LipSync {
    segments: Vec<Segment>,
    /// Where the audio known so far ends, ms.
    end_ms: f64,
    /// Viseme events handed out (an index into `segments`' events).
    visemes_taken: usize,
    /// Frames handed out.
    frames_taken: usize,
    /// Where the response's clock sits on the idle motion's clock.
    idle_offset_ms: f64,
    idle: Idle,
}

impl LipSync {
    /// An empty timeline; idle motion from `seed`, its clock `idle_offset_ms` ahead of the
    /// response's (so blinks carry on from before the response).
    pub fn new(seed: u64, idle_offset_ms: f64) -> LipSync {
        LipSync {
            segments: Vec::new(),
            end_ms: 0.0,
            visemes_taken: 0,
            frames_taken: 0,
            idle_offset_ms,
            idle: Idle::new(seed),
        }
    }

    /// Where the audio known so far ends (ms on the response clock).
    pub fn end_ms(&self) -> f64 {
        self.end_ms
    }

    /// Adds a phrase whose audio starts at `offset_ms` of the response's audio and lasts
    /// `duration_ms`, spoken as `phones`.
    pub fn add_phrase(&mut self, offset_ms: f64, duration_ms: f64, phones: &[Phone]) {
        let mut stress = false;
        let mut i = 0;
        let phrase_end = offset_ms + duration_ms;
        if phones.is_empty() {
            // No timing (a voice without phonemes): the mouth rests through the phrase's audio.
            self.push(Segment {
                start_ms: offset_ms,
                end_ms: phrase_end.max(offset_ms + 1.0),
                viseme: SILENCE,
                stressed: false,
            });
        }
        if offset_ms > self.end_ms + 1.0 {
            // A gap between phrases is a pause.
            self.push(Segment { start_ms: self.end_ms, end_ms: offset_ms, viseme: SILENCE, stressed: false });
        }
        while i < phones.len() {
            let p = &phones[i];
            let start = offset_ms + p.start_ms;
            let mut end = start + p.duration_ms;
            match viseme::sound(p.symbol) {
                Sound::Stress => stress = true,
                Sound::Modifier | Sound::WordBreak => self.extend_to(end),
                Sound::Pause => self.push(Segment { start_ms: start, end_ms: end, viseme: SILENCE, stressed: false }),
                Sound::Viseme(mut id) => {
                    if let Some(next) = phones.get(i + 1)
                        && let Some(d) = viseme::diphthong(p.symbol, next.symbol)
                    {
                        id = d;
                        end = offset_ms + next.start_ms + next.duration_ms;
                        i += 1;
                    }
                    let vowel = matches!(id, 1..=11);
                    self.push(Segment { start_ms: start, end_ms: end, viseme: id, stressed: stress && vowel });
                    if vowel {
                        stress = false;
                    }
                }
            }
            i += 1;
        }
        self.end_ms = self.end_ms.max(phrase_end);
        self.extend_to(phrase_end);
    }

    /// The audio now runs to `end_ms` (it may outlast the phonemes' timing by a few ms): the
    /// last shape holds until then.
    pub fn extend_audio(&mut self, end_ms: f64) {
        if end_ms > self.end_ms {
            self.end_ms = end_ms;
            self.extend_to(end_ms);
        }
    }

    /// Appends a segment, merging it into the last one when the shape is the same.
    fn push(&mut self, s: Segment) {
        if s.end_ms <= s.start_ms {
            return;
        }
        match self.segments.last_mut() {
            Some(last) if last.viseme == s.viseme && s.start_ms <= last.end_ms + 1.0 => {
                last.end_ms = last.end_ms.max(s.end_ms);
                last.stressed |= s.stressed;
            }
            _ => self.segments.push(s),
        }
    }

    /// Lets the last segment last until `end_ms` (marks and word breaks carry the sound on).
    fn extend_to(&mut self, end_ms: f64) {
        if let Some(last) = self.segments.last_mut() {
            last.end_ms = last.end_ms.max(end_ms);
        }
    }

    /// The viseme events not yet taken that start before `until_ms` (all of them with
    /// `f64::INFINITY`).
    pub fn take_visemes(&mut self, until_ms: f64) -> Vec<VisemeEvent> {
        let mut out = Vec::new();
        while let Some(s) = self.segments.get(self.visemes_taken) {
            if s.start_ms >= until_ms {
                break;
            }
            out.push(VisemeEvent { audio_offset_ms: s.start_ms.max(0.0).round() as u64, viseme_id: s.viseme });
            self.visemes_taken += 1;
        }
        out
    }

    /// The frames not yet taken whose time is before `until_ms` and within the audio known so
    /// far: the first one's index and the frames.
    pub fn take_frames(&mut self, until_ms: f64) -> (usize, Vec<Frame>) {
        let first = self.frames_taken;
        let until = until_ms.min(self.end_ms);
        let mut frames = Vec::new();
        while (self.frames_taken as f64) * 1000.0 / FPS < until {
            frames.push(self.frame_at(self.frames_taken as f64 * 1000.0 / FPS));
            self.frames_taken += 1;
        }
        (first, frames)
    }

    /// Frames taken so far.
    pub fn frames_taken(&self) -> usize {
        self.frames_taken
    }

    /// The face at `t_ms` on the response clock.
    pub fn frame_at(&self, t_ms: f64) -> Frame {
        let mut acc = [0.0f32; COUNT];
        let mut total = REST_WEIGHT;
        let mut brows = 0.0f32;
        // Segments are in time order; only those within reach matter.
        let from = self.segments.partition_point(|s| s.end_ms + 4.0 * REACH_MS < t_ms);
        // Past the audio known so far there is nothing to say: silence follows the last shape, so
        // the lips close as the sound stops rather than fading out on the rest weight alone.
        let after = (!self.segments.is_empty()).then_some(Segment {
            start_ms: self.end_ms,
            end_ms: f64::INFINITY,
            viseme: SILENCE,
            stressed: false,
        });
        let near = self.segments[from..].iter().take_while(|s| s.start_ms - 4.0 * REACH_MS <= t_ms);
        for s in near.chain(after.as_ref()) {
            let distance = if t_ms < s.start_ms {
                s.start_ms - t_ms
            } else if t_ms > s.end_ms {
                t_ms - s.end_ms
            } else {
                0.0
            };
            let w = blendshape::dominance(s.viseme) * (-(distance / REACH_MS).powi(2)).exp() as f32;
            if w < 1e-4 {
                continue;
            }
            let pose = blendshape::pose(s.viseme);
            for (a, p) in acc.iter_mut().zip(pose) {
                *a += w * p;
            }
            total += w;
            if s.stressed {
                let centre = (s.start_ms + s.end_ms) / 2.0;
                let lift = (-((t_ms - centre) / BROW_MS).powi(2)).exp() as f32;
                brows = brows.max(lift);
            }
        }
        let mut frame = acc.map(|a| a / total);
        frame[at::BROW_INNER_UP] += 0.3 * brows;
        frame[at::BROW_OUTER_UP_LEFT] += 0.2 * brows;
        frame[at::BROW_OUTER_UP_RIGHT] += 0.2 * brows;
        self.idle.apply(t_ms + self.idle_offset_ms, &mut frame);
        frame
    }

    /// The viseme (Azure id) whose span holds `t_ms`, if any.
    pub fn viseme_at(&self, t_ms: f64) -> Option<u8> {
        self.segments.iter().find(|s| s.start_ms <= t_ms && t_ms < s.end_ms).map(|s| s.viseme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "ˈhɛloʊ." as a voice might time it, starting with 50 ms of silence.
    fn hello() -> Vec<Phone> {
        let spans = [
            ('^', 50.0),
            ('ˈ', 5.0),
            ('h', 60.0),
            ('ɛ', 90.0),
            ('l', 70.0),
            ('o', 110.0),
            ('ʊ', 90.0),
            ('.', 120.0),
            ('$', 40.0),
        ];
        let mut t = 0.0;
        spans
            .iter()
            .map(|&(symbol, d)| {
                let p = Phone { symbol, start_ms: t, duration_ms: d };
                t += d;
                p
            })
            .collect()
    }

    #[test]
    fn visemes_follow_the_phonemes_in_order_and_time() {
        let mut ls = LipSync::new(1, 0.0);
        ls.add_phrase(0.0, 635.0, &hello());
        let v = ls.take_visemes(f64::INFINITY);
        let ids: Vec<u8> = v.iter().map(|e| e.viseme_id).collect();
        assert_eq!(ids, [0, 12, 4, 14, 8, 4, 0]);
        let offsets: Vec<u64> = v.iter().map(|e| e.audio_offset_ms).collect();
        assert_eq!(offsets, [0, 55, 115, 205, 275, 385, 475]);
        assert!(ls.take_visemes(f64::INFINITY).is_empty(), "each event once");
    }

    #[test]
    fn a_second_phrase_continues_the_clock() {
        let mut ls = LipSync::new(1, 0.0);
        ls.add_phrase(0.0, 635.0, &hello());
        ls.add_phrase(635.0, 635.0, &hello());
        let v = ls.take_visemes(f64::INFINITY);
        // The second phrase's silences merge with the first's end.
        let second_h = v.iter().filter(|e| e.viseme_id == 12).nth(1).unwrap();
        assert_eq!(second_h.audio_offset_ms, 635 + 55);
        assert!(v.windows(2).all(|w| w[0].audio_offset_ms < w[1].audio_offset_ms && w[0].viseme_id != w[1].viseme_id));
    }

    #[test]
    fn one_frame_per_sixtieth_of_a_second_of_audio() {
        for ms in [635.0, 1_000.0, 2_345.0] {
            let mut ls = LipSync::new(1, 0.0);
            ls.add_phrase(0.0, ms, &hello());
            let (first, frames) = ls.take_frames(f64::INFINITY);
            assert_eq!(first, 0);
            let expected = ms / 1000.0 * FPS;
            assert!((frames.len() as f64 - expected).abs() <= 1.0, "{} frames for {ms} ms", frames.len());
        }
    }

    #[test]
    fn frames_are_taken_as_the_audio_is_released_and_stop_with_it() {
        let mut ls = LipSync::new(1, 0.0);
        ls.add_phrase(0.0, 635.0, &hello());
        let (a, first) = ls.take_frames(200.0);
        let (b, second) = ls.take_frames(400.0);
        assert_eq!((a, b), (0, first.len()));
        assert_eq!(first.len(), 12, "frames at 0, 16.7 … 183.3 ms");
        assert_eq!(ls.frames_taken(), first.len() + second.len());
        // A barge-in at 400 ms: nothing more is taken, so what went out ends there.
        assert!(((ls.frames_taken() as f64) * 1000.0 / FPS - 400.0).abs() <= 1000.0 / FPS);
        // Frames are the same whether taken in pieces or at once.
        let mut whole = LipSync::new(1, 0.0);
        whole.add_phrase(0.0, 635.0, &hello());
        let (_, all) = whole.take_frames(400.0);
        assert_eq!(all, [first, second].concat());
    }

    #[test]
    fn the_mouth_moves_smoothly_and_reaches_its_shapes() {
        let mut ls = LipSync::new(1, 0.0);
        let phones: Vec<Phone> = [('^', 100.0), ('m', 90.0), ('ɑ', 160.0), ('p', 80.0), ('ɑ', 160.0), ('$', 200.0)]
            .iter()
            .scan(0.0, |t, &(symbol, d)| {
                let p = Phone { symbol, start_ms: *t, duration_ms: d };
                *t += d;
                Some(p)
            })
            .collect();
        ls.add_phrase(0.0, 790.0, &phones);
        let jaw = |t: f64| ls.frame_at(t)[at::JAW_OPEN];
        let press = |t: f64| ls.frame_at(t)[at::MOUTH_PRESS_LEFT];
        // Rest before speech, closed lips on m and p, open on ɑ.
        assert!(jaw(20.0) < 0.05, "{}", jaw(20.0));
        assert!(press(145.0) > 0.45 && jaw(145.0) < 0.1, "m: press {} jaw {}", press(145.0), jaw(145.0));
        assert!(jaw(270.0) > 0.55, "ɑ: {}", jaw(270.0));
        assert!(press(390.0) > 0.45 && jaw(390.0) < 0.15, "p: press {} jaw {}", press(390.0), jaw(390.0));
        assert!(jaw(780.0) < 0.05, "rest after speech: {}", jaw(780.0));
        // No snapping: from one 60 fps frame to the next the jaw moves by less than 0.2.
        let (_, frames) = ls.take_frames(f64::INFINITY);
        let steps: Vec<f32> = frames.windows(2).map(|w| (w[1][at::JAW_OPEN] - w[0][at::JAW_OPEN]).abs()).collect();
        assert!(steps.iter().all(|s| *s < 0.2), "largest step {:?}", steps.iter().cloned().fold(0.0, f32::max));
        // And it does move between shapes (co-articulation, not a held pose).
        assert!(steps.iter().filter(|s| **s > 0.01).count() > 10);
    }

    #[test]
    fn the_lips_close_as_the_sound_stops() {
        // A phrase that ends on an open vowel, with no silence phoneme after it.
        let mut ls = LipSync::new(1, 0.0);
        let phones = [
            Phone { symbol: 'm', start_ms: 0.0, duration_ms: 100.0 },
            Phone { symbol: 'ɑ', start_ms: 100.0, duration_ms: 200.0 },
        ];
        ls.add_phrase(0.0, 300.0, &phones);
        let jaw = |t: f64| ls.frame_at(t)[at::JAW_OPEN];
        assert!(jaw(250.0) > 0.5, "open on ɑ: {}", jaw(250.0));
        // About half closed as the audio ends, mostly closed 40 ms later, shut 80 ms later (a
        // mouth left to the rest weight alone would still be wide open at 40 ms).
        assert!((jaw(300.0) - jaw(250.0) / 2.0).abs() < 0.15, "at the end {} vs {}", jaw(300.0), jaw(250.0));
        assert!(jaw(340.0) < 0.4 * jaw(250.0), "40 ms after the sound: {}", jaw(340.0));
        assert!(jaw(380.0) < 0.05, "80 ms after the sound: {}", jaw(380.0));
    }

    #[test]
    fn stressed_syllables_lift_the_brows() {
        let mut ls = LipSync::new(1, 0.0);
        ls.add_phrase(0.0, 635.0, &hello());
        // The stressed vowel ɛ spans 115–205 ms.
        let brow = |t: f64| ls.frame_at(t)[at::BROW_INNER_UP];
        assert!(brow(160.0) > 0.25, "{}", brow(160.0));
        assert!(brow(160.0) > 3.0 * brow(600.0), "{} vs {}", brow(160.0), brow(600.0));
    }

    #[test]
    fn a_phrase_without_phonemes_rests_the_mouth() {
        let mut ls = LipSync::new(1, 0.0);
        ls.add_phrase(0.0, 635.0, &hello());
        ls.add_phrase(635.0, 0.0, &[]);
        ls.extend_audio(1_500.0);
        assert_eq!(ls.viseme_at(1_000.0), Some(SILENCE));
        assert!(ls.frame_at(1_200.0)[at::JAW_OPEN] < 0.02);
    }

    #[test]
    fn diphthongs_are_one_azure_viseme() {
        let mut ls = LipSync::new(1, 0.0);
        let phones = [
            Phone { symbol: 'a', start_ms: 0.0, duration_ms: 80.0 },
            Phone { symbol: 'ɪ', start_ms: 80.0, duration_ms: 70.0 },
        ];
        ls.add_phrase(0.0, 150.0, &phones);
        let v = ls.take_visemes(f64::INFINITY);
        assert_eq!(v, [VisemeEvent { audio_offset_ms: 0, viseme_id: 11 }]);
        assert_eq!(ls.viseme_at(120.0), Some(11));
    }
}
