//! Embeds the browser app (`web/dist`, built by `npm run build` in `web/`; or the folder
//! `BRAZEN_WEB_DIST` names) into the binary: a
//! generated table of every file's path, bytes and content type. Without a build there, the
//! table is empty and the server's page says how to build it.
//!
//! Also embeds the built-in agent (`agents/retail`: its `agent.toml`, every document of its
//! `knowledge` folder and its evaluation cases, `eval/cases.jsonl`).

use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-env-changed=BRAZEN_WEB_DIST");
    let dist =
        std::env::var_os("BRAZEN_WEB_DIST").map(PathBuf::from).unwrap_or_else(|| manifest.join("../../web/dist"));
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files);
    }
    files.sort();
    let mut out = String::from("/// The browser app's files: path (no leading slash), bytes, content type.\n");
    out.push_str("pub static FILES: &[(&str, &[u8], &str)] = &[\n");
    for (rel, abs) in &files {
        out.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?}), {:?}),\n",
            abs.display().to_string(),
            content_type(rel)
        ));
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("web_files.rs"), out).expect("OUT_DIR is writable");
    embed_agent(&manifest.join("../../agents/retail"), &out_dir.join("builtin_agent.rs"));
}

/// Writes the built-in agent's table: its `agent.toml`, its knowledge documents and its
/// evaluation cases.
fn embed_agent(dir: &Path, target: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let knowledge = dir.join("knowledge");
    println!("cargo:rerun-if-changed={}", knowledge.display());
    let toml = dir.join("agent.toml").canonicalize().expect("agents/retail/agent.toml exists");
    let mut docs: Vec<PathBuf> = std::fs::read_dir(&knowledge)
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    docs.sort();
    let mut out = String::from("/// The built-in agent's `agent.toml`.\n");
    out.push_str(&format!("pub static AGENT_TOML: &str = include_str!({:?});\n", toml.display().to_string()));
    out.push_str("/// The built-in agent's knowledge documents: file name, text.\n");
    out.push_str("pub static KNOWLEDGE: &[(&str, &str)] = &[\n");
    for doc in docs {
        let name = doc.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let abs = doc.canonicalize().unwrap_or(doc);
        out.push_str(&format!("    ({name:?}, include_str!({:?})),\n", abs.display().to_string()));
    }
    out.push_str("];\n");
    let cases = dir.join("eval").join("cases.jsonl");
    println!("cargo:rerun-if-changed={}", cases.display());
    let cases = cases.canonicalize().expect("agents/retail/eval/cases.jsonl exists");
    out.push_str("/// The built-in agent's evaluation cases (JSON lines, `brazen eval`).\n");
    out.push_str(&format!("pub static EVAL_CASES: &str = include_str!({:?});\n", cases.display().to_string()));
    std::fs::write(target, out).expect("OUT_DIR is writable");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            let abs = path.canonicalize().unwrap_or(path);
            out.push((rel, abs));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "wav" => "audio/wav",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}
