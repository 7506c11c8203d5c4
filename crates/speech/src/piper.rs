//! Piper voices (VITS, ONNX): text → espeak-ng IPA → phoneme ids → 16-bit audio, streamed.
//!
//! The phonemizer is the `espeak-ng` program, run as a separate process (it is GPL; brazen does
//! not link it). espeak-ng prints one line of IPA per clause and drops the punctuation, so the
//! text's clause punctuation is put back after each line, as Piper's own phonemizer does. The
//! ids follow Piper: `^ _ (id _)* $` over the NFD-decomposed IPA.
//!
//! The voice's graph is cut in two when it is loaded: the *encoder* (text encoder, duration
//! predictor, flow) turns the ids into latent frames and the frames each phoneme id lasts
//! (`/Ceil_output_0`); the *decoder* (HiFi-GAN) turns latent frames into audio, 256 samples a
//! frame. The decoder is convolutional, so it runs on chunks of frames with [`CONTEXT`] frames
//! of overlap on each side and gives exactly the audio of one whole run: the first words can be
//! heard after the encoder and one short chunk, not after the whole sentence. The timing (every
//! phoneme on the audio's sample clock, adding up to its length) is known before any audio.

use crate::phonemes::{CLAUSE_PUNCTUATION, Speech, spans};
use crate::protobuf::{FLOAT, extract, node_inputs};
use crate::voice::{SpeechPart, Voice};
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
/// The decoder's first node; its first input is the latent the decoder reads.
const DECODER_START: &str = "/dec/conv_pre/Conv";
/// The graph's audio output.
const AUDIO: &str = "output";
/// Latent frames decoded on each side of a chunk for context. The decoder sees about 12
/// frames each way; with 16, chunked audio equals whole audio (tested).
pub const CONTEXT: usize = 16;
/// Frames in the first chunk (≈ 0.37 s at 22,050 Hz): small, so the first audio comes soon.
const FIRST_CHUNK: usize = 32;
/// Frames in each later chunk: large, so the overlap costs little.
const LATER_CHUNK: usize = 128;
/// The most IPA characters the encoder reads in one run. Its memory grows with the square of
/// its input (≈ 1.3 GB at 2,000 characters of text), so longer speech is encoded in runs of
/// whole words, each framed as a clause, and the runs' latents are decoded as one.
const ENCODER_RUN: usize = 240;
/// The most IPA characters one call speaks (a few minutes of speech); longer text is an error
/// that says to split it. Callers speak phrases (the engine's are at most 240 characters).
pub const MAX_IPA: usize = 8_192;

