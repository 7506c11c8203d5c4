//! One avatar's audio and video on one clock.
//!
//! The stream plays the session's speech in real time: frame by frame of its audio codec (20 ms of
//! Opus, or 1024 samples of AAC) it takes the next queued audio (silence when there is none) and
//! encodes it; every video frame it draws
//! the character posed by the lip-sync at that frame's time and encodes it with H.264. Audio
//! sample `n` and a frame at `n / 48 kHz` s therefore show and say the same thing: phrases are
//! placed on the stream's clock where their audio lands in the queue. A cleared buffer (a
//! barge-in) empties the queue and the lip-sync together, so sound and mouth stop at the same
//! packet.

use crate::audio_codec::{AudioCodec, AudioEncoder};
use crate::h264::{EncodedFrame, H264Encoder, VideoSettings};
use crate::yuv::I420;
use brazen_audio::Resampler;
use brazen_avatar::character::{Look, Rgba};
use brazen_avatar::render::MOUTH_REGION;
use brazen_avatar::{Backdrop, LipSync, MouthSpot, Phone, PhotoRenderer, Renderer, Scene};
use std::collections::VecDeque;

/// The stream's audio rate.
pub const AUDIO_RATE: u32 = crate::audio_codec::RATE;
/// How long the queue must stay empty before the avatar counts as idle (gaps between phrases
/// are not the end of speaking), ms.
const IDLE_AFTER_MS: f64 = 300.0;
/// A lip-sync idle this long is dropped (its history is no longer needed), ms.
const FORGET_AFTER_MS: f64 = 2_000.0;

/// Who is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Face {
    /// A built-in (vector) character in this look.
    Character(Look),
    /// A photo avatar: a portrait (given later, [`AvatarStream::set_portrait`]) with its mouth
    /// here, placed by `scene`.
    Photo {
        /// Where the portrait's mouth is.
        mouth: MouthSpot,
        /// The scene controls.
        scene: Scene,
    },
}

/// How a stream looks.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSettings {
    /// Who is drawn.
    pub face: Face,
    /// The size of the whole picture.
    pub picture: (u32, u32),
    /// The part of it sent: top-left and bottom-right corners.
    pub crop: ((u32, u32), (u32, u32)),
    /// The background colour (alpha below 255: keyed out, see [`StreamSettings::key`]).
    pub background: Rgba,
    /// Video encoding.
    pub video: VideoSettings,
    /// Audio encoding.
    pub audio: AudioCodec,
    /// With a transparent background, send its alpha as a second picture below the first
    /// ([`I420::fill_with_alpha_below`]) instead of painting the key colour.
    pub alpha_below: bool,
    /// Seeds the idle motion (blinks, sway).
    pub seed: u64,
}

impl StreamSettings {
    /// The colour transparent pixels are painted with for a receiver to key out (the
    /// background's own colour at full opacity).
    pub fn key(&self) -> [u8; 3] {
        let [r, g, b, _] = self.background.0;
        [r, g, b]
    }
}

/// What the stream produced.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamOutput {
    /// A frame of audio starting at `at` (48 kHz samples since the stream started).
    Audio {
        /// One Opus packet or AAC access unit.
        data: Vec<u8>,
        /// Stream time (48 kHz).
        at: u64,
        /// Samples it holds.
        samples: u32,
    },
    /// A video frame shown at `at` (90 kHz ticks since the stream started).
    Video {
        /// The encoded picture.
        frame: EncodedFrame,
        /// Stream time (90 kHz).
        at: u64,
    },
    /// Speech started playing at `at_ms` (ms since the stream started).
    Speaking {
        /// Stream time.
        at_ms: u64,
    },
    /// Speech stopped playing at `at_ms`.
    Idle {
        /// Stream time.
        at_ms: u64,
    },
}

/// The drawing of either kind of face.
enum Drawing {
    Character(Renderer),
    Photo(Box<PhotoRenderer>),
}

