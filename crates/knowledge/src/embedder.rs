//! all-MiniLM-L6-v2 sentence embeddings: WordPiece tokens (`tokenizer.json`, padding off,
//! truncated to [`MAX_TOKENS`]), the BERT encoder, mean pooling over real tokens, L2 norm.

use crate::KnowledgeError;
use crate::bert::{Bert, Config, mean_pool_normalised};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// The model's name in brazen's manifest (`brazen models install --only all-minilm-l6-v2`).
pub const MODEL_NAME: &str = "all-minilm-l6-v2";

/// Length of an embedding.
pub const DIMENSIONS: usize = 384;

/// Tokens per text, `[CLS]` and `[SEP]` included; the rest of a longer text is not read
/// (sentence-transformers' setting for this model).
pub const MAX_TOKENS: usize = 256;

/// Texts run through the encoder together when indexing (padding makes larger batches waste
/// work; texts are sorted by length first).
const BATCH: usize = 16;

/// Turns texts into unit-length vectors whose dot product is their cosine similarity.
/// Cheap to share (`Arc<Embedder>`): `embed` takes `&self` and may run on several threads.
pub struct Embedder {
    bert: Bert,
    tokenizer: Tokenizer,
    pool: rayon::ThreadPool,
    identity: String,
    texts_embedded: AtomicU64,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("identity", &self.identity).finish_non_exhaustive()
    }
}

fn model_error(path: &Path, message: impl std::fmt::Display) -> KnowledgeError {
    KnowledgeError::Model { path: path.display().to_string(), message: message.to_string() }
}

