//! Arbitrary bytes, read as lossy UTF-8, fed to the client-event parser: it may return an
//! error, but must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = brazen_protocol::client::parse(&text);
});