/// One avatar's audio and video.
pub struct AvatarStream {
    drawing: Drawing,
    picture: I420,
    key: [u8; 3],
    alpha_below: bool,
    video: H264Encoder,
    fps: f64,
    audio_codec: AudioCodec,
    audio_encoder: AudioEncoder,
    resampler: Option<(u32, Resampler)>,
    lipsync: LipSync,
    seed: u64,
    /// Speech not yet played, at [`AUDIO_RATE`].
    queue: VecDeque<i16>,
    /// Audio samples played (the clock).
    played: u64,
    /// Video frames made.
    frames: u64,
    speaking: bool,
    /// Stream time the queue ran dry at, ms.
    quiet_since_ms: f64,
    /// Stream time of the end of the last speech played, ms.
    last_speech_ms: f64,
}

impl AvatarStream {
    /// A silent, idle avatar.
    pub fn new(settings: &StreamSettings) -> Result<AvatarStream, String> {
        let drawing = match &settings.face {
            Face::Character(look) => Drawing::Character(Renderer::cropped(
                look.clone(),
                settings.picture,
                settings.crop,
                settings.background,
            )?),
            Face::Photo { mouth, scene } => Drawing::Photo(Box::new(PhotoRenderer::new(
                settings.picture,
                settings.crop,
                settings.background,
                *mouth,
                *scene,
            )?)),
        };
        let (w, h) = match &drawing {
            Drawing::Character(r) => r.size(),
            Drawing::Photo(r) => r.size(),
        };
        let alpha_below = settings.alpha_below && settings.background.0[3] < 255;
        let picture = I420::new(w as usize, if alpha_below { 2 * h as usize } else { h as usize })?;
        let video = H264Encoder::new(settings.video)?;
        let audio_encoder = AudioEncoder::new(settings.audio)?;
        Ok(AvatarStream {
            drawing,
            picture,
            key: settings.key(),
            alpha_below,
            video,
            fps: f64::from(settings.video.fps),
            audio_codec: settings.audio,
            audio_encoder,
            resampler: None,
            lipsync: LipSync::new(settings.seed, 0.0),
            seed: settings.seed,
            queue: VecDeque::new(),
            played: 0,
            frames: 0,
            speaking: false,
            quiet_since_ms: 0.0,
            last_speech_ms: 0.0,
        })
    }

    /// The size of the pictures drawn.
    pub fn size(&self) -> (u32, u32) {
        match &self.drawing {
            Drawing::Character(r) => r.size(),
            Drawing::Photo(r) => r.size(),
        }
    }

    /// The size of the pictures encoded (twice as tall with the alpha below).
    pub fn encoded_size(&self) -> (u32, u32) {
        let (w, h) = self.picture.size();
        (w as u32, h as u32)
    }

    /// Stream time of the next audio sample queued, ms.
    fn queue_end_ms(&self) -> f64 {
        (self.played + self.queue.len() as u64) as f64 * 1000.0 / f64::from(AUDIO_RATE)
    }

    /// The next audio queued starts a phrase of `duration_ms`, spoken as `phones`.
    pub fn phrase(&mut self, duration_ms: f64, phones: &[Phone]) {
        let at = self.queue_end_ms();
        self.lipsync.add_phrase(at, duration_ms, phones);
    }

    /// Queues speech (mono, at `rate`).
    pub fn audio(&mut self, samples: &[i16], rate: u32) {
        if samples.is_empty() || rate == 0 {
            return;
        }
        if self.resampler.as_ref().is_none_or(|(r, _)| *r != rate) {
            self.resampler = Some((rate, Resampler::causal(rate, AUDIO_RATE)));
        }
        let Some((_, resampler)) = self.resampler.as_mut() else { return };
        let mut out = Vec::with_capacity(samples.len() * AUDIO_RATE as usize / rate as usize + 16);
        resampler.process_i16(samples, &mut out);
        self.queue.extend(out);
        let end = self.queue_end_ms();
        self.lipsync.extend_audio(end);
    }

