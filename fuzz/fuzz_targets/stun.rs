//! Arbitrary datagrams as they reach the media port and brazen's STUN server: classified, and
//! answered when they are binding requests; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = brazen_media::stun::classify(data);
    let source = std::net::SocketAddr::from(([192, 0, 2, 7], 5_000));
    let _ = brazen_media::stun::binding_success(data, source);
});
