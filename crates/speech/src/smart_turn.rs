//! Smart Turn v3.2 (Pipecat's open end-of-turn model; CPU int8 ONNX, BSD-2): from the last 8 s
//! of a speaker's audio, the probability that they have finished their turn. It hears what a
//! silence detector cannot — a falling or trailing intonation, a drawn-out filler — in about
//! 50–100 ms of one core.
//!
//! The audio is resampled to 16 kHz, the last 8 s kept (shorter audio is padded with silence
//! in front), turned into Whisper's log-mel features ([`crate::mel`]) and classified.
//! [`SmartTurnModel`] is loaded once and shared; each call borrows a session from its pool.

use crate::{SpeechError, mel, onnx};
use brazen_audio::Resampler;
use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The file name of the model in its installed directory (`smart-turn-v3.2`).
pub const SMART_TURN_FILE: &str = "smart-turn-v3.2-cpu.onnx";

/// Seconds of audio the model hears.
const WINDOW_S: usize = 8;

/// The loaded model, shared by every conversation.
pub struct SmartTurnModel {
    env: &'static Environment,
    bytes: Vec<u8>,
    pool: Mutex<Vec<Session>>,
}

impl SmartTurnModel {
    /// Loads the model file, running it on the ONNX Runtime library at `runtime`.
    pub fn load(model: &Path, runtime: &Path) -> Result<Arc<SmartTurnModel>, SpeechError> {
        let env = onnx::environment(runtime)?;
        let bad = |message: String| SpeechError::Model { path: model.display().to_string(), message };
        let bytes = std::fs::read(model).map_err(|e| bad(e.to_string()))?;
        let loaded = SmartTurnModel { env, bytes, pool: Mutex::new(Vec::new()) };
        let session = loaded.new_session().map_err(|e| bad(e.to_string()))?;
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        if inputs != ["input_features"] || outputs != ["logits"] {
            return Err(bad(format!("not a Smart Turn v3 model (inputs {inputs:?}, outputs {outputs:?})")));
        }
        loaded.pool.lock().unwrap_or_else(|e| e.into_inner()).push(session);
        Ok(Arc::new(loaded))
    }

    fn new_session(&self) -> Result<Session, ort::Error> {
        Session::builder(self.env)?
            .with_intra_threads(1)
            .map_err(ort::Error::<()>::from)?
            .with_intra_op_spinning(false)
            .map_err(ort::Error::<()>::from)?
            .commit_from_memory(&self.bytes)
    }

    /// The probability (0–1) that the speaker of `samples` (mono PCM at `rate` Hz, the turn so
    /// far up to the pause) has finished. Blocking: about 50–100 ms of one core.
    pub fn probability(&self, samples: &[i16], rate: u32) -> Result<f32, SpeechError> {
        let window = WINDOW_S * mel::RATE;
        // Only the tail matters: resample a little more than 8 s of it.
        let keep = (WINDOW_S as u64 * rate as u64 + rate as u64 / 10) as usize;
        let tail = &samples[samples.len().saturating_sub(keep)..];
        let audio16: Vec<i16> = if rate as usize == mel::RATE {
            tail.to_vec()
        } else {
            let mut resampler = Resampler::new(rate, mel::RATE as u32);
            let mut out = Vec::with_capacity(tail.len() * mel::RATE / rate.max(1) as usize + 16);
            resampler.process_i16(tail, &mut out);
            resampler.flush_i16(&mut out);
            out
        };
        let audio16 = &audio16[audio16.len().saturating_sub(window)..];
        let mut audio = vec![0.0f32; window - audio16.len()];
        audio.extend(audio16.iter().map(|&s| s as f32 / 32_768.0));
        let features = mel::log_mel(&audio);
        let frames = features.len() / mel::N_MELS;
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut session = match pooled {
            Some(s) => s,
            None => self.new_session()?,
        };
        let result = (|| {
            let outputs = session.run(
                ort::inputs!["input_features" => Tensor::from_array(([1usize, mel::N_MELS, frames], features))?],
            )?;
            let (_, p) = outputs["logits"].try_extract_tensor::<f32>()?;
            Ok::<f32, ort::Error>(p.first().copied().unwrap_or(0.0))
        })();
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(session);
        Ok(result?.clamp(0.0, 1.0))
    }
}
