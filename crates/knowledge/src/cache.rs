//! The index's vectors on disk: `index-<key>.bin` in the cache folder, where `<key>` is the
//! sha256 of everything the vectors depend on. The file holds only numbers (the passages are cut
//! again from the documents, which is quick), and ends with a sha256 of its contents: a file that
//! is truncated, altered or written by another version is rebuilt, never trusted.
//!
//! Layout (little-endian): `BRAZENKB`, format version u32, key (32 bytes), passages u64,
//! dimensions u32, the vectors (f32, passage after passage), sha256 of all that (32 bytes).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"BRAZENKB";
const FORMAT: u32 = 1;
const PREFIX: &str = "index-";
const SUFFIX: &str = ".bin";

/// The file a key's vectors are cached in.
pub(crate) fn path(dir: &Path, key: &[u8; 32]) -> PathBuf {
    dir.join(format!("{PREFIX}{}{SUFFIX}", hex(key)))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode(key: &[u8; 32], n: usize, dim: usize, vectors: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 4 + 32 + 8 + 4 + vectors.len() * 4 + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(n as u64).to_le_bytes());
    out.extend_from_slice(&(dim as u32).to_le_bytes());
    for v in vectors {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// The cached vectors for `key` (`n` × `dim`, flat), or why there are none usable.
pub(crate) fn load(dir: &Path, key: &[u8; 32], n: usize, dim: usize) -> Result<Vec<f32>, String> {
    let file = path(dir, key);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("no cache file".into()),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    let expected =
        n.checked_mul(dim).and_then(|v| v.checked_mul(4)).and_then(|v| v.checked_add(8 + 4 + 32 + 8 + 4 + 32));
    if Some(bytes.len()) != expected {
        return Err(format!("{} has {} bytes, not the {expected:?} expected", file.display(), bytes.len()));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err(format!("{} does not match its checksum", file.display()));
    }
    let header_ok = &body[..8] == MAGIC
        && body[8..12] == FORMAT.to_le_bytes()
        && &body[12..44] == key
        && body[44..52] == (n as u64).to_le_bytes()
        && body[52..56] == (dim as u32).to_le_bytes();
    if !header_ok {
        return Err(format!("{} was written for another index or format", file.display()));
    }
    let vectors: Vec<f32> = body[56..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    // Every vector is unit length: anything else was not written by this crate.
    for v in vectors.chunks_exact(dim.max(1)) {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !norm.is_finite() || (norm - 1.0).abs() > 1e-3 {
            return Err(format!("{} holds a vector that is not unit length", file.display()));
        }
    }
    Ok(vectors)
}

/// Writes the vectors for `key` (through a temporary file and a rename, so a reader never sees
/// half a file), then removes the folder's other index files: they belong to document sets that
/// are no longer current.
pub(crate) fn save(dir: &Path, key: &[u8; 32], n: usize, dim: usize, vectors: &[f32]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let target = path(dir, key);
    let tmp = dir.join(format!(".{PREFIX}{}.{}.tmp", hex(key), std::process::id()));
    std::fs::write(&tmp, encode(key, n, dim, vectors))?;
    if let Err(e) = std::fs::rename(&tmp, &target) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let keep = target.file_name().map(|n| n.to_owned());
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let Some(s) = name.to_str() else { continue };
        if s.starts_with(PREFIX) && s.ends_with(SUFFIX) && Some(&name) != keep.as_ref() {
            tracing::debug!(file = %s, "knowledge: removing a stale index");
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}
