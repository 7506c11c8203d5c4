//! Piper voices (VITS, ONNX): text → espeak-ng IPA → phoneme ids → 16-bit audio.
//!
//! The phonemizer is the `espeak-ng` program, run as a separate process (it is GPL; brazen does
//! not link it). espeak-ng prints one line of IPA per clause and drops the punctuation, so the
//! text's clause punctuation is put back after each line, as Piper's own phonemizer does. The
//! ids follow Piper: `^ _ (id _)* $` over the NFD-decomposed IPA.
//!
//! Timing comes from the model itself: its duration predictor's output (`/Ceil_output_0`, the
//! frames each phoneme id lasts) is made a graph output when the voice is loaded, so every
//! phoneme is placed on the audio's sample clock (frames of 256 samples), and the spans add up
//! to the audio's length.

use crate::phonemes::{CLAUSE_PUNCTUATION, Speech, spans};
use crate::{SpeechError, onnx};
use ort::session::Session;
use ort::value::Tensor;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use unicode_normalization::UnicodeNormalization;

/// Samples per frame of the duration predictor (all Piper VITS voices).
const HOP: usize = 256;
/// The duration predictor's output inside Piper graphs.
const DURATIONS: &str = "/Ceil_output_0";

/// A loaded Piper voice.
pub struct PiperVoice {
    session: Mutex<Session>,
    ids: HashMap<char, Vec<i64>>,
    sample_rate: u32,
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
    espeak_voice: String,
}

impl PiperVoice {
    /// Loads a voice (`*.onnx` and its `*.onnx.json`) on the ONNX Runtime library at `runtime`.
    pub fn load(model: &Path, config: &Path, runtime: &Path) -> Result<PiperVoice, SpeechError> {
        let bad = |path: &Path, message: String| SpeechError::Model { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(config).map_err(|e| bad(config, e.to_string()))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(config, e.to_string()))?;
        let mut ids = HashMap::new();
        for (symbol, id) in json["phoneme_id_map"].as_object().ok_or_else(|| bad(config, "no phoneme_id_map".into()))? {
            let mut chars = symbol.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else { continue };
            let list: Vec<i64> = id.as_array().into_iter().flatten().filter_map(|v| v.as_i64()).collect();
            ids.insert(c, list);
        }
        for required in ['^', '_', '$'] {
            if !ids.contains_key(&required) {
                return Err(bad(config, format!("phoneme_id_map lacks {required:?}")));
            }
        }
        let f = |key: &str, default: f64| json["inference"][key].as_f64().unwrap_or(default) as f32;
        let env = onnx::environment(runtime)?;
        let bytes = std::fs::read(model).map_err(|e| bad(model, e.to_string()))?;
        let bytes = crate::protobuf::with_extra_output(&bytes, DURATIONS, crate::protobuf::FLOAT)
            .map_err(|e| bad(model, format!("not an ONNX model: {e}")))?;
        let session = Session::builder(env)?
            .with_intra_threads(2)
            .map_err(ort::Error::<()>::from)?
            .commit_from_memory(&bytes)
            .map_err(|e| bad(model, e.to_string()))?;
        Ok(PiperVoice {
            session: Mutex::new(session),
            ids,
            sample_rate: json["audio"]["sample_rate"].as_u64().unwrap_or(22_050) as u32,
            noise_scale: f("noise_scale", 0.667),
            length_scale: f("length_scale", 1.0),
            noise_w: f("noise_w", 0.8),
            espeak_voice: json["espeak"]["voice"].as_str().unwrap_or("en-us").to_owned(),
        })
    }

    /// The voice's sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The IPA of `text`, clause punctuation kept.
    pub fn phonemes(&self, text: &str) -> Result<String, SpeechError> {
        crate::phonemes::ipa(&self.espeak_voice, text)
    }

    /// Piper phoneme ids of an IPA string: `^ _ (id _)* $`; unknown symbols are skipped.
    pub fn ids(&self, phonemes: &str) -> Vec<i64> {
        self.ids_with_symbols(phonemes).into_iter().map(|(id, _)| id).collect()
    }

    /// The ids, each with the symbol it stands for (`_` pads and `^`/`$` included).
    fn ids_with_symbols(&self, phonemes: &str) -> Vec<(i64, char)> {
        let mut out = Vec::new();
        let mut push = |c: char| {
            if let Some(ids) = self.ids.get(&c) {
                out.extend(ids.iter().map(|id| (*id, c)));
            }
        };
        push('^');
        push('_');
        for c in phonemes.nfd().filter(|c| *c != '^' && *c != '$' && *c != '_') {
            if self.ids.contains_key(&c) {
                push(c);
                push('_');
            }
        }
        push('$');
        out
    }

    /// Speaks `text` at `rate` (1.0 = normal, 0.5–1.5). Prices, times and codes are read as a
    /// person would ([`crate::normalize::speakable`]).
    pub fn synthesize(&self, text: &str, rate: f32) -> Result<Speech, SpeechError> {
        let ipa = self.phonemes(&crate::normalize::speakable(text))?;
        let mut speech = Speech { samples: Vec::new(), sample_rate: self.sample_rate, ipa, phonemes: Vec::new() };
        if speech.ipa.chars().all(|c| c.is_whitespace() || CLAUSE_PUNCTUATION.contains(&c)) {
            return Ok(speech);
        }
        let symbols = self.ids_with_symbols(&speech.ipa);
        let ids: Vec<i64> = symbols.iter().map(|(id, _)| *id).collect();
        let n = ids.len();
        let scales = vec![self.noise_scale, self.length_scale / rate.clamp(0.3, 3.0), self.noise_w];
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session.run(ort::inputs![
            "input" => Tensor::from_array(([1usize, n], ids))?,
            "input_lengths" => Tensor::from_array(([1usize], vec![n as i64]))?,
            "scales" => Tensor::from_array(([3usize], scales))?,
        ])?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>()?;
        speech.samples = audio.iter().map(|x| (x * 32_767.0).clamp(-32_768.0, 32_767.0) as i16).collect();
        if let Some(durations) = outputs.get(DURATIONS) {
            let (_, frames) = durations.try_extract_tensor::<f32>()?;
            if frames.len() == symbols.len() {
                speech.phonemes = spans(&symbols, frames, HOP);
            }
        }
        Ok(speech)
    }
}
