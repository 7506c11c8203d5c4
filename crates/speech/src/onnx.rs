//! The process's one ONNX Runtime environment.

use crate::SpeechError;
use ort::environment::Environment;
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime library's file name in its installed model directory (`onnxruntime`).
pub const LIBRARY: &str = "libonnxruntime.so.1.31.1";

static ENVIRONMENT: OnceLock<Result<(PathBuf, Environment), String>> = OnceLock::new();

/// The ONNX Runtime environment, loading the runtime from `library` on first use. ONNX Runtime
/// allows one environment per process, so later calls return the first one (and fail if they
/// name another library).
pub fn environment(library: &Path) -> Result<&'static Environment, SpeechError> {
    let loaded = ENVIRONMENT.get_or_init(|| {
        let builder = ort::init_from(library).map_err(|e| {
            format!("cannot load {}: {e}; run `brazen models install --only onnxruntime`", library.display())
        })?;
        builder.with_name("brazen").build().map(|env| (library.to_owned(), env)).map_err(|e| e.to_string())
    });
    match loaded {
        Ok((path, env)) if path == library => Ok(env),
        Ok((path, _)) => Err(SpeechError::Onnx(format!(
            "ONNX Runtime is already loaded from {}; cannot load {} too",
            path.display(),
            library.display()
        ))),
        Err(e) => Err(SpeechError::Onnx(e.clone())),
    }
}

/// A session for a synthesis model: two intra-op threads that sleep (rather than spin) between
/// runs, so a voice that runs in several steps, or beside Whisper, does not take the cores
/// from the next step. `model` names the file in errors.
pub(crate) fn synthesis_session(env: &'static Environment, graph: &[u8], model: &Path) -> Result<Session, SpeechError> {
    Session::builder(env)?
        .with_intra_threads(2)
        .map_err(ort::Error::<()>::from)?
        .with_intra_op_spinning(false)
        .map_err(ort::Error::<()>::from)?
        .commit_from_memory(graph)
        .map_err(|e| SpeechError::Model { path: model.display().to_string(), message: e.to_string() })
}