/// The sha256 of `file` as recorded by the model store's stamp (verified by `Store::require`),
/// else computed.
fn file_sha256(dir: &Path, file: &str) -> Result<String, KnowledgeError> {
    #[derive(serde::Deserialize)]
    struct StampFile {
        name: String,
        sha256: String,
    }
    #[derive(serde::Deserialize)]
    struct Stamp {
        files: Vec<StampFile>,
    }
    let stamp: Option<Stamp> =
        std::fs::read(dir.join("brazen-model.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(f) = stamp.and_then(|s| s.files.into_iter().find(|f| f.name == file)) {
        return Ok(f.sha256);
    }
    let path = dir.join(file);
    let mut hasher = Sha256::new();
    let mut reader = std::fs::File::open(&path).map_err(|e| KnowledgeError::io(&path, e))?;
    std::io::copy(&mut reader, &mut hasher).map_err(|e| KnowledgeError::io(&path, e))?;
    Ok(format!("{:x}", hasher.finalize()))
}

impl Embedder {
    /// Loads the model from the store's directory for [`MODEL_NAME`], or an error that names
    /// the command installing it.
    pub fn from_store(store: &brazen_models::Store) -> Result<Embedder, KnowledgeError> {
        let manifest = brazen_models::Manifest::builtin();
        let spec = manifest
            .get(MODEL_NAME)
            .ok_or_else(|| model_error(store.root(), format!("{MODEL_NAME} is not in the manifest")))?;
        let dir = store.require(spec).map_err(|e| model_error(&store.dir(spec), e))?;
        Embedder::load(&dir)
    }

    /// Loads `model.safetensors`, `config.json` and `tokenizer.json` from `dir`, computing on at
    /// most two threads (fewer when the machine has fewer cores).
    pub fn load(dir: &Path) -> Result<Embedder, KnowledgeError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Embedder::load_with_threads(dir, cores.min(2))
    }

    /// Like [`Embedder::load`], with the number of threads the matrix products may use (a pool
    /// of this embedder's own). candle's element-wise operations run on its process-wide pool
    /// (`CANDLE_NUM_THREADS`, which `brazen serve` sets for the LLM).
    pub fn load_with_threads(dir: &Path, threads: usize) -> Result<Embedder, KnowledgeError> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| KnowledgeError::io(&config_path, e))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| model_error(&config_path, e))?;
        config.check().map_err(|e| model_error(&config_path, e))?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| model_error(&tokenizer_path, e))?;
        // The shipped tokenizer pads every text to 128 tokens; padding would be averaged into
        // the embedding (MODELS.md §5), so batches are padded here, with a mask, instead.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| model_error(&tokenizer_path, e))?;

        let weights_path = dir.join("model.safetensors");
        if !weights_path.is_file() {
            return Err(model_error(&weights_path, "missing"));
        }
        let tensors =
            candle_core::safetensors::load(&weights_path, &Device::Cpu).map_err(|e| model_error(&weights_path, e))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        let bert = Bert::load(&config, vb).map_err(|e| model_error(&weights_path, e))?;
        if config.hidden_size != DIMENSIONS {
            return Err(model_error(&config_path, format!("hidden_size {} is not {DIMENSIONS}", config.hidden_size)));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("embed-{i}"))
            .build()
            .map_err(|e| KnowledgeError::Embedding(format!("cannot start threads: {e}")))?;
        let identity = format!(
            "{MODEL_NAME} weights {} tokenizer {} max_tokens {MAX_TOKENS} mean-pooled normalised",
            file_sha256(dir, "model.safetensors")?,
            file_sha256(dir, "tokenizer.json")?
        );
        Ok(Embedder { bert, tokenizer, pool, identity, texts_embedded: AtomicU64::new(0) })
    }

    /// What determines the vectors: the weights' and tokenizer's sha256 and the settings. Part
    /// of an index's cache key.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// How many texts this embedder has embedded since it was loaded (an index loaded from its
    /// cache adds none).
    pub fn texts_embedded(&self) -> u64 {
        self.texts_embedded.load(Ordering::Relaxed)
    }

    /// The number of tokens `text` is read as (at most [`MAX_TOKENS`]).
    pub fn token_count(&self, text: &str) -> Result<usize, KnowledgeError> {
        let encoding = self.tokenizer.encode(text, true).map_err(|e| KnowledgeError::Embedding(e.to_string()))?;
        Ok(encoding.get_ids().len())
    }

    /// One unit-length vector of [`DIMENSIONS`] numbers per text, in order. Texts longer than
    /// [`MAX_TOKENS`] tokens are read up to that length.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let mut encoded = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let encoding = self.tokenizer.encode(*text, true).map_err(|e| KnowledgeError::Embedding(e.to_string()))?;
            let ids = encoding.get_ids().to_vec();
            if ids.iter().any(|&id| id as usize >= self.bert.vocab_size) || ids.len() > self.bert.max_positions {
                return Err(KnowledgeError::Embedding("the tokenizer does not match the model".into()));
            }
            encoded.push((i, ids));
        }
        // Similar lengths together, so little of each batch is padding.
        encoded.sort_by_key(|(_, ids)| ids.len());
        let mut out = vec![Vec::new(); texts.len()];
        for batch in encoded.chunks(BATCH) {
            let vectors = self.pool.install(|| self.run(batch))?;
            for ((i, _), v) in batch.iter().zip(vectors) {
                out[*i] = v;
            }
        }
        self.texts_embedded.fetch_add(texts.len() as u64, Ordering::Relaxed);
        Ok(out)
    }

    fn run(&self, batch: &[(usize, Vec<u32>)]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let longest = batch.iter().map(|(_, ids)| ids.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * longest);
        let mut mask = Vec::with_capacity(batch.len() * longest);
        for (_, row) in batch {
            ids.extend_from_slice(row);
            mask.extend(std::iter::repeat_n(1u32, row.len()));
            ids.extend(std::iter::repeat_n(0u32, longest - row.len()));
            mask.extend(std::iter::repeat_n(0u32, longest - row.len()));
        }
        let shape = (batch.len(), longest);
        let ids = Tensor::from_vec(ids, shape, &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, shape, &Device::Cpu)?;
        let hidden = self.bert.forward(&ids, &mask)?;
        Ok(mean_pool_normalised(&hidden, &mask)?.to_vec2::<f32>()?)
    }
}
