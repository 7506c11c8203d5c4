//! Avatars whose video goes over the session's own socket (`output_protocol: "websocket"`): a
//! thread per avatar runs a [`WsAvatar`] in real time and hands each piece of its fragmented MP4
//! to the session as [`AvatarEvent::Video`] (sent as `response.video.delta`). No UDP is involved,
//! so this is also the way through for clients whose network blocks WebRTC.
//!
//! A client that reads slower than the video is made holds the stream back instead of growing
//! the server's memory: while more than [`MAX_BACKLOG_BYTES`] of video wait for its socket, the
//! avatar makes nothing, then carries on from where it was (later, losing nothing).

use crate::avatar_media::{AvatarHandle, ToPeer, apply, arrived, cannot_start, stream_settings};
use brazen_engine::avatar_link::{AvatarCommand, AvatarEvent, AvatarFace};
use brazen_media::{AudioCodec, WsAvatar, WsOutput};
use brazen_protocol::avatar::AvatarVideo;
use brazen_providers::catch_panic;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Video bytes handed to the session but not yet taken by it (its socket is slow) past which
/// the avatar waits.
pub const MAX_BACKLOG_BYTES: usize = 1024 * 1024;
use tokio::sync::mpsc::UnboundedSender;

/// Starts an avatar streaming over the socket: its commands go through the returned handle, its
/// video and speaking edges come back on `events`. `backlog` counts the video bytes sent on
/// `events` that the session has not taken yet (the avatar adds, the session's driver subtracts).
pub fn start(
    face: AvatarFace,
    video: &AvatarVideo,
    seed: u64,
    events: UnboundedSender<AvatarEvent>,
    backlog: Arc<AtomicUsize>,
) -> Result<AvatarHandle, AvatarEvent> {
    let avatar =
        WsAvatar::new(&stream_settings(&face, video, seed, AudioCodec::AacLc), Instant::now()).map_err(cannot_start)?;
    let (handle, rx) = AvatarHandle::channel();
    handle.load_pictures(&face, video, &events);
    std::thread::Builder::new()
        .name("avatar-ws".into())
        .spawn(move || {
            // A panic in drawing or encoding ends this avatar alone.
            if let Err(panic) = catch_panic(|| run(avatar, &rx, &events, &backlog)) {
                tracing::error!("an avatar failed unexpectedly: {panic}");
            }
            let _ = events.send(AvatarEvent::Closed);
        })
        .map_err(|e| cannot_start(e.to_string()))?;
    Ok(handle)
}

/// Runs one avatar until it is closed or its session is gone.
fn run(
    mut avatar: WsAvatar,
    rx: &mpsc::Receiver<ToPeer>,
    events: &UnboundedSender<AvatarEvent>,
    backlog: &AtomicUsize,
) {
    let mut out = Vec::new();
    let mut held_since: Option<Instant> = None;
    loop {
        let wait = match held_since {
            // Held back: look again soon (nothing is due meanwhile).
            Some(_) => Duration::from_millis(20),
            None => avatar.deadline().saturating_duration_since(Instant::now()).min(Duration::from_millis(100)),
        };
        let (messages, gone) = arrived(rx, wait);
        for message in messages {
            match message {
                ToPeer::Command(AvatarCommand::Close) => return,
                ToPeer::Command(command) => apply(avatar.stream(), command),
                ToPeer::Backdrop(backdrop) => avatar.stream().set_backdrop(&backdrop),
                ToPeer::Portrait(portrait) => avatar.stream().set_portrait(&portrait),
                ToPeer::Packet { .. } => {}
            }
        }
        if gone {
            return;
        }
        match make(&mut avatar, &mut held_since, backlog.load(Ordering::Relaxed), Instant::now(), &mut out) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(reason) => {
                tracing::warn!("avatar stopped: {reason}");
                return;
            }
        }
        for output in out.drain(..) {
            let event = match output {
                WsOutput::Chunk(bytes) => {
                    backlog.fetch_add(bytes.len(), Ordering::Relaxed);
                    AvatarEvent::Video(bytes)
                }
                WsOutput::Speaking => AvatarEvent::Speaking,
                WsOutput::Idle => AvatarEvent::Idle,
            };
            if events.send(event).is_err() {
                return;
            }
        }
    }
}

/// Makes the media due at `now` into `out`, unless the reader is behind (`backlog` over
/// [`MAX_BACKLOG_BYTES`]): then nothing is made and `held_since` remembers since when; once the
/// reader catches up, the avatar's clock is moved on by the time held, so it carries on from
/// where it was rather than making the missed frames at once. Returns whether it was held.
fn make(
    avatar: &mut WsAvatar,
    held_since: &mut Option<Instant>,
    backlog: usize,
    now: Instant,
    out: &mut Vec<WsOutput>,
) -> Result<bool, String> {
    if backlog > MAX_BACKLOG_BYTES {
        held_since.get_or_insert(now);
        return Ok(true);
    }
    if let Some(since) = held_since.take() {
        avatar.delay(now.saturating_duration_since(since));
    }
    avatar.tick(now, out)?;
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_avatar::character::Catalog;

    /// Drives `make` from `from` for `ms` on a fake clock, every 10 ms, with this backlog; the
    /// video chunks made.
    fn drive(avatar: &mut WsAvatar, held: &mut Option<Instant>, backlog: usize, from: Instant, ms: u64) -> usize {
        let mut out = Vec::new();
        for step in 0..ms / 10 {
            make(avatar, held, backlog, from + Duration::from_millis(step * 10), &mut out).unwrap();
        }
        out.iter().filter(|o| matches!(o, WsOutput::Chunk(_))).count()
    }

    #[test]
    fn a_slow_reader_holds_the_stream_back_then_it_carries_on() {
        let look = Catalog::built_in().choose("lisa", None).unwrap().look;
        let video = AvatarVideo { resolution: (320, 240), crop: ((0, 0), (320, 240)), ..AvatarVideo::default() };
        let start = Instant::now();
        let settings = stream_settings(&AvatarFace::Character(look), &video, 1, AudioCodec::AacLc);
        let mut avatar = WsAvatar::new(&settings, start).unwrap();
        let mut held = None;
        // The reader is behind: nothing is made.
        assert_eq!(drive(&mut avatar, &mut held, MAX_BACKLOG_BYTES + 1, start, 600), 0);
        assert_eq!(held, Some(start));
        // It caught up: the stream carries on at 25 fps from where it was, not 15 frames at once.
        let made = drive(&mut avatar, &mut held, 0, start + Duration::from_millis(600), 400);
        assert!((9..=11).contains(&made), "{made} chunks in 400 ms after holding 600 ms");
        assert_eq!(held, None);
    }
}