    /// Drops the speech not yet played, and its lip-sync: the next packet is silent and the
    /// next frame has the mouth at rest.
    pub fn clear(&mut self) {
        self.queue.clear();
        if let Some((_, r)) = self.resampler.as_mut() {
            r.reset();
        }
        self.lipsync = LipSync::new(self.seed, 0.0);
    }

    /// Milliseconds of speech queued.
    pub fn queued_ms(&self) -> f64 {
        self.queue.len() as f64 * 1000.0 / f64::from(AUDIO_RATE)
    }

    /// Stream time of the next audio packet, ms.
    pub fn audio_clock_ms(&self) -> f64 {
        self.played as f64 * 1000.0 / f64::from(AUDIO_RATE)
    }

    /// How long a video frame lasts, ms.
    pub fn frame_interval_ms(&self) -> f64 {
        1000.0 / self.fps
    }

    /// Stream time of the next video frame, ms.
    pub fn video_clock_ms(&self) -> f64 {
        self.frames as f64 * 1000.0 / self.fps
    }

    /// The audio codec's configuration for a decoder (AAC's AudioSpecificConfig; empty for
    /// Opus).
    pub fn audio_config(&self) -> Vec<u8> {
        self.audio_encoder.config()
    }

    /// The next frame of audio, and the speaking edge it makes, if any.
    pub fn next_audio(&mut self, out: &mut Vec<StreamOutput>) -> Result<(), String> {
        let at = self.played;
        let frame = self.audio_codec.frame_samples();
        let mut pcm = vec![0i16; frame];
        let n = self.queue.len().min(frame);
        for (dst, src) in pcm.iter_mut().zip(self.queue.drain(..n)) {
            *dst = src;
        }
        let now_ms = self.audio_clock_ms();
        if n > 0 {
            self.last_speech_ms = now_ms + n as f64 * 1000.0 / f64::from(AUDIO_RATE);
            self.quiet_since_ms = self.last_speech_ms;
            if !self.speaking {
                self.speaking = true;
                out.push(StreamOutput::Speaking { at_ms: now_ms as u64 });
            }
        } else {
            let quiet_ms = now_ms + frame as f64 * 1000.0 / f64::from(AUDIO_RATE) - self.quiet_since_ms;
            if self.speaking && quiet_ms >= IDLE_AFTER_MS {
                self.speaking = false;
                out.push(StreamOutput::Idle { at_ms: self.last_speech_ms as u64 });
            }
            if !self.speaking && now_ms - self.lipsync.end_ms() > FORGET_AFTER_MS && self.lipsync.end_ms() > 0.0 {
                self.lipsync = LipSync::new(self.seed, 0.0);
            }
        }
        let data = self.audio_encoder.encode(&pcm)?;
        self.played += frame as u64;
        out.push(StreamOutput::Audio { data, at, samples: frame as u32 });
        Ok(())
    }

    /// The next video frame: the character posed for its time.
    pub fn next_video(&mut self, out: &mut Vec<StreamOutput>) -> Result<(), String> {
        let t_ms = self.video_clock_ms();
        let pose = self.lipsync.frame_at(t_ms);
        let rgba = match &mut self.drawing {
            Drawing::Character(r) => r.render(&pose),
            Drawing::Photo(r) => r.render(&pose),
        };
        if self.alpha_below {
            self.picture.fill_with_alpha_below(rgba)?;
        } else {
            self.picture.fill_from_rgba(rgba, self.key)?;
        }
        let frame = self.video.encode(&self.picture)?;
        let at = (self.frames as f64 * 90_000.0 / self.fps).round() as u64;
        self.frames += 1;
        out.push(StreamOutput::Video { frame, at });
        Ok(())
    }

    /// Skips the video frames due before `t_ms` of stream time (the driver fell behind).
    pub fn skip_video_until(&mut self, t_ms: f64) {
        let due = (t_ms * self.fps / 1000.0).ceil() as u64;
        self.frames = self.frames.max(due);
    }

