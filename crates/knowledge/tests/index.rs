//! The knowledge base: its cache (reused, invalidated, never trusted when damaged), search
//! results and errors.

mod common;
use brazen_knowledge::{Document, Embedder, KnowledgeBase, MAX_PER_SOURCE, MAX_QUERY_CHARS};
use brazen_providers::Knowledge;
use std::path::Path;
use std::sync::Arc;

fn docs() -> Vec<Document> {
    vec![
        Document::new(
            "returns.md",
            "# Returns\n\nItems can be returned within 30 days of delivery if unworn.\n\n## Labels\n\n\
             A return label costs $5.95.",
        ),
        Document::new("shipping.md", "# Shipping\n\nStandard shipping takes 3 to 5 business days."),
        Document::new("care.txt", "Wash wool sweaters by hand in cool water and dry them flat."),
    ]
}

fn index_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("index-"))
        .collect();
    v.sort();
    v
}

#[test]
fn the_cache_is_reused_invalidated_and_never_trusted_when_damaged() {
    // An embedder of its own: its counter sees only this test's work.
    let e = Arc::new(Embedder::load(&common::model_dir()).unwrap());
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("retail"); // created on first save

    let first = KnowledgeBase::build(e.clone(), docs(), Some(&dir)).unwrap();
    assert!(!first.from_cache());
    assert_eq!((first.documents(), first.chunks()), (3, 4));
    assert_eq!(e.texts_embedded(), 4);
    assert_eq!(index_files(&dir), vec![format!("index-{}.bin", first.key())]);

    // Same documents: loaded, nothing embedded, the same answers.
    let second = KnowledgeBase::build(e.clone(), docs(), Some(&dir)).unwrap();
    assert!(second.from_cache());
    assert_eq!(e.texts_embedded(), 4, "a cached index embeds nothing");
    assert_eq!(second.key(), first.key());
    let q = "how long does delivery take";
    let (a, b) = (first.find(q, 4).unwrap(), second.find(q, 4).unwrap());
    assert_eq!(a.len(), 4);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.source, &x.text, x.score), (&y.source, &y.text, y.score));
    }
    assert_eq!(a[0].source, "shipping.md");

    // A changed document: a new key, everything embedded again, the stale file removed.
    let mut changed = docs();
    changed[1].text = changed[1].text.replace("3 to 5", "2 to 4");
    let count = e.texts_embedded();
    let third = KnowledgeBase::build(e.clone(), changed.clone(), Some(&dir)).unwrap();
    assert!(!third.from_cache());
    assert_ne!(third.key(), first.key());
    assert_eq!(e.texts_embedded(), count + 4);
    assert_eq!(index_files(&dir), vec![format!("index-{}.bin", third.key())]);
    assert!(third.find(q, 1).unwrap()[0].text.contains("2 to 4"));

    // An added document, and a renamed one, change the key too.
    let mut added = changed.clone();
    added.push(Document::new("new.md", "Gift cards never expire."));
    let fourth = KnowledgeBase::build(e.clone(), added, Some(&dir)).unwrap();
    assert!(!fourth.from_cache() && fourth.key() != third.key());
    let mut renamed = changed.clone();
    renamed[2].source = "wool.txt".into();
    assert_ne!(KnowledgeBase::build(e.clone(), renamed, None).unwrap().key(), third.key());

    // Back to `changed`: rebuilt once, then cached.
    let again = KnowledgeBase::build(e.clone(), changed.clone(), Some(&dir)).unwrap();
    assert!(!again.from_cache());
    let file = dir.join(format!("index-{}.bin", again.key()));
    let good = std::fs::read(&file).unwrap();

    // One flipped bit in a vector: rebuilt, and the file rewritten.
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x01;
    std::fs::write(&file, &bad).unwrap();
    let count = e.texts_embedded();
    let rebuilt = KnowledgeBase::build(e.clone(), changed.clone(), Some(&dir)).unwrap();
    assert!(!rebuilt.from_cache());
    assert_eq!(e.texts_embedded(), count + 4);
    assert_eq!(std::fs::read(&file).unwrap(), good, "the damaged file is replaced");

    // Truncated, empty, or garbage with a valid-looking length: rebuilt.
    for damage in [good[..good.len() - 7].to_vec(), Vec::new(), vec![0u8; good.len()]] {
        std::fs::write(&file, &damage).unwrap();
        assert!(!KnowledgeBase::build(e.clone(), changed.clone(), Some(&dir)).unwrap().from_cache());
    }
    assert!(KnowledgeBase::build(e.clone(), changed.clone(), Some(&dir)).unwrap().from_cache());

    // A cache folder that cannot be created: built anyway, nothing cached.
    let not_a_dir = cache.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let kb = KnowledgeBase::build(e.clone(), changed.clone(), Some(&not_a_dir.join("sub"))).unwrap();
    assert!(!kb.from_cache() && kb.chunks() == 4);
}