/// A loaded Piper voice.
pub struct PiperVoice {
    encoder: Mutex<Session>,
    decoder: Mutex<Session>,
    latent: String,
    ids: HashMap<char, Vec<i64>>,
    sample_rate: u32,
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
    espeak_voice: String,
    chunks: (usize, usize),
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
        let not_piper = |e: String| bad(model, format!("not a Piper VITS voice brazen can stream: {e}"));
        let latent = node_inputs(&bytes, DECODER_START)
            .map_err(&not_piper)?
            .and_then(|inputs| inputs.into_iter().next())
            .ok_or_else(|| not_piper(format!("no node {DECODER_START}")))?;
        let inputs = [("input", 7), ("input_lengths", 7), ("scales", FLOAT)];
        let encoder = extract(&bytes, &inputs, &[(&latent, FLOAT), (DURATIONS, FLOAT)]).map_err(&not_piper)?;
        let decoder = extract(&bytes, &[(&latent, FLOAT)], &[(AUDIO, FLOAT)]).map_err(&not_piper)?;
        drop(bytes);
        let session = |graph: &[u8]| onnx::synthesis_session(env, graph, model);
        Ok(PiperVoice {
            encoder: Mutex::new(session(&encoder)?),
            decoder: Mutex::new(session(&decoder)?),
            latent,
            ids,
            sample_rate: json["audio"]["sample_rate"].as_u64().unwrap_or(22_050) as u32,
            noise_scale: f("noise_scale", 0.667),
            length_scale: f("length_scale", 1.0),
            noise_w: f("noise_w", 0.8),
            espeak_voice: json["espeak"]["voice"].as_str().unwrap_or("en-us").to_owned(),
            chunks: (FIRST_CHUNK, LATER_CHUNK),
        })
    }

    /// The voice with its variation set: `noise_scale` (how the sound varies, the voice's
    /// default ≈ 0.667) and `noise_w` (how the timing varies, ≈ 0.8). With both 0 the same text
    /// always gives the same audio.
    pub fn with_noise(mut self, noise_scale: f32, noise_w: f32) -> PiperVoice {
        self.noise_scale = noise_scale.max(0.0);
        self.noise_w = noise_w.max(0.0);
        self
    }

    /// The voice decoding `first` latent frames (256 samples each) for the first audio chunk
    /// and `later` for each one after it (defaults 32 and 128): smaller chunks give the first
    /// audio sooner, larger ones cost less overlap.
    pub fn with_chunks(mut self, first: usize, later: usize) -> PiperVoice {
        self.chunks = (first.max(1), later.max(1));
        self
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

    /// Speaks `text` whole at `rate` (1.0 = normal, 0.5–1.5). Prices, times and codes are read
    /// as a person would ([`crate::normalize::speakable`]).
    pub fn synthesize(&self, text: &str, rate: f32) -> Result<Speech, SpeechError> {
        self.speak_all(text, "", rate)
    }

    /// Decodes latent frames `[from, to)` of `latent` (`channels × frames`, row-major) with
    /// [`CONTEXT`] frames of context each side; returns their audio as floats.
    fn decode(&self, latent: &[f32], frames: usize, from: usize, to: usize) -> Result<Vec<f32>, SpeechError> {
        let channels = latent.len() / frames.max(1);
        let (lo, hi) = (from.saturating_sub(CONTEXT), (to + CONTEXT).min(frames));
        let mut window = Vec::with_capacity(channels * (hi - lo));
        for row in latent.chunks_exact(frames) {
            window.extend_from_slice(&row[lo..hi]);
        }
        let mut decoder = self.decoder.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = decoder
            .run(ort::inputs![self.latent.as_str() => Tensor::from_array(([1usize, channels, hi - lo], window))?])?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>()?;
        let start = ((from - lo) * HOP).min(audio.len());
        let end = ((to - lo) * HOP).min(audio.len());
        Ok(audio[start..end].to_vec())
    }
}

/// `ipa` in runs of at most `longest` characters, cut after a space (inside a word only when one
/// word is longer than a run).
fn encoder_runs(ipa: &str, longest: usize) -> Vec<&str> {
    let mut runs = Vec::new();
    let mut rest = ipa.trim();
    while rest.chars().count() > longest {
        let cap = rest.char_indices().nth(longest).map_or(rest.len(), |(i, _)| i);
        let cut = rest[..cap].rfind(' ').filter(|&i| i > 0).unwrap_or(cap);
        runs.push(rest[..cut].trim_end());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        runs.push(rest);
    }
    runs
}

/// The latents of consecutive encoder runs (`channels × frames` each, row-major) as one.
fn join_latents(runs: Vec<(Vec<f32>, usize)>) -> (Vec<f32>, usize) {
    if runs.len() == 1 {
        return runs.into_iter().next().unwrap_or_default();
    }
    let frames: usize = runs.iter().map(|(_, f)| f).sum();
    let channels = runs.iter().find(|(_, f)| *f > 0).map_or(0, |(l, f)| l.len() / f);
    let mut latent = Vec::with_capacity(channels * frames);
    for c in 0..channels {
        for (run, f) in &runs {
            latent.extend_from_slice(&run[c * f..(c + 1) * f]);
        }
    }
    (latent, frames)
}

