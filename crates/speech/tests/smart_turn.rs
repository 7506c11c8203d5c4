//! Smart Turn v3.2 on the installed model: its features match the reference extractor's, and it
//! tells finished sentences from speech that trails off (Piper's voice, without its random
//! variation, so every run hears the same audio).

use brazen_models::{Manifest, Store, progress};
use brazen_speech::{PiperVoice, SmartTurnModel};
use std::sync::Arc;

fn install(name: &str) -> std::path::PathBuf {
    let store = Store::new(Store::default_root());
    store.install(Manifest::builtin().get(name).unwrap(), &progress()).unwrap()
}

fn model() -> Arc<SmartTurnModel> {
    let ort = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    SmartTurnModel::load(&install("smart-turn-v3.2").join(brazen_speech::SMART_TURN_FILE), &ort).unwrap()
}

/// `text` in Piper's voice, followed by 200 ms of silence (a pause, as when the model is asked).
fn said(voice: &PiperVoice, text: &str) -> Vec<i16> {
    let mut samples = voice.synthesize(text, 1.0).unwrap().samples;
    samples.extend(std::iter::repeat_n(0, voice.sample_rate() as usize / 5));
    samples
}

#[test]
fn finished_sentences_end_the_turn_and_trailing_ones_do_not() {
    let model = model();
    let dir = install("piper-en-us-joe-medium");
    let ort = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    let voice = PiperVoice::load(&dir.join("en_US-joe-medium.onnx"), &dir.join("en_US-joe-medium.onnx.json"), &ort)
        .unwrap()
        .with_noise(0.0, 0.0);
    let rate = voice.sample_rate();
    let p = |text: &str| {
        let p = model.probability(&said(&voice, text), rate).unwrap();
        eprintln!("{p:.3}  {text}");
        p
    };
    let finished = ["What time do you open?", "Thank you, that is all.", "Where is my order?"];
    let trailing = ["I want to, um", "My phone number is five five five, two"];
    let finished: Vec<f32> = finished.iter().map(|t| p(t)).collect();
    let trailing: Vec<f32> = trailing.iter().map(|t| p(t)).collect();
    assert!(finished.iter().all(|&p| p > 0.5), "{finished:?}");
    assert!(trailing.iter().all(|&p| p < 0.5), "{trailing:?}");
    // Silence, nothing, or more than the model hears: an answer, never an error.
    for audio in [vec![0; 16_000], Vec::new(), said(&voice, &"Where is my order? ".repeat(8))] {
        assert!(model.probability(&audio, rate).is_ok_and(|p| (0.0..=1.0).contains(&p)));
    }
}

#[test]
fn a_file_that_is_not_the_model_is_refused_with_its_name() {
    let ort = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    let vad = install("silero-vad").join("silero_vad.onnx");
    let e = SmartTurnModel::load(&vad, &ort).err().expect("a VAD is not a turn model");
    assert!(e.to_string().contains("silero_vad.onnx") && e.to_string().contains("not a Smart Turn"), "{e}");
}