#[test]
fn search_results_and_errors() {
    let kb = KnowledgeBase::build(common::embedder(), docs(), None).unwrap();
    let knowledge: &dyn Knowledge = &kb;
    let found = knowledge.search("  can I return something I never wore?  ", 2).unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].source, "returns.md");
    assert_eq!(found[0].title, "Returns");
    assert_eq!(found[0].text, "Items can be returned within 30 days of delivery if unworn.");
    assert!(found.iter().all(|p| (-1.0..=1.0).contains(&p.score)));
    assert!(found[0].score > 0.3, "cosine {}", found[0].score);

    let all = kb.find("wool", 100).unwrap();
    assert_eq!(all.len(), 4, "no more than there are");
    assert_eq!(all[0].source, "care.txt");
    assert_eq!(all[0].title, "care", "a text file's title is its name");
    assert!(kb.find("wool", 0).unwrap().is_empty());

    for bad in ["", "   \n\t"] {
        assert!(knowledge.search(bad, 3).unwrap_err().contains("empty"));
    }
    let long = "why ".repeat(MAX_QUERY_CHARS);
    assert!(knowledge.search(&long, 3).unwrap_err().contains("characters"));
    assert!(kb.find(&"é".repeat(MAX_QUERY_CHARS), 3).is_ok(), "characters are counted, not bytes");

    let empty = KnowledgeBase::build(common::embedder(), Vec::new(), None).unwrap();
    assert_eq!((empty.documents(), empty.chunks()), (0, 0));
    assert!(empty.find("anything", 3).unwrap().is_empty());
}

#[test]
fn one_document_does_not_crowd_out_the_others() {
    let mut text = String::from("# Returns\n");
    for i in 0..5 {
        text.push_str(&format!("\n## Returns rule {i}\n\nReturns rule {i}: items can be returned within 30 days.\n"));
    }
    let docs = vec![Document::new("returns.md", text), Document::new("shipping.md", "Shipping takes 3 days.")];
    let kb = KnowledgeBase::build(common::embedder(), docs, None).unwrap();
    let found = kb.find("can I return this", 3).unwrap();
    let from_returns = found.iter().filter(|p| p.source == "returns.md").count();
    assert_eq!(from_returns, MAX_PER_SOURCE, "{found:?}");
    assert!(found.iter().any(|p| p.source == "shipping.md"));
    // With nothing else to offer, one document fills the list.
    assert_eq!(kb.find("can I return this", 6).unwrap().len(), 6);
}

#[test]
fn the_default_cache_folder_is_one_per_agent_and_safe() {
    let retail = KnowledgeBase::default_cache_dir("retail");
    assert!(retail.ends_with("brazen/knowledge/retail"), "{}", retail.display());
    assert!(KnowledgeBase::default_cache_dir("../x").ends_with("knowledge/.._x"));
    assert!(KnowledgeBase::default_cache_dir("..").ends_with("knowledge/_.."));
    assert!(KnowledgeBase::default_cache_dir("").ends_with("knowledge/_"));
}
