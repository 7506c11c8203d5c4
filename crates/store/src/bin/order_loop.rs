//! A test helper (not part of brazen): places orders in a tight loop against the database at
//! `argv[1]` from `argv[2]` concurrent tasks, on the products listed in the remaining arguments,
//! printing `placed N` after each order, until it is killed. The crash test SIGKILLs it while
//! its transactions are in flight.

use brazen_store::{OrderError, Store};
use rand::Rng;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: brazen-store-order-loop URL TASKS PRODUCT_ID...");
        std::process::exit(2);
    }
    let store = match Store::open(&args[1]).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let tasks: usize = args[2].parse().unwrap_or(4);
    let products: Arc<Vec<String>> = Arc::new(args[3..].to_vec());
    let placed = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (store, products, placed) = (store.clone(), products.clone(), placed.clone());
        handles.push(tokio::spawn(async move {
            loop {
                let (product, quantity) = {
                    let mut rng = rand::rng();
                    (products[rng.random_range(0..products.len())].clone(), rng.random_range(1..=3))
                };
                match store.place_order(&product, quantity, Some("crash-test")).await {
                    Ok(_) => {
                        let n = placed.fetch_add(1, Ordering::Relaxed) + 1;
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "placed {n}");
                        let _ = out.flush();
                    }
                    Err(OrderError::OutOfStock { .. }) => tokio::task::yield_now().await,
                    Err(e) => {
                        eprintln!("order failed: {e}");
                        std::process::exit(1);
                    }
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}
