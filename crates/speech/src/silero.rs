//! Silero VAD v6 (ONNX): a speech probability for every 512 samples (32 ms) at 16 kHz.
//!
//! The model is recurrent: each call takes the frame with the 64 samples before it as context,
//! and the LSTM state of the previous call, and returns the probability and the next state.
//! [`SileroModel`] is loaded once and shared; each conversation gets a [`SileroVad`] that holds
//! only its own state and borrows an ONNX Runtime session from the model's pool per frame, so a
//! thousand idle conversations cost a thousand small state vectors, not a thousand sessions.

use crate::{SpeechError, onnx};
use brazen_audio::Vad;
use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use std::path::Path;
use std::sync::{Arc, Mutex};

const RATE: u32 = 16_000;
const FRAME: usize = 512;
const CONTEXT: usize = 64;
const STATE: usize = 2 * 128;

/// The loaded model, shared by every conversation.
pub struct SileroModel {
    env: &'static Environment,
    bytes: Vec<u8>,
    pool: Mutex<Vec<Session>>,
}

impl SileroModel {
    /// Loads `silero_vad.onnx`, running it on the ONNX Runtime library at `runtime`.
    pub fn load(model: &Path, runtime: &Path) -> Result<Arc<SileroModel>, SpeechError> {
        let env = onnx::environment(runtime)?;
        let bad = |message: String| SpeechError::Model { path: model.display().to_string(), message };
        let bytes = std::fs::read(model).map_err(|e| bad(e.to_string()))?;
        let loaded = SileroModel { env, bytes, pool: Mutex::new(Vec::new()) };
        let session = loaded.new_session().map_err(|e| bad(e.to_string()))?;
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        if inputs != ["input", "state", "sr"] || outputs != ["output", "stateN"] {
            return Err(bad(format!("not a Silero VAD v6 model (inputs {inputs:?}, outputs {outputs:?})")));
        }
        loaded.give_back(session);
        Ok(Arc::new(loaded))
    }

    /// A detector for one conversation.
    pub fn detector(self: &Arc<Self>) -> SileroVad {
        SileroVad { model: self.clone(), state: vec![0.0; STATE], context: vec![0.0; CONTEXT], failures: 0 }
    }

    fn new_session(&self) -> Result<Session, ort::Error> {
        let mut builder = Session::builder(self.env)?.with_intra_threads(1).map_err(ort::Error::<()>::from)?;
        builder.commit_from_memory(&self.bytes)
    }

    fn take(&self) -> Result<Session, ort::Error> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(s) => Ok(s),
            None => self.new_session(),
        }
    }

    fn give_back(&self, session: Session) {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).push(session);
    }
}

/// The Silero voice-activity detector of one conversation (it keeps recurrent state).
pub struct SileroVad {
    model: Arc<SileroModel>,
    state: Vec<f32>,
    context: Vec<f32>,
    failures: u64,
}

impl SileroVad {
    /// Loads the model and returns a detector (for a single conversation; share a
    /// [`SileroModel`] for many).
    pub fn load(model: &Path, runtime: &Path) -> Result<SileroVad, SpeechError> {
        Ok(SileroModel::load(model, runtime)?.detector())
    }

    /// Frames whose inference failed (reported as probability 0).
    pub fn failures(&self) -> u64 {
        self.failures
    }

    fn infer(&mut self, frame: &[f32]) -> Result<f32, ort::Error> {
        let mut session = self.model.take()?;
        let result = self.run(&mut session, frame);
        self.model.give_back(session);
        result
    }

    fn run(&mut self, session: &mut Session, frame: &[f32]) -> Result<f32, ort::Error> {
        let mut input = Vec::with_capacity(CONTEXT + FRAME);
        input.extend_from_slice(&self.context);
        input.extend_from_slice(frame);
        let outputs = session.run(ort::inputs![
            "input" => Tensor::from_array(([1usize, CONTEXT + FRAME], input))?,
            "state" => Tensor::from_array(([2usize, 1, 128], self.state.clone()))?,
            "sr" => Tensor::from_array(((), vec![RATE as i64]))?,
        ])?;
        let (_, probability) = outputs["output"].try_extract_tensor::<f32>()?;
        let probability = probability.first().copied().unwrap_or(0.0);
        let (_, state) = outputs["stateN"].try_extract_tensor::<f32>()?;
        if state.len() == STATE {
            self.state.copy_from_slice(state);
        }
        Ok(probability)
    }
}

impl Vad for SileroVad {
    fn sample_rate(&self) -> u32 {
        RATE
    }

    fn frame_len(&self) -> usize {
        FRAME
    }

    fn process(&mut self, frame: &[f32]) -> f32 {
        if frame.len() != FRAME {
            self.failures += 1;
            return 0.0;
        }
        let probability = match self.infer(frame) {
            Ok(p) => p.clamp(0.0, 1.0),
            Err(_) => {
                self.failures += 1;
                0.0
            }
        };
        self.context.copy_from_slice(&frame[FRAME - CONTEXT..]);
        probability
    }

    fn reset(&mut self) {
        self.state.iter_mut().for_each(|x| *x = 0.0);
        self.context.iter_mut().for_each(|x| *x = 0.0);
    }
}
