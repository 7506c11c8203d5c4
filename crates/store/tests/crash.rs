//! kill -9 during orders: a child process places orders from four tasks in a tight loop (so a
//! transaction is almost always in flight) and is SIGKILLed at a random moment after it has
//! placed some, several times; then every product's stock plus the units ordered must equal its
//! initial stock, and every order row must be whole.

mod common;

use brazen_store::testing::TestDb;
use brazen_store::{NewProduct, ProductFilter, Store};
use common::product;
use rand::Rng;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

backends!(killed_order_loops_leave_stock_consistent);

/// Runs the order loop until it has placed at least `after` orders, waits a random few
/// milliseconds more and kills it; returns the orders it reported.
fn run_and_kill(url: &str, products: &[NewProduct], after: u64) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_brazen-store-order-loop"))
        .arg(url)
        .arg("4")
        .args(products.iter().map(|p| p.id.as_str()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the order loop");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut placed = 0;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(n) = line.strip_prefix("placed ").and_then(|n| n.parse::<u64>().ok()) {
            placed = n;
            if n >= after {
                break;
            }
        }
    }
    assert!(placed >= after, "the order loop stopped after {placed} orders (see its stderr)");
    std::thread::sleep(Duration::from_micros(rand::rng().random_range(0..20_000)));
    child.kill().expect("SIGKILL the order loop");
    let status = child.wait().expect("reap the order loop");
    assert!(!status.success(), "it was killed, not finished");
    placed
}

async fn killed_order_loops_leave_stock_consistent(db: &TestDb, store: &Store) {
    // Large stocks, and one small one that runs out (its refusals are in the mix too).
    let products = vec![
        product("P001", "Apparel", 1999, 100_000),
        product("P002", "Apparel", 550, 100_000),
        product("P003", "Apparel", 12_000, 40),
    ];
    store.upsert_products(&products).await.unwrap();
    let mut reported = 0;
    for round in 0..8 {
        let after = rand::rng().random_range(10..60) + round * 10;
        let url = db.url.clone();
        let products = products.clone();
        reported += tokio::task::spawn_blocking(move || run_and_kill(&url, &products, after)).await.unwrap();
    }

    // A fresh store, as after a crash.
    let reopened = db.open().await.expect("reopen after kills");
    let orders = reopened.orders(500, 0).await.unwrap();
    let mut all = orders.items.clone();
    let mut offset = 500;
    while (all.len() as i64) < orders.total {
        all.extend(reopened.orders(500, offset).await.unwrap().items);
        offset += 500;
    }
    assert!(all.len() as u64 >= reported, "every order reported as placed was committed ({} < {reported})", all.len());
    for p in &products {
        let now = reopened.product(&p.id).await.unwrap().unwrap();
        let ordered: i64 = all.iter().filter(|o| o.product_id == p.id).map(|o| o.quantity).sum();
        assert_eq!(p.stock, now.stock + ordered, "{}: initial = current + ordered", p.id);
        assert!(now.stock >= 0);
    }
    let by_product = reopened.ordered_quantities().await.unwrap();
    let summed: i64 = by_product.iter().map(|(_, n)| n).sum();
    assert_eq!(summed, all.iter().map(|o| o.quantity).sum::<i64>());
    for o in &all {
        let p = products.iter().find(|p| p.id == o.product_id).expect("order of a known product");
        assert!(o.id.starts_with("ORD_") && o.id.len() == 12, "{o:?}");
        assert!((1..=3).contains(&o.quantity), "{o:?}");
        assert_eq!(o.unit_price_cents, p.price_cents, "{o:?}");
        assert_eq!(o.total_cents, o.unit_price_cents * o.quantity, "{o:?}");
        assert_eq!(o.product_name, p.name, "{o:?}");
        assert_eq!(o.status, "confirmed");
        assert_eq!(o.conversation_id.as_deref(), Some("crash-test"));
        assert!(o.created_at > 0);
    }
    // The database still takes orders.
    reopened.place_order("P001", 1, None).await.unwrap();
    assert!(reopened.products(&ProductFilter::default()).await.unwrap().total == 3);
    reopened.close().await;
}
