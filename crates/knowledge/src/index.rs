//! The knowledge base: every passage of an agent's documents with its vector, searched by
//! cosine similarity.

use crate::chunk::{CHUNKING_VERSION, Chunk, chunk_document};
use crate::embedder::{DIMENSIONS, Embedder};
use crate::lexical::{LEXICAL_WEIGHT, Lexicon};
use crate::{Document, KnowledgeError, cache, read_documents};
use brazen_providers::{Knowledge, Passage};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

/// The longest query searched, in characters (a spoken question is far shorter; the model reads
/// 256 tokens at most).
pub const MAX_QUERY_CHARS: usize = 1000;

/// At most this many passages of one document are returned while other documents have
/// passages left to offer, so a search answers from several documents when it can.
pub const MAX_PER_SOURCE: usize = 2;

/// An agent's documents, cut into passages and embedded; implements [`Knowledge`].
pub struct KnowledgeBase {
    embedder: Arc<Embedder>,
    chunks: Vec<Chunk>,
    /// One unit vector of [`DIMENSIONS`] per chunk, flat.
    vectors: Vec<f32>,
    lexicon: Lexicon,
    documents: usize,
    key: String,
    from_cache: bool,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("documents", &self.documents)
            .field("chunks", &self.chunks.len())
            .field("key", &self.key)
            .field("from_cache", &self.from_cache)
            .finish()
    }
}

/// sha256 over the model's identity, the chunking version, each document's name and text, and
/// the text embedded for each passage (so a change to chunking changes the key even if
/// [`CHUNKING_VERSION`] was not bumped). Each field goes in with its length, so no two sets
/// hash alike by moving a boundary.
fn cache_key(embedder: &Embedder, docs: &[Document], chunks: &[Chunk]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"brazen-knowledge index\n");
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(embedder.identity().as_bytes());
    field(&CHUNKING_VERSION.to_le_bytes());
    field(&(docs.len() as u64).to_le_bytes());
    for d in docs {
        field(d.source.as_bytes());
        field(d.text.as_bytes());
    }
    field(&(chunks.len() as u64).to_le_bytes());
    for c in chunks {
        field(c.embed_text.as_bytes());
    }
    h.finalize().into()
}

impl KnowledgeBase {
    /// Cuts `docs` into passages and embeds them, or, when `cache_dir` holds the vectors of
    /// exactly these documents for this model and chunking, loads them from there. After
    /// embedding, the vectors are written to `cache_dir` (created if needed) and the folder's
    /// other index files are removed, so give each agent a folder of its own. A cache file that
    /// is unreadable or damaged is ignored and rewritten; failing to write one is logged, not an
    /// error. Documents with the same `source` are both indexed.
    pub fn build(
        embedder: Arc<Embedder>,
        docs: Vec<Document>,
        cache_dir: Option<&Path>,
    ) -> Result<KnowledgeBase, KnowledgeError> {
        let chunks: Vec<Chunk> = docs.iter().flat_map(chunk_document).collect();
        let key = cache_key(&embedder, &docs, &chunks);
        let documents = docs.len();
        let n = chunks.len();
        let lexicon = Lexicon::new(chunks.iter().map(|c| c.embed_text.as_str()));
        if let Some(dir) = cache_dir {
            match cache::load(dir, &key, n, DIMENSIONS) {
                Ok(vectors) => {
                    tracing::info!(documents, chunks = n, dir = %dir.display(), "knowledge: index loaded from its cache");
                    return Ok(KnowledgeBase {
                        embedder,
                        chunks,
                        vectors,
                        lexicon,
                        documents,
                        key: cache::hex(&key),
                        from_cache: true,
                    });
                }
                Err(why) => tracing::info!(dir = %dir.display(), "knowledge: embedding the documents ({why})"),
            }
        }
        let texts: Vec<&str> = chunks.iter().map(|c| c.embed_text.as_str()).collect();
        let vectors: Vec<f32> = embedder.embed(&texts)?.into_iter().flatten().collect();
        if vectors.len() != n * DIMENSIONS {
            return Err(KnowledgeError::Embedding(format!("{} numbers for {n} passages", vectors.len())));
        }
        if let Some(dir) = cache_dir
            && let Err(e) = cache::save(dir, &key, n, DIMENSIONS, &vectors)
        {
            tracing::warn!(dir = %dir.display(), "knowledge: cannot cache the index: {e}");
        }
        Ok(KnowledgeBase { embedder, chunks, vectors, lexicon, documents, key: cache::hex(&key), from_cache: false })
    }

