//! Arbitrary text as a WebRTC offer to the avatar's media peer: it may be refused, but the
//! answer must never panic out of `Peer::answer`.
//!
//! `Peer::answer` catches the panics of the WebRTC library it calls (str0m asserts on some
//! offers), so a panic that it catches is not a crash here: libfuzzer-sys's hook, which aborts on
//! every panic, is replaced by one that only remembers the message, and the target aborts (a
//! crash, with that message) when a panic escapes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

thread_local! {
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

fuzz_target!(
    init: {
        std::panic::set_hook(Box::new(|info| LAST_PANIC.with(|p| *p.borrow_mut() = info.to_string())));
    },
    |data: &[u8]| {
        let offer = String::from_utf8_lossy(data);
        let local = std::net::SocketAddr::from(([127, 0, 0, 1], 40_000));
        let answered = std::panic::catch_unwind(|| {
            let _ = brazen_media::peer::Peer::answer(&offer, local, std::time::Instant::now());
        });
        if answered.is_err() {
            LAST_PANIC.with(|p| eprintln!("a panic escaped Peer::answer: {}", p.borrow()));
            std::process::abort();
        }
    }
);