    /// The viseme being spoken at stream time `t_ms`, if any (for measuring lip-sync).
    pub fn viseme_at(&self, t_ms: f64) -> Option<u8> {
        self.lipsync.viseme_at(t_ms)
    }

    /// Makes the next frame a key frame.
    pub fn force_key_frame(&mut self) {
        self.video.force_key_frame();
    }

    /// Draws `backdrop` behind the character from the next frame on.
    pub fn set_backdrop(&mut self, backdrop: &Backdrop) {
        match &mut self.drawing {
            Drawing::Character(r) => r.set_backdrop(backdrop),
            Drawing::Photo(r) => r.set_backdrop(backdrop),
        }
    }

    /// A photo avatar's portrait (a character ignores it).
    pub fn set_portrait(&mut self, portrait: &Backdrop) {
        if let Drawing::Photo(r) = &mut self.drawing {
            r.set_portrait(portrait);
        }
    }

    /// A photo avatar's new scene controls (a character ignores them).
    pub fn set_scene(&mut self, scene: Scene) {
        if let Drawing::Photo(r) = &mut self.drawing {
            r.set_scene(scene);
        }
    }

    /// Where the mouth is in the pictures sent, pixels (x, y, width, height); nothing before a
    /// photo avatar's portrait arrives.
    pub fn mouth_region_px(&self) -> (u32, u32, u32, u32) {
        match &self.drawing {
            Drawing::Character(r) => r.region_px(MOUTH_REGION),
            Drawing::Photo(r) => r.mouth_region_px().unwrap_or_default(),
        }
    }