    /// Where an agent's index is cached unless configured otherwise:
    /// `$XDG_CACHE_HOME/brazen/knowledge/<agent>`, else `~/.cache/brazen/knowledge/<agent>`
    /// (characters other than letters, digits, `-`, `_` and `.` in the agent's name become `_`).
    pub fn default_cache_dir(agent: &str) -> std::path::PathBuf {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| std::path::PathBuf::from(".cache"));
        let mut name: String =
            agent.chars().map(|c| if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
        if name.is_empty() || name.chars().all(|c| c == '.') {
            name = format!("_{name}");
        }
        cache.join("brazen").join("knowledge").join(name)
    }

    /// [`read_documents`] from `dir`, then [`KnowledgeBase::build`].
    pub fn from_folder(
        embedder: Arc<Embedder>,
        dir: &Path,
        cache_dir: Option<&Path>,
    ) -> Result<KnowledgeBase, KnowledgeError> {
        KnowledgeBase::build(embedder, read_documents(dir)?, cache_dir)
    }

    /// How many documents were indexed.
    pub fn documents(&self) -> usize {
        self.documents
    }

    /// How many passages the documents were cut into.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// The passages, in document order.
    pub fn passages(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Whether the vectors came from the cache (nothing was embedded).
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// The index's content hash (hex): the cache file is `index-<key>.bin`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The embedder the index was built with.
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.embedder
    }

    /// The `limit` passages most relevant to `query`, best first. Relevance is the cosine
    /// similarity of the query's and the passage's embeddings plus [`LEXICAL_WEIGHT`] times the
    /// passage's BM25 score for the query's words (scaled so the best passage scores 1); each
    /// passage's `score` is its cosine similarity alone. While other documents have passages
    /// to offer, at most [`MAX_PER_SOURCE`] come from one document. An empty query or one over
    /// [`MAX_QUERY_CHARS`] characters is an error; `limit` 0 finds nothing.
    pub fn find(&self, query: &str, limit: usize) -> Result<Vec<Passage>, KnowledgeError> {
        let query = query.trim();
        if query.is_empty() {
            return Err(KnowledgeError::Query("the query is empty".into()));
        }
        let chars = query.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(KnowledgeError::Query(format!(
                "the query has {chars} characters; at most {MAX_QUERY_CHARS} are searched"
            )));
        }
        if limit == 0 || self.chunks.is_empty() {
            return Ok(Vec::new());
        }
        let q = self.embedder.embed(&[query])?.pop().unwrap_or_default();
        if q.len() != DIMENSIONS {
            return Err(KnowledgeError::Embedding(format!("the query's vector has {} numbers", q.len())));
        }
        let cosines: Vec<f32> =
            self.vectors.chunks_exact(DIMENSIONS).map(|v| v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>()).collect();
        let lexical = self.lexicon.scores(query);
        // (passage, relevance)
        let mut scored: Vec<(usize, f32)> =
            cosines.iter().zip(&lexical).map(|(c, l)| c + LEXICAL_WEIGHT * l).enumerate().collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));

        let mut picked: Vec<(usize, f32)> = Vec::with_capacity(limit);
        let mut passed_over = Vec::new();
        let mut per_source: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for &(i, score) in &scored {
            if picked.len() == limit {
                break;
            }
            let count = per_source.entry(self.chunks[i].source.as_str()).or_default();
            if *count < MAX_PER_SOURCE {
                *count += 1;
                picked.push((i, score));
            } else {
                passed_over.push((i, score));
            }
        }
        // Too few documents to fill `limit` otherwise: the best of the rest.
        let missing = limit.saturating_sub(picked.len());
        picked.extend(passed_over.into_iter().take(missing));
        picked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(picked
            .into_iter()
            .map(|(i, _)| {
                let c = &self.chunks[i];
                Passage { source: c.source.clone(), title: c.title.clone(), text: c.text.clone(), score: cosines[i] }
            })
            .collect())
    }
}

impl Knowledge for KnowledgeBase {
    fn search(&self, query: &str, limit: usize) -> Result<Vec<Passage>, String> {
        self.find(query, limit).map_err(|e| e.to_string())
    }
}
