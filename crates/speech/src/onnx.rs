//! The process's one ONNX Runtime environment.

use crate::SpeechError;
use ort::environment::Environment;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
