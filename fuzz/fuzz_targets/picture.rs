//! Arbitrary bytes as a background picture or a photo avatar's portrait (PNG or JPEG): decoded
//! within the pixel limits or refused; never a panic, never an allocation past the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = brazen_avatar::backdrop::Backdrop::decode(data);
});
