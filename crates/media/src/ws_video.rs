//! An avatar over the session's WebSocket, without I/O: an [`AvatarStream`] with AAC audio, muxed
//! into fragmented MP4 ([`crate::fmp4`]) in real time, for `response.video.delta`.
//!
//! The stream's clock starts when the avatar starts. Each video frame, when its time comes, is
//! written as one fragment together with the audio frames made up to it, so a MediaSource player
//! gets a fragment every 40 ms. AAC's decoders lag its input by one priming frame; the video track
//! starts that much later (its first frame lasts longer), so picture and sound stay together.

use crate::audio_codec::AudioCodec;
use crate::fmp4::{AudioSample, Fmp4Writer, VideoSample};
use crate::stream::{AUDIO_RATE, AvatarStream, StreamOutput, StreamSettings};
use std::time::{Duration, Instant};

/// Most frames made in one go when the driver fell behind; older ones are skipped.
const MAX_CATCH_UP: u32 = 3;
/// The most bytes one `response.video.delta` carries before base64 (4 MiB frames are the Voice
/// Live SDKs' limit; base64 adds a third).
pub const MAX_CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// What the avatar produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsOutput {
    /// Bytes of the MP4 stream to append, in order (at most [`MAX_CHUNK_BYTES`]).
    Chunk(Vec<u8>),
    /// The avatar started speaking.
    Speaking,
    /// The avatar stopped speaking.
    Idle,
}

/// One avatar streamed as fragmented MP4.
pub struct WsAvatar {
    stream: AvatarStream,
    writer: Fmp4Writer,
    started: Instant,
    made: Vec<StreamOutput>,
    /// Whether a frame was written yet (the first one also covers AAC's priming).
    written: bool,
}

impl WsAvatar {
    /// An avatar drawn as `settings` say (its audio is AAC, and a transparent background's alpha
    /// goes below the picture, whatever they say), starting `now`.
    pub fn new(settings: &StreamSettings, now: Instant) -> Result<WsAvatar, String> {
        let settings = StreamSettings { audio: AudioCodec::AacLc, alpha_below: true, ..settings.clone() };
        let stream = AvatarStream::new(&settings)?;
        let writer = Fmp4Writer::new(stream.encoded_size(), AUDIO_RATE, &stream.audio_config())?;
        Ok(WsAvatar { stream, writer, started: now, made: Vec::new(), written: false })
    }

