//! The callers' voices of the turn-taking benchmarks: Piper joe (without its random variation)
//! and four Kokoro voices, speaking at 24 kHz (shared by the benchmark binaries).

use brazen_audio::Resampler;
use brazen_models::{Manifest, Store, progress};
use brazen_speech::{KokoroVoice, PiperVoice, Voice};

/// The installed voices.
pub struct Voices {
    piper: PiperVoice,
    kokoro: KokoroVoice,
}

impl Voices {
    /// Installs (if missing) and loads Piper joe and Kokoro.
    pub fn load() -> Voices {
        let store = Store::new(Store::default_root());
        let install = |name: &str| store.install(Manifest::builtin().get(name).expect(name), &progress()).expect(name);
        let ort = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
        let dir = install("piper-en-us-joe-medium");
        let piper = PiperVoice::load(&dir.join("en_US-joe-medium.onnx"), &dir.join("en_US-joe-medium.onnx.json"), &ort)
            .expect("Piper loads")
            .with_noise(0.0, 0.0);
        let kokoro = KokoroVoice::load(&install("kokoro-82m"), &ort, "af_heart").expect("Kokoro loads");
        Voices { piper, kokoro }
    }

    /// The five speakers: engine and voice name.
    pub fn speakers(&self) -> [(&dyn Voice, &'static str); 5] {
        [
            (&self.piper, "joe"),
            (&self.kokoro, "af_heart"),
            (&self.kokoro, "am_michael"),
            (&self.kokoro, "bf_emma"),
            (&self.kokoro, "af_bella"),
        ]
    }
}

/// `samples` at `rate` Hz, resampled to 24 kHz.
pub fn at_24k(samples: &[i16], rate: u32) -> Vec<i16> {
    let mut out = Vec::new();
    let mut r = Resampler::new(rate, 24_000);
    r.process_i16(samples, &mut out);
    r.flush_i16(&mut out);
    out
}
