//! Without espeak-ng the voices fail with the fix, not a panic or a hang. (Its own test binary:
//! it empties `PATH` for the whole process.)

use brazen_speech::{SpeechError, ipa};

#[test]
fn missing_espeak_names_the_package_to_install() {
    let empty = std::env::temp_dir().join(format!("brazen-empty-path-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    // SAFETY: this binary holds this one test, so no other thread reads the environment.
    unsafe { std::env::set_var("PATH", &empty) };
    let err = ipa("en-us", "hello").unwrap_err();
    std::fs::remove_dir(&empty).unwrap();
    assert!(matches!(err, SpeechError::Phonemizer(ref m) if m.contains("apt-get install espeak-ng")), "{err}");
}
