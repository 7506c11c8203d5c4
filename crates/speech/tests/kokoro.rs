//! Kokoro on the installed model and kokoro-js voices.

use brazen_audio::{Resampler, Vad};
use brazen_models::{Manifest, Store, progress};
use brazen_speech::{KokoroVoice, SileroVad};

fn install(name: &str) -> std::path::PathBuf {
    Store::new(Store::default_root()).install(Manifest::builtin().get(name).unwrap(), &progress()).unwrap()
}

#[test]
fn kokoro_speaks_in_each_voice_with_timings() {
    let ort = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    let kokoro = KokoroVoice::load(&install("kokoro-82m"), &ort, "af_heart").unwrap();
    assert_eq!(kokoro.voices(), ["af_bella", "af_heart", "am_michael", "bf_emma", "bm_george"]);
    let text = "Thanks for waiting. Your new headphones will arrive on Friday.";
    let heart = kokoro.synthesize(text, "af_heart", 1.0).unwrap();
    let seconds = heart.samples.len() as f64 / heart.sample_rate as f64;
    assert_eq!(heart.sample_rate, 24_000);
    assert!((2.0..8.0).contains(&seconds), "{seconds} s");
    let george = kokoro.synthesize(text, "bm_george", 1.0).unwrap();
    assert_ne!(heart.samples, george.samples, "another voice sounds different");
    let fallback = kokoro.synthesize("Hello.", "alloy", 1.0).unwrap();
    assert!(!fallback.samples.is_empty(), "an unknown voice name falls back to the default");

    // Timings cover the audio within one frame (600 samples).
    let p = &heart.phonemes;
    assert!(!p.is_empty());
    for pair in p.windows(2) {
        assert_eq!(pair[0].start + pair[0].len, pair[1].start);
    }
    let covered = p.last().map(|s| s.start + s.len).unwrap();
    assert!(covered.abs_diff(heart.samples.len()) <= 600, "{covered} vs {}", heart.samples.len());
    let words: Vec<String> = heart.words(text).into_iter().map(|w| w.text).collect();
    assert_eq!(words.len(), text.split_whitespace().count());

    // It is speech to a speech detector.
    let floats: Vec<f32> = heart.samples.iter().map(|s| *s as f32 / 32_768.0).collect();
    let mut at16 = Vec::new();
    Resampler::new(24_000, 16_000).process(&floats, &mut at16);
    let mut vad = SileroVad::load(&install("silero-vad").join("silero_vad.onnx"), &ort).unwrap();
    let probs: Vec<f32> = at16.chunks_exact(512).map(|f| vad.process(f)).collect();
    let voiced = probs.iter().filter(|p| **p > 0.5).count() as f64 / probs.len() as f64;
    assert!(voiced > 0.6, "{:.0}% heard as speech", voiced * 100.0);
}
