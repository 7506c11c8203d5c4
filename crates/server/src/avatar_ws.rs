//! Avatars whose video goes over the session's own socket (`output_protocol: "websocket"`): a
//! thread per avatar runs a [`WsAvatar`] in real time and hands each piece of its fragmented MP4
//! to the session as [`AvatarEvent::Video`] (sent as `response.video.delta`). No UDP is involved,
//! so this is also the way through for clients whose network blocks WebRTC.
//!
//! A client that reads slower than the video is made holds the stream back instead of growing
//! the server's memory: while more than [`MAX_BACKLOG_BYTES`] of video wait for its socket, the
//! avatar makes nothing, then carries on from where it was (later, losing nothing).

use crate::avatar_media::{AvatarHandle, ToPeer, apply, cannot_start, stream_settings};
use brazen_engine::avatar_link::{AvatarCommand, AvatarEvent, AvatarFace};
use brazen_engine::avatar_video::AvatarVideo;
use brazen_media::{AudioCodec, WsAvatar, WsOutput};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
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
            run(avatar, &rx, &events, &backlog);
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
        match rx.recv_timeout(wait) {
            Ok(ToPeer::Command(AvatarCommand::Close)) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(ToPeer::Command(command)) => apply(avatar.stream(), command),
            Ok(ToPeer::Backdrop(backdrop)) => avatar.stream().set_backdrop(&backdrop),
            Ok(ToPeer::Portrait(portrait)) => avatar.stream().set_portrait(&portrait),
            Ok(ToPeer::Packet { .. }) | Err(RecvTimeoutError::Timeout) => {}
        }
        if backlog.load(Ordering::Relaxed) > MAX_BACKLOG_BYTES {
            held_since.get_or_insert_with(Instant::now);
            continue;
        }
        if let Some(since) = held_since.take() {
            avatar.delay(since.elapsed());
        }
        if let Err(reason) = avatar.tick(Instant::now(), &mut out) {
            tracing::warn!("avatar stopped: {reason}");
            return;
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

#[cfg(test)]
mod tests {
    use super::*;
    use brazen_avatar::character::Catalog;

    /// Video chunks waiting on `rx`.
    fn chunks(rx: &mut tokio::sync::mpsc::UnboundedReceiver<AvatarEvent>) -> usize {
        std::iter::from_fn(|| rx.try_recv().ok()).filter(|e| matches!(e, AvatarEvent::Video(_))).count()
    }

    #[test]
    fn a_slow_reader_holds_the_stream_back_then_it_carries_on() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(MAX_BACKLOG_BYTES + 1));
        let look = Catalog::built_in().choose("lisa", None).unwrap().look;
        let video = AvatarVideo { resolution: (320, 240), crop: ((0, 0), (320, 240)), ..AvatarVideo::default() };
        let handle = start(AvatarFace::Character(look), &video, 1, tx, backlog.clone()).unwrap();
        // The reader is behind: nothing is made.
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(chunks(&mut rx), 0);
        // It caught up: the stream carries on at 25 fps from where it was, not 15 frames at once.
        backlog.store(0, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(400));
        let made = chunks(&mut rx);
        assert!((6..=14).contains(&made), "{made} frames in 400 ms after holding 600 ms");
        assert!(backlog.load(Ordering::Relaxed) > 0, "what it sends is counted");
        drop(handle);
    }
}
