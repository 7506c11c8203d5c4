//! Avatars whose video goes over the session's own socket (`output_protocol: "websocket"`): a
//! thread per avatar runs a [`WsAvatar`] in real time and hands each piece of its fragmented MP4
//! to the session as [`AvatarEvent::Video`] (sent as `response.video.delta`). No UDP is involved,
//! so this is also the way through for clients whose network blocks WebRTC.

use crate::avatar_media::{AvatarHandle, ToPeer, apply, cannot_start, stream_settings};
use brazen_engine::avatar_link::{AvatarCommand, AvatarEvent, AvatarFace};
use brazen_engine::avatar_video::AvatarVideo;
use brazen_media::{AudioCodec, WsAvatar, WsOutput};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// Starts an avatar streaming over the socket: its commands go through the returned handle, its
/// video and speaking edges come back on `events`.
pub fn start(
    face: AvatarFace,
    video: &AvatarVideo,
    seed: u64,
    events: UnboundedSender<AvatarEvent>,
) -> Result<AvatarHandle, AvatarEvent> {
    let avatar =
        WsAvatar::new(&stream_settings(&face, video, seed, AudioCodec::AacLc), Instant::now()).map_err(cannot_start)?;
    let (handle, rx) = AvatarHandle::channel();
    handle.load_pictures(&face, video, &events);
    std::thread::Builder::new()
        .name("avatar-ws".into())
        .spawn(move || {
            run(avatar, &rx, &events);
            let _ = events.send(AvatarEvent::Closed);
        })
        .map_err(|e| cannot_start(e.to_string()))?;
    Ok(handle)
}

/// Runs one avatar until it is closed or its session is gone.
fn run(mut avatar: WsAvatar, rx: &mpsc::Receiver<ToPeer>, events: &UnboundedSender<AvatarEvent>) {
    let mut out = Vec::new();
    loop {
        let wait = avatar.deadline().saturating_duration_since(Instant::now()).min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok(ToPeer::Command(AvatarCommand::Close)) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(ToPeer::Command(command)) => apply(avatar.stream(), command),
            Ok(ToPeer::Backdrop(backdrop)) => avatar.stream().set_backdrop(&backdrop),
            Ok(ToPeer::Portrait(portrait)) => avatar.stream().set_portrait(&portrait),
            Ok(ToPeer::Packet { .. }) | Err(RecvTimeoutError::Timeout) => {}
        }
        if let Err(reason) = avatar.tick(Instant::now(), &mut out) {
            tracing::warn!("avatar stopped: {reason}");
            return;
        }
        for output in out.drain(..) {
            let event = match output {
                WsOutput::Chunk(bytes) => AvatarEvent::Video(bytes),
                WsOutput::Speaking => AvatarEvent::Speaking,
                WsOutput::Idle => AvatarEvent::Idle,
            };
            if events.send(event).is_err() {
                return;
            }
        }
    }
}
