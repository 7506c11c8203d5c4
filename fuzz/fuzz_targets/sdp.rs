//! Arbitrary text as a WebRTC offer to the avatar's media peer: it may be refused, but the
//! answer must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let offer = String::from_utf8_lossy(data);
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 40_000));
    let _ = brazen_media::peer::Peer::answer(&offer, local, std::time::Instant::now());
});
