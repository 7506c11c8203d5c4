//! An agent's knowledge base: its documents (Markdown or text files in the agent's folder) cut
//! into passages, each embedded with all-MiniLM-L6-v2 (a 6-layer BERT run on candle, CPU), and
//! searched by cosine similarity to a question.
//!
//! - [`Embedder`] loads the model from its directory in brazen's model store
//!   ([`Embedder::from_store`] names the fix when it is not installed) and turns texts into
//!   unit-length 384-dimensional vectors.
//! - [`read_documents`] reads an agent's folder; [`chunk_document`] cuts a document by its
//!   headings and paragraphs.
//! - [`KnowledgeBase::build`] embeds every passage, or loads the vectors from a cache file keyed
//!   by a hash of the model, the chunking and every document's name and text, and implements
//!   [`brazen_providers::Knowledge`]: passages ranked by cosine similarity, with a BM25 score
//!   for the query's exact words added ([`LEXICAL_WEIGHT`]).
//! - [`ToolRouter`] routes by meaning: which of an agent's tools a caller's words call for, from
//!   the agent's routing examples, as a [`brazen_providers::ToolPrior`] for the language model.
//!
//! ```no_run
//! use brazen_knowledge::{Embedder, KnowledgeBase, read_documents};
//! use brazen_providers::Knowledge;
//! use std::{path::Path, sync::Arc};
//!
//! let store = brazen_models::Store::new(brazen_models::Store::default_root());
//! let embedder = Arc::new(Embedder::from_store(&store)?);
//! let docs = read_documents(Path::new("agents/retail/knowledge"))?;
//! let kb = KnowledgeBase::build(embedder, docs, Some(Path::new("/var/cache/brazen/knowledge/retail")))?;
//! for p in kb.search("how long do I have to return something", 3)? {
//!     println!("{:.2} {} — {}", p.score, p.source, p.text);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod bert;
mod cache;
mod chunk;
mod documents;
mod embedder;
mod index;
mod lexical;
mod router;

pub mod eval;
pub use chunk::{CHUNKING_VERSION, Chunk, MAX_WORDS, MIN_WORDS, chunk_document, chunk_document_sized};
pub use documents::{Document, MAX_DOCUMENT_BYTES, MAX_DOCUMENTS, read_documents};
pub use embedder::{DIMENSIONS, Embedder, MAX_TOKENS, MODEL_NAME};
pub use index::{KnowledgeBase, MAX_PER_SOURCE, MAX_QUERY_CHARS};
pub use lexical::LEXICAL_WEIGHT;
pub use router::{DEFAULT_STRENGTH, FULL_LEAD, MAX_EXAMPLES, MIN_SIMILARITY, ToolRouter};

/// What can go wrong loading the model, reading documents, building the index or searching.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The embedding model is missing, damaged or not the expected architecture.
    #[error("embedding model {path}: {message}")]
    Model {
        /// Which file or directory.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Running the model failed.
    #[error("embedding: {0}")]
    Embedding(String),
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// What.
        source: std::io::Error,
    },
    /// A document cannot be indexed (too large, too many).
    #[error("document {source_name}: {message}")]
    Document {
        /// The document's file name (or the folder).
        source_name: String,
        /// Why.
        message: String,
    },
    /// The query cannot be searched (empty, too long).
    #[error("query: {0}")]
    Query(String),
}

impl KnowledgeError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        KnowledgeError::Io { path: path.display().to_string(), source }
    }
}

impl From<candle_core::Error> for KnowledgeError {
    fn from(e: candle_core::Error) -> Self {
        KnowledgeError::Embedding(e.to_string())
    }
}