impl Voice for PiperVoice {
    fn speak(
        &self,
        text: &str,
        _voice: &str,
        rate: f32,
        sink: &mut dyn FnMut(SpeechPart<'_>) -> bool,
    ) -> Result<(), SpeechError> {
        let ipa = self.phonemes(&crate::normalize::speakable(text))?;
        let mut speech = Speech { samples: Vec::new(), sample_rate: self.sample_rate, ipa, phonemes: Vec::new() };
        if speech.ipa.chars().all(|c| c.is_whitespace() || CLAUSE_PUNCTUATION.contains(&c)) {
            sink(SpeechPart::Timing(&speech));
            return Ok(());
        }
        let ipa_len = speech.ipa.chars().count();
        if ipa_len > MAX_IPA {
            return Err(SpeechError::Engine(format!(
                "the text is too long to speak at once ({ipa_len} phonemes; at most {MAX_IPA}): speak it in phrases"
            )));
        }
        let scales = vec![self.noise_scale, self.length_scale / rate.clamp(0.3, 3.0), self.noise_w];
        let mut symbols = Vec::new();
        let mut durations = Vec::new();
        let mut runs = Vec::new();
        let mut timed = true;
        for run in encoder_runs(&speech.ipa, ENCODER_RUN) {
            let run_symbols = self.ids_with_symbols(run);
            let ids: Vec<i64> = run_symbols.iter().map(|(id, _)| *id).collect();
            let n = ids.len();
            let mut encoder = self.encoder.lock().unwrap_or_else(|e| e.into_inner());
            let outputs = encoder.run(ort::inputs![
                "input" => Tensor::from_array(([1usize, n], ids))?,
                "input_lengths" => Tensor::from_array(([1usize], vec![n as i64]))?,
                "scales" => Tensor::from_array(([3usize], scales.clone()))?,
            ])?;
            let (shape, latent) = outputs[0].try_extract_tensor::<f32>()?;
            let (_, run_durations) = outputs[1].try_extract_tensor::<f32>()?;
            let frames = shape.last().copied().unwrap_or(0).max(0) as usize;
            timed &= run_durations.len() == run_symbols.len();
            symbols.extend(run_symbols);
            durations.extend_from_slice(run_durations);
            runs.push((latent.to_vec(), frames));
        }
        if timed && !symbols.is_empty() {
            speech.phonemes = spans(&symbols, &durations, HOP);
        }
        let (latent, frames) = join_latents(runs);
        if !sink(SpeechPart::Timing(&speech)) {
            return Ok(());
        }
        let mut from = 0;
        while from < frames {
            let to = (from + if from == 0 { self.chunks.0 } else { self.chunks.1 }).min(frames);
            let audio = self.decode(&latent, frames, from, to)?;
            let samples: Vec<i16> = audio.iter().map(|x| (x * 32_767.0).clamp(-32_768.0, 32_767.0) as i16).collect();
            if !sink(SpeechPart::Audio(&samples)) {
                return Ok(());
            }
            from = to;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ipa_is_encoded_in_runs_of_whole_words() {
        assert_eq!(encoder_runs(" həlˈoʊ wˈɜːld ", 240), ["həlˈoʊ wˈɜːld"]);
        let ipa = "həlˈoʊ ".repeat(200);
        let runs = encoder_runs(&ipa, 40);
        assert!(runs.iter().all(|r| r.chars().count() <= 40 && r.split(' ').all(|w| w == "həlˈoʊ")), "{runs:?}");
        assert_eq!(runs.iter().map(|r| r.split(' ').count()).sum::<usize>(), 200);
        // One word longer than a run is cut inside it, nothing lost.
        let long = "ə".repeat(100);
        assert_eq!(encoder_runs(&long, 40).concat(), long);
    }

    #[test]
    fn run_latents_join_frame_by_frame_per_channel() {
        // Two channels: run a has 2 frames, run b 1.
        let a = (vec![1.0, 2.0, 10.0, 20.0], 2);
        let b = (vec![3.0, 30.0], 1);
        assert_eq!(join_latents(vec![a, b]), (vec![1.0, 2.0, 3.0, 10.0, 20.0, 30.0], 3));
    }
}
