//! Kokoro-82M (int8 ONNX): espeak-ng IPA → Kokoro tokens → 24 kHz audio, in one of the kokoro-js
//! English voices.
//!
//! Tokens are the phoneme string's symbols in the model's vocabulary, padded with 0 on both
//! sides; the voice file is a [510 × 256] table of style vectors, and a phrase uses the row of
//! its token count. The encoder's `/encoder/Round_output_0` (frames of 600 samples per token) is
//! exposed at load to place each phoneme on the audio's sample clock.

use crate::phonemes::{CLAUSE_PUNCTUATION, Speech, ipa, spans};
use crate::voice::{SpeechPart, Voice};
use crate::{SpeechError, onnx};
use ort::session::Session;
use ort::value::Tensor;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

const RATE: u32 = 24_000;
const HOP: usize = 600;
const DURATIONS: &str = "/encoder/Round_output_0";
const STYLE: usize = 256;
const ROWS: usize = 510;

/// A loaded Kokoro model with its voices.
pub struct KokoroVoice {
    session: Mutex<Session>,
    vocab: HashMap<char, i64>,
    voices: HashMap<String, Vec<f32>>,
    default_voice: String,
}

impl KokoroVoice {
    /// Loads `kokoro-v1.0.int8.onnx`, `vocab.json` and every `*.bin` voice of `dir`, on the
    /// ONNX Runtime library at `runtime`. `default_voice` is used when a request names none of
    /// them.
    pub fn load(dir: &Path, runtime: &Path, default_voice: &str) -> Result<KokoroVoice, SpeechError> {
        let bad = |path: &Path, message: String| SpeechError::Model { path: path.display().to_string(), message };
        let vocab_path = dir.join("vocab.json");
        let json: serde_json::Value = std::fs::read_to_string(&vocab_path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
            .map_err(|e| bad(&vocab_path, e))?;
        let vocab: HashMap<char, i64> = json["vocab"]
            .as_object()
            .ok_or_else(|| bad(&vocab_path, "no vocab object".into()))?
            .iter()
            .filter_map(|(k, v)| {
                let mut chars = k.chars();
                match (chars.next(), chars.next(), v.as_i64()) {
                    (Some(c), None, Some(id)) => Some((c, id)),
                    _ => None,
                }
            })
            .collect();
        let mut voices = HashMap::new();
        for entry in std::fs::read_dir(dir).map_err(|e| bad(dir, e.to_string()))?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "bin") {
                let bytes = std::fs::read(&path).map_err(|e| bad(&path, e.to_string()))?;
                if bytes.len() != ROWS * STYLE * 4 {
                    return Err(bad(&path, format!("a voice is {} bytes, this is {}", ROWS * STYLE * 4, bytes.len())));
                }
                let table = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
                voices.insert(name, table);
            }
        }
        if !voices.contains_key(default_voice) {
            return Err(bad(dir, format!("no voice {default_voice:?} (have {:?})", voices.keys().collect::<Vec<_>>())));
        }
        let model = dir.join("kokoro-v1.0.int8.onnx");
        let env = onnx::environment(runtime)?;
        let bytes = std::fs::read(&model).map_err(|e| bad(&model, e.to_string()))?;
        let bytes = crate::protobuf::with_extra_output(&bytes, DURATIONS, crate::protobuf::FLOAT)
            .map_err(|e| bad(&model, format!("not an ONNX model: {e}")))?;
        let session = onnx::synthesis_session(env, &bytes, &model)?;
        Ok(KokoroVoice { session: Mutex::new(session), vocab, voices, default_voice: default_voice.to_owned() })
    }

    /// The names of the voices.
    pub fn voices(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.voices.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The IPA Kokoro reads for `text`: espeak-ng's, with kokoro-js's substitutions.
    pub fn phonemes(&self, text: &str) -> Result<String, SpeechError> {
        let ipa = ipa("en-us", text)?;
        Ok(ipa
            .chars()
            .map(|c| match c {
                'ʲ' => 'j',
                'r' => 'ɹ',
                'x' => 'k',
                'ɬ' => 'l',
                other => other,
            })
            .collect())
    }

    /// Speaks `text` in `voice` (or the default voice) at `speed` (0.5–1.5).
    pub fn synthesize(&self, text: &str, voice: &str, speed: f32) -> Result<Speech, SpeechError> {
        let ipa = self.phonemes(&crate::normalize::speakable(text))?;
        let mut speech = Speech { samples: Vec::new(), sample_rate: RATE, ipa, phonemes: Vec::new() };
        if speech.ipa.chars().all(|c| c.is_whitespace() || CLAUSE_PUNCTUATION.contains(&c)) {
            return Ok(speech);
        }
        let mut symbols: Vec<(i64, char)> = vec![(0, '^')];
        symbols.extend(speech.ipa.chars().filter_map(|c| self.vocab.get(&c).map(|id| (*id, c))));
        // The model reads at most 510 tokens with its pads; longer phrases are cut.
        symbols.truncate(ROWS - 1);
        symbols.push((0, '$'));
        let n = symbols.len();
        let table = self.voices.get(voice).unwrap_or(&self.voices[&self.default_voice]);
        let row = (n - 2).min(ROWS - 1);
        let style = table[row * STYLE..(row + 1) * STYLE].to_vec();
        let tokens: Vec<i64> = symbols.iter().map(|(id, _)| *id).collect();
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session.run(ort::inputs![
            "tokens" => Tensor::from_array(([1usize, n], tokens))?,
            "style" => Tensor::from_array(([1usize, STYLE], style))?,
            "speed" => Tensor::from_array(([1usize], vec![speed.clamp(0.3, 3.0)]))?,
        ])?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>()?;
        speech.samples = audio.iter().map(|x| (x * 32_767.0).clamp(-32_768.0, 32_767.0) as i16).collect();
        if let Some(durations) = outputs.get(DURATIONS) {
            let (_, frames) = durations.try_extract_tensor::<f32>()?;
            if frames.len() == n {
                speech.phonemes = spans(&symbols, frames, HOP);
            }
        }
        Ok(speech)
    }
}

impl Voice for KokoroVoice {
    /// Kokoro makes a phrase's audio in one run; the timing and then all of it are handed out.
    fn speak(
        &self,
        text: &str,
        voice: &str,
        rate: f32,
        sink: &mut dyn FnMut(SpeechPart<'_>) -> bool,
    ) -> Result<(), SpeechError> {
        let mut speech = self.synthesize(text, voice, rate)?;
        let samples = std::mem::take(&mut speech.samples);
        if sink(SpeechPart::Timing(&speech)) && !samples.is_empty() {
            sink(SpeechPart::Audio(&samples));
        }
        Ok(())
    }
}
