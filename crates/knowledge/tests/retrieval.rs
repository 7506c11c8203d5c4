//! Retrieval quality on the retail agent's documents: spoken-style questions, each with the
//! document that answers it ([`RETAIL_QUESTIONS`]). The right document must come first for at
//! least 90 % of them and be among the first three documents for all.

mod common;
use brazen_knowledge::eval::{RETAIL_HELD_OUT, RETAIL_QUESTIONS, evaluate};
use brazen_knowledge::{KnowledgeBase, read_documents};
use std::path::Path;

fn retail() -> KnowledgeBase {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../agents/retail/knowledge");
    let docs = read_documents(&dir).unwrap();
    let names: Vec<&str> = docs.iter().map(|d| d.source.as_str()).collect();
    for (_, expected) in RETAIL_QUESTIONS.iter().chain(RETAIL_HELD_OUT) {
        assert!(names.contains(expected), "no document {expected}");
    }
    let kb = KnowledgeBase::build(common::embedder(), docs, None).unwrap();
    println!("{} documents, {} passages", kb.documents(), kb.chunks());
    kb
}

#[test]
fn spoken_questions_find_their_document() {
    let kb = retail();
    let e = evaluate(&kb, RETAIL_QUESTIONS).unwrap();
    let n = e.questions;
    println!("top-1 {}/{n} ({:.1} %), top-3 {}/{n}", e.top1, 100.0 * e.top1 as f64 / n as f64, e.top3);
    for m in &e.misses {
        println!("miss: {m}");
    }
    assert!(n >= 25);
    assert!(e.top1 * 10 >= n * 9, "top-1 {}/{n} is under 90 %:\n{}", e.top1, e.misses.join("\n"));
    assert_eq!(e.top3, n, "some documents are not in the top 3:\n{}", e.misses.join("\n"));
}

/// Questions written after the settings were chosen: a looser bar (they were not tuned for),
/// printed so a regression shows.
#[test]
fn held_out_questions_mostly_find_their_document() {
    let kb = retail();
    let e = evaluate(&kb, RETAIL_HELD_OUT).unwrap();
    let n = e.questions;
    println!("held out: top-1 {}/{n} ({:.1} %), top-3 {}/{n}", e.top1, 100.0 * e.top1 as f64 / n as f64, e.top3);
    for m in &e.misses {
        println!("miss: {m}");
    }
    assert!(e.top1 * 10 >= n * 8, "top-1 {}/{n} is under 80 %:\n{}", e.top1, e.misses.join("\n"));
    assert!(e.top3 * 10 >= n * 9, "top-3 {}/{n} is under 90 %:\n{}", e.top3, e.misses.join("\n"));
}
