//! An agent's documents: the `*.md` and `*.txt` files of one folder.

use crate::KnowledgeError;
use std::path::Path;

/// The largest document indexed, in bytes (a policy is a few KiB; a bigger file is most likely
/// not meant for the knowledge base, and would make start-up slow).
pub const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;

/// The most documents one folder may hold.
pub const MAX_DOCUMENTS: usize = 10_000;

/// A document of an agent's knowledge base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Its file name within the folder (`returns-policy.md`): what a passage's `source` names.
    pub source: String,
    /// Its text (Markdown or plain text).
    pub text: String,
}

impl Document {
    /// A document from a name and a text.
    pub fn new(source: impl Into<String>, text: impl Into<String>) -> Document {
        Document { source: source.into(), text: text.into() }
    }
}

fn is_document(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.') && [".md", ".markdown", ".txt"].iter().any(|ext| lower.ends_with(ext))
}

/// Reads the `*.md`, `*.markdown` and `*.txt` files directly in `dir` (not its subfolders;
/// hidden files are skipped), sorted by file name. A file over [`MAX_DOCUMENT_BYTES`] is an
/// error naming it; a file that is not UTF-8 is skipped with a warning; an empty file is
/// skipped.
pub fn read_documents(dir: &Path) -> Result<Vec<Document>, KnowledgeError> {
    let entries = std::fs::read_dir(dir).map_err(|e| KnowledgeError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| KnowledgeError::io(dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            tracing::warn!(file = ?entry.file_name(), "knowledge: skipping a file whose name is not UTF-8");
            continue;
        };
        if !is_document(&name) {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links: a linked document is indexed like a copied one.
        let meta = std::fs::metadata(&path).map_err(|e| KnowledgeError::io(&path, e))?;
        if !meta.is_file() {
            continue;
        }
        if meta.len() > MAX_DOCUMENT_BYTES {
            return Err(KnowledgeError::Document {
                source_name: name,
                message: format!(
                    "{} bytes; documents over {} KiB are not indexed (split it into smaller files)",
                    meta.len(),
                    MAX_DOCUMENT_BYTES / 1024
                ),
            });
        }
        files.push((name, path));
        if files.len() > MAX_DOCUMENTS {
            return Err(KnowledgeError::Document {
                source_name: dir.display().to_string(),
                message: format!("more than {MAX_DOCUMENTS} documents"),
            });
        }
    }
    files.sort();
    let mut docs = Vec::with_capacity(files.len());
    for (name, path) in files {
        let bytes = std::fs::read(&path).map_err(|e| KnowledgeError::io(&path, e))?;
        // The size was checked above; the file may have grown since.
        if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
            return Err(KnowledgeError::Document {
                source_name: name,
                message: format!("grew past {} KiB while being read", MAX_DOCUMENT_BYTES / 1024),
            });
        }
        match String::from_utf8(bytes) {
            Ok(text) if text.trim().is_empty() => tracing::warn!(file = %name, "knowledge: skipping an empty document"),
            Ok(text) => docs.push(Document { source: name, text: text.trim_start_matches('\u{feff}').to_owned() }),
            Err(_) => tracing::warn!(file = %name, "knowledge: skipping a document that is not UTF-8 text"),
        }
    }
    Ok(docs)
}