    /// Makes the media that is due at `now`: the bytes to send and the speaking edges come out.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<WsOutput>) -> Result<(), String> {
        let elapsed_ms = now.saturating_duration_since(self.started).as_secs_f64() * 1000.0;
        while self.stream.video_clock_ms() <= elapsed_ms {
            let frame_ms = self.stream.frame_interval_ms();
            // The audio up to the frame's end goes in its fragment.
            let frame_end_ms = self.stream.video_clock_ms() + frame_ms;
            while self.stream.audio_clock_ms() < frame_end_ms {
                self.stream.next_audio(&mut self.made)?;
            }
            self.stream.next_video(&mut self.made)?;
            // Far behind (a busy machine): the frame just made stays up until now, as in a
            // player that drops frames, rather than the picture falling behind the sound.
            if elapsed_ms - self.stream.video_clock_ms() > f64::from(MAX_CATCH_UP) * frame_ms {
                self.stream.skip_video_until(elapsed_ms);
            }
            self.write(out)?;
        }
        Ok(())
    }

    /// Holds the stream back by `by` (its consumer fell behind): nothing made meanwhile is
    /// skipped or crammed in afterwards; the picture and the speech just come that much later.
    pub fn delay(&mut self, by: Duration) {
        self.started += by;
    }

    /// When [`WsAvatar::tick`] is next due.
    pub fn deadline(&self) -> Instant {
        self.started + Duration::from_secs_f64(self.stream.video_clock_ms() / 1000.0)
    }

    /// The stream (to queue speech, clear it, or look at it).
    pub fn stream(&mut self) -> &mut AvatarStream {
        &mut self.stream
    }

    /// Writes what the stream made as one fragment, in chunks.
    fn write(&mut self, out: &mut Vec<WsOutput>) -> Result<(), String> {
        let (mut video, mut audio) = (Vec::new(), Vec::new());
        // The next frame's time ends this one.
        let next_at = (self.stream.video_clock_ms() * 90.0).round() as u64;
        for made in self.made.drain(..) {
            match made {
                StreamOutput::Audio { data, samples, .. } => audio.push(AudioSample { data, duration: samples }),
                StreamOutput::Video { frame, at } => {
                    let mut duration = next_at.saturating_sub(at);
                    if !self.written {
                        duration += AudioCodec::AacLc.delay_samples() * 90_000 / u64::from(AUDIO_RATE);
                    }
                    let duration = u32::try_from(duration).map_err(|_| "a video frame lasts too long".to_owned())?;
                    video.push(VideoSample { annex_b: frame.data, duration, key: frame.key });
                }
                StreamOutput::Speaking { .. } => out.push(WsOutput::Speaking),
                StreamOutput::Idle { .. } => out.push(WsOutput::Idle),
            }
        }
        let bytes = self.writer.fragment(&video, &audio)?;
        if !bytes.is_empty() {
            self.written = true;
        }
        out.extend(bytes.chunks(MAX_CHUNK_BYTES).map(|c| WsOutput::Chunk(c.to_vec())));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::tests::settings;
    use brazen_avatar::Phone;

    /// The top-level MP4 boxes of `bytes`: (type, size).
    fn boxes(bytes: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= bytes.len() {
            let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            out.push((String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned(), size));
            at += size.max(8);
        }
        out
    }

    #[test]
    fn a_second_of_avatar_is_an_init_segment_then_a_fragment_per_frame() {
        let t0 = Instant::now();
        let mut avatar = WsAvatar::new(&settings(), t0).unwrap();
        let phones = [Phone { symbol: 'a', start_ms: 0.0, duration_ms: 400.0 }];
        avatar.stream().phrase(400.0, &phones);
        avatar.stream().audio(&vec![3000i16; 24_000 * 2 / 5], 24_000);
        let mut out = Vec::new();
        for ms in (0..=1000).step_by(20) {
            avatar.tick(t0 + Duration::from_millis(ms), &mut out).unwrap();
        }
        let chunks: Vec<&Vec<u8>> =
            out.iter().filter_map(|o| if let WsOutput::Chunk(c) = o { Some(c) } else { None }).collect();
        assert_eq!(chunks.len(), 26, "frames at 0, 40, …, 1000 ms");
        let first: Vec<String> = boxes(chunks[0]).into_iter().map(|(t, _)| t).collect();
        assert_eq!(first, ["ftyp", "moov", "moof", "mdat"]);
        for c in &chunks[1..] {
            let kinds: Vec<(String, usize)> = boxes(c);
            assert_eq!(kinds.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(), ["moof", "mdat"]);
            assert_eq!(kinds.iter().map(|(_, n)| n).sum::<usize>(), c.len(), "whole boxes");
        }
        // The speech makes a speaking edge, and the quiet after it an idle one.
        let edges: Vec<&WsOutput> = out.iter().filter(|o| !matches!(o, WsOutput::Chunk(_))).collect();
        assert_eq!(edges, [&WsOutput::Speaking, &WsOutput::Idle]);
        // Falling far behind skips frames instead of making them all.
        let before = out.len();
        avatar.tick(t0 + Duration::from_millis(3_000), &mut out).unwrap();
        let caught_up = out[before..].iter().filter(|o| matches!(o, WsOutput::Chunk(_))).count();
        assert!(caught_up < 10, "{caught_up} frames made to catch up 2 s");
        assert!(avatar.deadline() > t0 + Duration::from_millis(3_000));
    }
}