    /// The last picture drawn: RGBA, premultiplied.
    pub fn pixels(&self) -> &[u8] {
        match &self.drawing {
            Drawing::Character(r) => r.pixels(),
            Drawing::Photo(r) => r.pixels(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use brazen_avatar::character::Catalog;

    /// A small cropped stream of a built-in character (shared with the other modules' tests).
    pub(crate) fn settings() -> StreamSettings {
        StreamSettings {
            face: Face::Character(Catalog::built_in().choose("ava", None).unwrap().look),
            picture: (320, 240),
            crop: ((40, 0), (280, 240)),
            background: Rgba([0, 255, 0, 255]),
            video: VideoSettings::default(),
            audio: AudioCodec::Opus,
            alpha_below: false,
            seed: 1,
        }
    }

    fn phones() -> Vec<Phone> {
        // "ma ma" : m 0–80, a 80–200, m 200–280, a 280–400.
        [('m', 0.0, 80.0), ('a', 80.0, 120.0), ('m', 200.0, 80.0), ('a', 280.0, 120.0)]
            .iter()
            .map(|&(symbol, start_ms, duration_ms)| Phone { symbol, start_ms, duration_ms })
            .collect()
    }

    #[test]
    fn speech_plays_in_order_then_the_avatar_goes_idle() {
        let mut s = AvatarStream::new(&settings()).unwrap();
        assert_eq!(s.size(), (240, 240));
        let mut out = Vec::new();
        // 100 ms of silence first: speech queued now starts at 100 ms of stream time.
        for _ in 0..5 {
            s.next_audio(&mut out).unwrap();
        }
        s.phrase(400.0, &phones());
        s.audio(&tone(400), 24_000);
        assert!((s.queued_ms() - 400.0).abs() < 1.0);
        assert_eq!(s.viseme_at(150.0), Some(21), "m at 100–180 ms of stream time");
        assert_eq!(s.viseme_at(250.0), Some(2), "a");
        for _ in 0..40 {
            s.next_audio(&mut out).unwrap();
        }
        let edges: Vec<&StreamOutput> = out.iter().filter(|o| !matches!(o, StreamOutput::Audio { .. })).collect();
        assert_eq!(edges, [&StreamOutput::Speaking { at_ms: 100 }, &StreamOutput::Idle { at_ms: 500 }]);
        let times: Vec<u64> =
            out.iter().filter_map(|o| if let StreamOutput::Audio { at, .. } = o { Some(*at) } else { None }).collect();
        assert_eq!(times.len(), 45);
        assert!(times.windows(2).all(|w| w[1] - w[0] == 960));
    }

    /// `ms` of a 440 Hz tone at 24 kHz.
    fn tone(ms: usize) -> Vec<i16> {
        (0..ms * 24).map(|i| (8000.0 * (i as f64 * 440.0 * std::f64::consts::TAU / 24_000.0).sin()) as i16).collect()
    }

    #[test]
    fn clearing_stops_the_sound_and_the_mouth_at_once() {
        let mut s = AvatarStream::new(&settings()).unwrap();
        s.phrase(400.0, &phones());
        s.audio(&tone(400), 24_000);
        let mut out = Vec::new();
        s.next_audio(&mut out).unwrap();
        s.clear();
        assert_eq!(s.queued_ms(), 0.0);
        assert_eq!(s.viseme_at(100.0), None, "the lip-sync is gone");
        for _ in 0..5 {
            s.next_audio(&mut out).unwrap();
        }
        // Decoded, the packet before the clear is the tone; the codec's delay rings out in the
        // next one; from 20 ms after the clear (less than a video frame) it is silence.
        let mut decoder = opus::Decoder::new(AUDIO_RATE, opus::Channels::Mono).unwrap();
        let peaks: Vec<i16> = out
            .iter()
            .filter_map(|o| if let StreamOutput::Audio { data, .. } = o { Some(data) } else { None })
            .map(|data| {
                let mut pcm = [0i16; 960];
                let n = decoder.decode(data, &mut pcm, false).unwrap();
                pcm[..n].iter().map(|s| s.saturating_abs()).max().unwrap_or(0)
            })
            .collect();
        assert!(peaks[0] > 2_000, "{peaks:?}");
        assert!(peaks[2] < 500 && peaks[3..].iter().all(|&p| p < 50), "silence after the clear: {peaks:?}");
    }

    #[test]
    fn video_frames_follow_the_clock_and_the_mouth_moves_only_with_speech() {
        let mut s = AvatarStream::new(&settings()).unwrap();
        let mut out = Vec::new();
        s.phrase(400.0, &phones());
        s.audio(&tone(400), 24_000);
        // Frames at 0, 40, … 760 ms: speech is 0–400 ms.
        let mut mouths = Vec::new();
        let region = s.mouth_region_px();
        for _ in 0..20 {
            s.next_video(&mut out).unwrap();
            let (x, y, w, h) = region;
            let px = s.pixels();
            let (width, _) = s.size();
            let mut mouth = Vec::new();
            for row in y..y + h {
                let start = ((row * width + x) * 4) as usize;
                mouth.extend_from_slice(&px[start..start + (w * 4) as usize]);
            }
            mouths.push(mouth);
        }
        let frames: Vec<(u64, bool)> = out
            .iter()
            .filter_map(|o| if let StreamOutput::Video { frame, at } = o { Some((*at, frame.key)) } else { None })
            .collect();
        assert_eq!(frames.len(), 20);
        assert!(frames[0].1, "the first frame is a key frame");
        assert!(frames.windows(2).all(|w| w[1].0 - w[0].0 == 3_600), "25 fps on the 90 kHz clock");
        // How much the mouth changes from one frame to the next (idle sway moves it a little).
        let change =
            |i: usize| -> u64 { mouths[i].iter().zip(&mouths[i + 1]).map(|(a, b)| u64::from(a.abs_diff(*b))).sum() };
        let speaking: u64 = (0..9).map(change).max().unwrap();
        let idle: u64 = (14..19).map(change).max().unwrap();
        assert!(speaking > 20 * idle.max(1), "the mouth moves while speaking ({speaking}) and rests after ({idle})");
    }
}
