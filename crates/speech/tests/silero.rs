//! Silero VAD on real speech (espeak-ng) framed by silence, with the models from the registries.

use brazen_audio::{Resampler, Vad, VadStream};
use brazen_models::{Manifest, Store, progress};
use brazen_speech::{SileroModel, SileroVad};
use std::path::PathBuf;
use std::process::Command;

/// Installs (if needed) and returns the Silero model and the ONNX Runtime library.
fn models() -> (PathBuf, PathBuf) {
    let store = Store::new(Store::default_root());
    let manifest = Manifest::builtin();
    let vad = store.install(manifest.get("silero-vad").unwrap(), &progress()).unwrap();
    let ort = store.install(manifest.get("onnxruntime").unwrap(), &progress()).unwrap();
    (vad.join("silero_vad.onnx"), ort.join(brazen_speech::ONNX_RUNTIME_LIBRARY))
}

/// `text` spoken by espeak-ng, as 16 kHz samples in [-1, 1).
fn speech(text: &str) -> Vec<f32> {
    let out = Command::new("espeak-ng")
        .args(["-v", "en-us", "--stdout", text])
        .output()
        .expect("espeak-ng is installed (scripts/test installs it)");
    let wav = out.stdout;
    let rate = u32::from_le_bytes(wav[24..28].try_into().unwrap());
    let data = wav.windows(4).position(|w| w == b"data").expect("a data chunk") + 8;
    let samples: Vec<f32> =
        wav[data..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32_768.0).collect();
    let mut out = Vec::new();
    Resampler::new(rate, 16_000).process(&samples, &mut out);
    out
}

#[test]
fn silero_separates_speech_from_silence() {
    let (model, runtime) = models();
    let mut vad = SileroVad::load(&model, &runtime).unwrap();
    let talk = speech("Hello, I would like to check the status of my order please.");
    let audio = [vec![0.0; 16_000], talk.clone(), vec![0.0; 16_000]].concat();
    let probs: Vec<f32> = audio.chunks_exact(512).map(|f| vad.process(f)).collect();
    assert_eq!(vad.failures(), 0);
    let frame_s = 512.0 / 16_000.0;
    let in_speech = |i: usize| {
        let t = i as f64 * frame_s;
        t > 1.1 && t < 1.0 + talk.len() as f64 / 16_000.0 - 0.1
    };
    let silence: Vec<f32> =
        probs.iter().enumerate().filter(|(i, _)| (*i as f64 * frame_s) < 0.9).map(|(_, p)| *p).collect();
    let voiced: Vec<f32> = probs.iter().enumerate().filter(|(i, _)| in_speech(*i)).map(|(_, p)| *p).collect();
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(mean(&silence) < 0.1, "silence {}", mean(&silence));
    assert!(mean(&voiced) > 0.6, "speech {}", mean(&voiced));
    let onset = probs.iter().position(|p| *p > 0.5).unwrap() as f64 * frame_s;
    assert!((0.9..1.3).contains(&onset), "speech detected at {onset} s");
}

#[test]
fn silero_drives_a_vad_stream_at_24_khz_and_resets() {
    let (model, runtime) = models();
    let mut stream = VadStream::new(Box::new(SileroVad::load(&model, &runtime).unwrap()), 24_000);
    let talk = speech("Where is my parcel?");
    let mut at24 = Vec::new();
    Resampler::new(16_000, 24_000).process(&talk, &mut at24);
    let pcm: Vec<i16> = [vec![0.0; 24_000], at24].concat().iter().map(|x| (x * 32_767.0) as i16).collect();
    let frames: Vec<_> = pcm.chunks(2_400).flat_map(|c| stream.push(c)).collect();
    assert!(frames.iter().filter(|f| f.end_ms < 900.0).all(|f| f.probability < 0.3));
    assert!(frames.iter().any(|f| f.probability > 0.8));
    let mut vad = SileroVad::load(&model, &runtime).unwrap();
    assert_eq!(vad.process(&[0.5; 100]), 0.0, "a wrong frame length is refused, not a panic");
    assert_eq!(vad.failures(), 1);
}

#[test]
fn conversations_sharing_a_model_keep_their_own_state() {
    let (model, runtime) = models();
    let shared = SileroModel::load(&model, &runtime).unwrap();
    let talk = speech("Can you help me with a refund?");
    let (mut a, mut b, mut alone) = (shared.detector(), shared.detector(), SileroVad::load(&model, &runtime).unwrap());
    let silence = vec![0.0f32; 512];
    for frame in talk.chunks_exact(512) {
        // `a` hears the speech, `b` hears silence at the same time, on the same sessions.
        let pa = a.process(frame);
        let pb = b.process(&silence);
        let p = alone.process(frame);
        assert!((pa - p).abs() < 1e-4, "sharing the model changes nothing: {pa} vs {p}");
        assert!(pb < 0.2, "{pb}");
    }
}
