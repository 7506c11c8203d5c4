//! Tool round trip inside brazen (issue 17): each database tool of the retail agent called
//! through the `Tools` trait (arguments parsed, the database queried or written, the answer's
//! JSON made), as the session's driver calls it. p50 / p95 / p99 per tool over `--n` calls on
//! SQLite (a file, WAL), and on PostgreSQL when `BRAZEN_BENCH_POSTGRES_URL` names one.
//!
//!   cargo run --release -p brazen-retail --example retail-bench -- [--n 1000]

use brazen_providers::{ToolCall, ToolEvent, Tools};
use brazen_retail::RetailTools;
use brazen_store::Store;
use futures_util::StreamExt;
use std::time::Instant;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn call(tools: &RetailTools, name: &str, arguments: String) -> (f64, String) {
    let started = Instant::now();
    let event = tools
        .call(ToolCall { call_id: "c".into(), name: name.into(), arguments, session_id: "sess_bench".into() })
        .next()
        .await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match event {
        Some(ToolEvent::Done(out)) => (ms, out),
        other => panic!("{name} failed: {other:?}"),
    }
}

async fn run(label: &str, store: Store, n: usize) {
    brazen_retail::seed(&store).await.expect("seeded");
    let tools = RetailTools::new(store, None, None);
    let categories = brazen_retail::CATEGORIES;
    let mut results: Vec<(&str, Vec<f64>)> = Vec::new();
    let mut by_category = Vec::new();
    let mut search = Vec::new();
    let mut order = Vec::new();
    let mut ship = Vec::new();
    let mut status = Vec::new();
    for i in 0..n {
        let category = categories[i % categories.len()];
        by_category.push(call(&tools, "get_products_by_category", format!(r#"{{"category":"{category}"}}"#)).await.0);
        let price = 20 + (i % 8) * 15;
        let args = format!(r#"{{"category":"{category}","price":{price}}}"#);
        search.push(call(&tools, "search_products_by_category_and_price", args).await.0);
        // P001–P072 with stock to spare is not guaranteed: restock-free products are skipped by
        // ordering one of the well-stocked ones in turn.
        let product = format!("P{:03}", 1 + (i % 72));
        let (ms, out) = call(&tools, "order_products", format!(r#"{{"product_id":"{product}","quantity":1}}"#)).await;
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        let Some(order_id) = value["OrderId"].as_str().map(str::to_owned) else { continue };
        order.push(ms);
        let args = format!(r#"{{"order_id":"{order_id}","destination":"{i} Main Street, Springfield IL 62704"}}"#);
        ship.push(call(&tools, "create_delivery_order", args).await.0);
        status.push(call(&tools, "get_order_status", format!(r#"{{"order_id":"{order_id}"}}"#)).await.0);
    }
    results.push(("get_products_by_category", by_category));
    results.push(("search_products_by_category_and_price", search));
    results.push(("order_products", order));
    results.push(("create_delivery_order", ship));
    results.push(("get_order_status", status));
    println!("{label}");
    let mut all = Vec::new();
    for (name, mut ms) in results {
        ms.sort_by(f64::total_cmp);
        println!(
            "  {name:<38} n {:>5}  p50 {:6.2} ms  p95 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms",
            ms.len(),
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            percentile(&ms, 0.99),
            ms[ms.len() - 1]
        );
        all.extend(ms);
    }
    all.sort_by(f64::total_cmp);
    println!(
        "  {:<38} n {:>5}  p50 {:6.2} ms  p99 {:6.2} ms",
        "all database tools",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n =
        args.iter().position(|a| a == "--n").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(1000);
    let dir = std::env::temp_dir().join(format!("brazen-retail-bench-{}", std::process::id()));
    let url = Store::default_url(&dir);
    run(&format!("SQLite ({url})"), Store::open(&url).await.expect("sqlite"), n).await;
    std::fs::remove_dir_all(&dir).ok();
    if let Ok(url) = std::env::var("BRAZEN_BENCH_POSTGRES_URL") {
        run("PostgreSQL", Store::open(&url).await.expect("postgres"), n).await;
    }
}
