//! Knowledge base benchmark (issue 17), over the retail agent's documents: model load, index
//! build cold (embedding every passage) and from its cache, and the latency of a search (query
//! embedding + ranking) over a few hundred spoken-style questions; retrieval hit rates; peak
//! memory.
//!
//! Run: `bench/knowledge.sh [--rounds N] [--threads N] [--docs DIR]` (release build). The model
//! is installed through the store first.

use brazen_knowledge::eval::{RETAIL_HELD_OUT, RETAIL_QUESTIONS, evaluate};
use brazen_knowledge::{Embedder, KnowledgeBase, MODEL_NAME, read_documents};
use brazen_models::{Manifest, Store, progress};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// The `p` quantile (0–1) of `v`, nearest rank.
fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(f64::NAN)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn summary(name: &str, ms: &[f64]) {
    println!(
        "{name:26} n {}, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms.len(),
        percentile(ms, 0.5),
        percentile(ms, 0.95),
        percentile(ms, 0.99),
        percentile(ms, 1.0)
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = arg("--rounds").and_then(|n| n.parse().ok()).unwrap_or(3);
    let threads: usize = arg("--threads").and_then(|n| n.parse().ok()).unwrap_or(2);
    let docs_dir = arg("--docs")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../agents/retail/knowledge"));

    let store = Store::new(Store::default_root());
    let model_dir = store.install(Manifest::builtin().get(MODEL_NAME).ok_or("no model")?, &progress())?;
    let t = Instant::now();
    let embedder = Arc::new(Embedder::load_with_threads(&model_dir, threads)?);
    println!("model load                 {:.0} ms ({threads} threads)", t.elapsed().as_secs_f64() * 1e3);

    let docs = read_documents(&docs_dir)?;
    let words: usize = docs.iter().map(|d| d.text.split_whitespace().count()).sum();
    let cache = std::env::temp_dir().join(format!("brazen-knowledge-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);

    let t = Instant::now();
    let kb = KnowledgeBase::build(embedder.clone(), docs.clone(), Some(&cache))?;
    let cold = t.elapsed().as_secs_f64();
    assert!(!kb.from_cache());
    let t = Instant::now();
    let cached = KnowledgeBase::build(embedder.clone(), docs.clone(), Some(&cache))?;
    let warm = t.elapsed().as_secs_f64();
    assert!(cached.from_cache());
    let _ = std::fs::remove_dir_all(&cache);
    println!("documents                  {} ({words} words), {} passages", kb.documents(), kb.chunks());
    println!(
        "index build, cold          {:.2} s ({:.1} ms a passage, cache written)",
        cold,
        cold * 1e3 / kb.chunks().max(1) as f64
    );
    println!("index build, cached        {:.1} ms (nothing embedded)", warm * 1e3);

    let questions: Vec<&str> = RETAIL_QUESTIONS.iter().chain(RETAIL_HELD_OUT).map(|(q, _)| *q).collect();
    for q in questions.iter().take(5) {
        kb.find(q, 3)?; // warm-up
    }
    let (mut search, mut embed) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for q in &questions {
            let t = Instant::now();
            let found = kb.find(q, 3)?;
            search.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(found.len(), 3);
            let t = Instant::now();
            embedder.embed(&[q])?;
            embed.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    summary("search (embed + rank), top 3", &search);
    summary("query embedding alone", &embed);

    let dev = evaluate(&kb, RETAIL_QUESTIONS)?;
    let held = evaluate(&kb, RETAIL_HELD_OUT)?;
    println!(
        "retrieval                  top-1 {}/{} and top-3 {}/{} (tuned set); top-1 {}/{} and top-3 {}/{} (held out)",
        dev.top1, dev.questions, dev.top3, dev.questions, held.top1, held.questions, held.top3, held.questions
    );
    println!("peak RSS                   {:.0} MiB", peak_rss_mib());
    Ok(())
}
