use brazen_knowledge::Embedder;
use std::time::Instant;
fn main() {
    let dir = std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/brazen/models/all-minilm-l6-v2");
    let threads: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(1);
    let e = Embedder::load_with_threads(&dir, threads).unwrap();
    let q = "how long do I have to send something back";
    for _ in 0..5 { e.embed(&[q]).unwrap(); }
    let mut t: Vec<f64> = (0..50).map(|_| { let s = Instant::now(); e.embed(&[q]).unwrap(); s.elapsed().as_secs_f64()*1e3 }).collect();
    t.sort_by(f64::total_cmp);
    println!("threads {threads}: p50 {:.2} ms p90 {:.2} ms", t[25], t[45]);
}
