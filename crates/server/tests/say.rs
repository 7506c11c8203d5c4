//! `brazen say`: a WAV file and, beside it, the words, phonemes and visemes on its clock, for
//! text of several phrases; clear errors when there is nothing to say or no voice.

use serde_json::Value;
use std::process::Command;

fn say(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_brazen")).arg("say").args(args).output().expect("brazen runs")
}

#[test]
fn text_becomes_a_wav_with_its_timings_beside_it() {
    let dir = std::env::temp_dir().join(format!("brazen-say-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("reply.wav");
    let text =
        "Thanks for calling. Your blue jacket ships from Portland on Thursday morning, and it should arrive by Monday.";
    let out = say(&[text, "--out", wav.to_str().unwrap(), "--tts", "piper"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!((&bytes[..4], &bytes[8..12]), (&b"RIFF"[..], &b"WAVE"[..]));
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    let audio_ms = (bytes.len() - 44) as f64 / 2.0 / rate as f64 * 1000.0;
    let timings: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reply.json")).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(timings["sample_rate"], rate);
    assert!((timings["duration_ms"].as_f64().unwrap() - audio_ms).abs() < 2.0);
    let words: Vec<&str> = timings["words"].as_array().unwrap().iter().map(|w| w["text"].as_str().unwrap()).collect();
    assert_eq!(words, text.split_whitespace().collect::<Vec<_>>(), "every word, across the phrases");
    let starts: Vec<f64> =
        timings["words"].as_array().unwrap().iter().map(|w| w["start_ms"].as_f64().unwrap()).collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "one clock across the phrases: {starts:?}");
    assert!(*starts.last().unwrap() > audio_ms * 0.8, "the last word is near the end: {starts:?} of {audio_ms}");
    let visemes = timings["visemes"].as_array().unwrap();
    assert!(visemes.len() > 50, "{visemes:?}");
    let offsets: Vec<u64> = visemes.iter().map(|v| v["audio_offset_ms"].as_u64().unwrap()).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]) && (*offsets.last().unwrap() as f64) < audio_ms);
    assert!(visemes.iter().any(|v| v["viseme_id"] == 21), "b, m, p close the lips");
    assert!(timings["phonemes"].as_array().unwrap().len() > 60);
}

#[test]
fn nothing_to_say_or_no_voice_is_a_clear_error() {
    let out = say(&["   ", "--out", "/tmp/never.wav"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to say"));
    let out = say(&["Hi.", "--out", "/tmp/never.wav", "--tts", "tone"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("says nothing"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = say(&["Hi.", "--out", "/nonexistent-dir/x.wav", "--tts", "piper"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write /nonexistent-dir/x.wav"));
}
