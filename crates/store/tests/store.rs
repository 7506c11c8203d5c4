//! The store's behaviour, on SQLite and PostgreSQL alike.

mod common;

use brazen_store::testing::TestDb;
use brazen_store::{
    AnalysisStatus, CallAnalysis, ClientSecret, Entry, EntryKind, EntryRole, MAX_ANALYSIS_ATTEMPTS, OrderError,
    ProductFilter, ShipmentError, Store, StoreError,
};
use common::{product, stock};

backends!(
    migrations_are_idempotent_on_reopen,
    seeding_is_idempotent_and_keeps_stock,
    an_order_takes_stock_and_totals,
    refused_orders_write_nothing,
    concurrent_orders_sell_exactly_the_last_units,
    shipments_are_validated_and_unique_per_order,
    conversation_entries_upsert_in_order,
    analyses_go_pending_failed_done,
    lists_are_paged_and_filtered,
    client_secrets_are_taken_once_before_they_expire,
);

async fn migrations_are_idempotent_on_reopen(db: &TestDb, store: &Store) {
    assert_eq!(store.schema_version().await.unwrap(), 2);
    store.upsert_products(&[product("P001", "Apparel", 1000, 5)]).await.unwrap();
    for _ in 0..3 {
        let again = db.open().await.expect("reopen");
        assert_eq!(again.schema_version().await.unwrap(), 2);
        assert_eq!(again.migrations_applied().await.unwrap(), 2);
        assert_eq!(stock(&again, "P001").await, 5, "reopening keeps the data");
        again.close().await;
    }
}

async fn seeding_is_idempotent_and_keeps_stock(_: &TestDb, store: &Store) {
    let seed = vec![product("P001", "Apparel", 1000, 5), product("P002", "Apparel", 2000, 7)];
    store.upsert_products(&seed).await.unwrap();
    store.place_order("P001", 2, None).await.unwrap();
    let mut changed = seed.clone();
    changed[0].price_cents = 1200;
    changed[0].name = "Renamed".into();
    changed[0].stock = 99;
    store.upsert_products(&changed).await.unwrap();
    store.upsert_products(&changed).await.unwrap();
    let p = store.product("P001").await.unwrap().unwrap();
    assert_eq!((p.name.as_str(), p.price_cents, p.stock), ("Renamed", 1200, 3), "stock kept, details updated");
    assert_eq!(stock(store, "P002").await, 7);
    assert_eq!(store.products(&ProductFilter::default()).await.unwrap().total, 2);
    let bad = product("", "Apparel", 1, 1);
    assert!(matches!(store.upsert_products(&[bad]).await, Err(StoreError::Invalid(_))));
}

async fn an_order_takes_stock_and_totals(_: &TestDb, store: &Store) {
    store.upsert_products(&[product("P001", "Apparel", 1999, 10)]).await.unwrap();
    let order = store.place_order("P001", 3, Some("conv-1")).await.unwrap();
    assert!(order.id.starts_with("ORD_") && order.id.len() == 12, "{}", order.id);
    assert!(order.id[4..].chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    assert_eq!((order.quantity, order.unit_price_cents, order.total_cents), (3, 1999, 5997));
    assert_eq!(order.product_name, "Product P001");
    assert_eq!(order.status, "confirmed");
    assert_eq!(stock(store, "P001").await, 7);
    assert_eq!(store.order(&order.id).await.unwrap(), Some(order.clone()));
    let json = order.tool_json();
    assert_eq!(json["OrderId"], order.id.as_str());
    assert_eq!(json["Price"], 19.99);
    assert_eq!(json["Total"], 59.97);
    assert_eq!(json["Quantity"], 3);
    assert_eq!(store.order("ORD_NOPE").await.unwrap(), None);
    // The whole stock can be bought.
    store.place_order("P001", 7, None).await.unwrap();
    assert_eq!(stock(store, "P001").await, 0);
}

async fn refused_orders_write_nothing(_: &TestDb, store: &Store) {
    store.upsert_products(&[product("P001", "Apparel", 500, 2)]).await.unwrap();
    match store.place_order("P001", 3, None).await {
        Err(e @ OrderError::OutOfStock { available: 2, requested: 3, .. }) => {
            assert!(e.to_string().contains("Only 2"), "{e}")
        }
        other => panic!("expected out of stock, got {other:?}"),
    }
    assert!(matches!(store.place_order("P999", 1, None).await, Err(OrderError::UnknownProduct(id)) if id == "P999"));
    assert!(matches!(store.place_order("P001", 0, None).await, Err(OrderError::BadQuantity(0))));
    assert!(matches!(store.place_order("P001", -4, None).await, Err(OrderError::BadQuantity(-4))));
    assert!(matches!(store.place_order("P001", 101, None).await, Err(OrderError::BadQuantity(101))));
    assert_eq!(stock(store, "P001").await, 2);
    assert_eq!(store.orders(10, 0).await.unwrap().total, 0);
}

async fn concurrent_orders_sell_exactly_the_last_units(_: &TestDb, store: &Store) {
    store.upsert_products(&[product("P001", "Apparel", 100, 5)]).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.place_order("P001", 1, None).await })
        })
        .collect();
    let (mut sold, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => sold += 1,
            Err(OrderError::OutOfStock { .. }) => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((sold, refused), (5, 15));
    assert_eq!(stock(store, "P001").await, 0);
    assert_eq!(store.orders(100, 0).await.unwrap().total, 5);
}

async fn shipments_are_validated_and_unique_per_order(_: &TestDb, store: &Store) {
    store.upsert_products(&[product("P001", "Apparel", 100, 5)]).await.unwrap();
    let order = store.place_order("P001", 1, None).await.unwrap();
    assert!(matches!(
        store.create_shipment("ORD_MISSING", "12 Main St, Seattle").await,
        Err(ShipmentError::UnknownOrder(id)) if id == "ORD_MISSING"
    ));
    match store.create_shipment(&order.id, "   ").await {
        Err(ShipmentError::BadDestination(m)) => assert!(m.contains("empty"), "{m}"),
        other => panic!("{other:?}"),
    }
    match store.create_shipment(&order.id, "Paris").await {
        Err(ShipmentError::BadDestination(m)) => assert!(m.contains("too short"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.shipment_for_order(&order.id).await.unwrap(), None, "refused shipments write nothing");
    assert_eq!(store.order(&order.id).await.unwrap().unwrap().status, "confirmed");

    let shipment = store.create_shipment(&order.id, "  12 main   st, seattle, wa 98101 ").await.unwrap();
    assert_eq!(shipment.destination, "12 Main St, Seattle, WA 98101");
    assert!(shipment.tracking_id.starts_with("TRK") && shipment.tracking_id.len() == 13);
    assert_eq!(shipment.order_id, order.id);
    assert_eq!(shipment.status, "processing");
    assert_eq!(shipment.estimated_delivery.len(), 10);
    assert_eq!(store.order(&order.id).await.unwrap().unwrap().status, "shipping");
    // A second request returns the same shipment.
    let again = store.create_shipment(&order.id, "1 Other Road, Boston").await.unwrap();
    assert_eq!(again, shipment);
    assert_eq!(store.shipment_for_order(&order.id).await.unwrap(), Some(shipment.clone()));
    let (o, s) = store.order_status(&order.id).await.unwrap().unwrap();
    assert_eq!((o.id.as_str(), s), (order.id.as_str(), Some(shipment.clone())));
    assert_eq!(store.shipments(10, 0).await.unwrap().total, 1);
    assert_eq!(shipment.tool_json()["TrackingId"], shipment.tracking_id.as_str());
}

fn entry(seq: i64, role: EntryRole, kind: EntryKind, text: &str) -> Entry {
    Entry { seq, at_ms: 1000 + seq, role, kind, name: None, call_id: None, text: text.into() }
}

async fn conversation_entries_upsert_in_order(_: &TestDb, store: &Store) {
    store.start_conversation("c1", "sess_1", "retail", 1000).await.unwrap();
    store.start_conversation("c1", "sess_other", "other", 5).await.unwrap(); // no change
    store.append_entry("c1", &entry(2, EntryRole::Assistant, EntryKind::Message, "Hello!")).await.unwrap();
    store.append_entry("c1", &entry(0, EntryRole::User, EntryKind::Message, "Hi")).await.unwrap();
    let mut call = entry(1, EntryRole::Assistant, EntryKind::FunctionCall, "{\"category\":\"");
    call.name = Some("get_products_by_category".into());
    call.call_id = Some("call_1".into());
    store.append_entry("c1", &call).await.unwrap();
    call.text = "{\"category\":\"Apparel\"}".into();
    store.append_entry("c1", &call).await.unwrap();
    // A NUL a client sent is stored (PostgreSQL refuses it in text) as U+FFFD.
    store.append_entry("c1", &entry(3, EntryRole::User, EntryKind::Message, "nul\0here")).await.unwrap();
    store.end_conversation("c1", 9000).await.unwrap();

    let detail = store.conversation("c1").await.unwrap().unwrap();
    assert_eq!(detail.conversation.session_id, "sess_1");
    assert_eq!(detail.conversation.ended_at, Some(9000));
    assert_eq!(detail.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert_eq!(detail.entries[3].text, "nul\u{FFFD}here");
    assert_eq!(detail.entries[1], call, "the rewritten entry replaced the first");
    assert_eq!(detail.entries[0].role, EntryRole::User);
    assert_eq!(detail.analysis, None);

    assert!(matches!(
        store.append_entry("nope", &entry(0, EntryRole::User, EntryKind::Message, "x")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(store.end_conversation("nope", 1).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.conversation("nope").await.unwrap(), None);
    let list = store.conversations(10, 0).await.unwrap();
    assert_eq!((list.total, list.items[0].entries, list.items[0].analysis_status), (1, 4, None));
    let json = serde_json::to_value(&detail).unwrap();
    assert_eq!(json["session_id"], "sess_1");
    assert_eq!(json["entries"][1]["kind"], "function_call");
}

fn sample_analysis(rating: i64) -> CallAnalysis {
    CallAnalysis {
        call_reason: "Order a winter coat".into(),
        customer_satisfaction: "satisfied".into(),
        customer_sentiment: "positive".into(),
        rating,
        rating_justification: "The order was placed quickly.".into(),
        product: "P001".into(),
    }
}

async fn analyses_go_pending_failed_done(_: &TestDb, store: &Store) {
    store.start_conversation("c1", "s1", "retail", 1).await.unwrap();
    store.start_conversation("c2", "s2", "retail", 2).await.unwrap();
    assert!(matches!(store.mark_analysis_pending("nope").await, Err(StoreError::NotFound(_))));
    store.mark_analysis_pending("c1").await.unwrap();
    store.mark_analysis_pending("c2").await.unwrap();
    assert_eq!(store.pending_analyses().await.unwrap(), vec!["c1".to_owned(), "c2".to_owned()]);
    let a = store.analysis("c1").await.unwrap().unwrap();
    assert_eq!((a.status, a.attempts, a.analysis), (AnalysisStatus::Pending, 0, None));

    for attempt in 1..=MAX_ANALYSIS_ATTEMPTS {
        store.record_analysis_failure("c1", &format!("model failed {attempt}")).await.unwrap();
        let a = store.analysis("c1").await.unwrap().unwrap();
        assert_eq!((a.status, a.attempts), (AnalysisStatus::Failed, attempt));
        assert_eq!(a.last_error.as_deref(), Some(format!("model failed {attempt}").as_str()));
        let pending = store.pending_analyses().await.unwrap();
        assert_eq!(pending.contains(&"c1".to_owned()), attempt < MAX_ANALYSIS_ATTEMPTS, "after {attempt} failures");
    }

    assert!(matches!(store.record_analysis("c2", &sample_analysis(6)).await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.record_analysis("c2", &sample_analysis(0)).await, Err(StoreError::Invalid(_))));
    store.record_analysis("c2", &sample_analysis(4)).await.unwrap();
    let a = store.analysis("c2").await.unwrap().unwrap();
    assert_eq!((a.status, a.attempts, a.last_error), (AnalysisStatus::Done, 1, None));
    assert_eq!(a.analysis, Some(sample_analysis(4)));
    store.mark_analysis_pending("c2").await.unwrap();
    assert_eq!(store.analysis("c2").await.unwrap().unwrap().status, AnalysisStatus::Done, "done stays done");
    assert!(store.pending_analyses().await.unwrap().is_empty());

    // A failed analysis that finally succeeds.
    store.record_analysis("c1", &sample_analysis(2)).await.unwrap();
    let a = store.analysis("c1").await.unwrap().unwrap();
    assert_eq!((a.status, a.attempts, a.last_error), (AnalysisStatus::Done, MAX_ANALYSIS_ATTEMPTS + 1, None));
    let list = store.conversations(10, 0).await.unwrap();
    let c1 = list.items.iter().find(|c| c.conversation.id == "c1").unwrap();
    assert_eq!((c1.analysis_status, c1.rating), (Some(AnalysisStatus::Done), Some(2)));
    assert_eq!(c1.customer_sentiment.as_deref(), Some("positive"));
    let detail = store.conversation("c2").await.unwrap().unwrap();
    assert_eq!(detail.analysis.unwrap().analysis.unwrap().rating, 4);
    // An analysis recorded directly (on-demand) needs only the conversation.
    store.start_conversation("c3", "s3", "retail", 3).await.unwrap();
    store.record_analysis_failure("c3", "boom").await.unwrap();
    assert_eq!(store.analysis("c3").await.unwrap().unwrap().attempts, 1);
    assert!(matches!(store.record_analysis_failure("nope", "x").await, Err(StoreError::NotFound(_))));
}

async fn lists_are_paged_and_filtered(_: &TestDb, store: &Store) {
    let mut products = Vec::new();
    for i in 0..12 {
        let category = if i % 2 == 0 { "Apparel" } else { "Swim wear" };
        products.push(product(&format!("P{i:03}"), category, 1000 + (12 - i) * 100, 100));
    }
    store.upsert_products(&products).await.unwrap();
    assert_eq!(store.categories().await.unwrap(), vec!["Apparel".to_owned(), "Swim wear".to_owned()]);
    let swim = store
        .products(&ProductFilter {
            category: Some("Swim wear".into()),
            max_price_cents: Some(1500),
            limit: 2,
            offset: 0,
        })
        .await
        .unwrap();
    assert_eq!(swim.total, 3, "P007, P009 and P011 cost 1500 or less");
    let prices: Vec<i64> = swim.items.iter().map(|p| p.price_cents).collect();
    assert_eq!(prices, vec![1100, 1300], "cheapest first, capped at the limit");
    assert!(swim.items.iter().all(|p| p.category == "Swim wear"));
    let all = store.products(&ProductFilter { limit: 5, offset: 10, ..Default::default() }).await.unwrap();
    assert_eq!((all.total, all.items.len()), (12, 2));
    let none = store.products(&ProductFilter { category: Some("Nope".into()), ..Default::default() }).await.unwrap();
    assert_eq!((none.total, none.items.len()), (0, 0));

    for i in 0..30 {
        store.place_order(&format!("P{:03}", i % 12), 1, None).await.unwrap();
    }
    let first = store.orders(10, 0).await.unwrap();
    assert_eq!((first.items.len(), first.total, first.limit), (10, 30, 10));
    let last = store.orders(10, 25).await.unwrap();
    assert_eq!(last.items.len(), 5);
    let huge = store.orders(100_000, -3).await.unwrap();
    assert_eq!((huge.limit, huge.offset, huge.items.len()), (500, 0, 30));
    let mut ids: Vec<String> = huge.items.iter().map(|o| o.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "order ids are unique");
    let newest_first = huge.items.windows(2).all(|w| w[0].created_at >= w[1].created_at);
    assert!(newest_first);
    assert_eq!(store.orders(0, 0).await.unwrap().limit, 1);
    for (i, order) in huge.items.iter().take(3).enumerate() {
        store.create_shipment(&order.id, &format!("{i} Long Street, Springfield")).await.unwrap();
    }
    let ships = store.shipments(2, 0).await.unwrap();
    assert_eq!((ships.items.len(), ships.total), (2, 3));
    for i in 0..7 {
        store.start_conversation(&format!("c{i}"), "s", "retail", i).await.unwrap();
    }
    let convs = store.conversations(3, 3).await.unwrap();
    assert_eq!((convs.total, convs.items.len()), (7, 3));
    assert_eq!(convs.items[0].conversation.id, "c3", "newest first: c6 c5 c4 | c3 c2 c1");
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_say_what_to_do() {
    let e = Store::open("mysql://u@h/db").await.unwrap_err();
    assert!(matches!(e, StoreError::BadUrl(_)) && e.to_string().contains("sqlite://PATH"), "{e}");
    let e = Store::open("sqlite://").await.unwrap_err();
    assert!(e.to_string().contains("names no file"), "{e}");
    // A closed port on this machine: refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = Store::open(&format!("postgres://u:secret@127.0.0.1:{port}/db")).await.unwrap_err();
    let message = e.to_string();
    assert!(matches!(e, StoreError::Open(_)), "{message}");
    assert!(message.contains("Check that the server is running") && !message.contains("secret"), "{message}");
    // A directory where the file should be.
    let db = TestDb::sqlite();
    let path = db.url.trim_start_matches("sqlite://").to_owned();
    std::fs::create_dir_all(&path).unwrap();
    let e = Store::open(&db.url).await.unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    // A file where the parent directory should be.
    let blocker = std::path::Path::new(&path).parent().unwrap().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let e = Store::open(&format!("sqlite://{}/sub/brazen.db", blocker.display())).await.unwrap_err();
    assert!(e.to_string().contains("Cannot create the database directory"), "{e}");
    db.finish().await.unwrap();
}

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_the_default_url() {
    let db = TestDb::sqlite();
    let dir = std::path::PathBuf::from(db.url.trim_start_matches("sqlite://")).parent().unwrap().join("nested/data");
    let url = Store::default_url(&dir);
    let store = Store::open(&url).await.unwrap();
    store.upsert_products(&[product("P001", "Apparel", 1, 1)]).await.unwrap();
    assert!(dir.join("brazen.db").is_file());
    assert!(dir.join("brazen.db-wal").exists(), "WAL journal in use");
    store.close().await;
    db.finish().await.unwrap();
}

async fn client_secrets_are_taken_once_before_they_expire(_: &TestDb, store: &Store) {
    let secret =
        ClientSecret { session_id: "sess_1".into(), session: Some("{\"instructions\":\"Hi\"}".into()), key_hash: None };
    store.put_client_secret("h1", 10_000, &secret).await.unwrap();
    store
        .put_client_secret("h2", 2_000, &ClientSecret { session_id: "sess_2".into(), ..secret.clone() })
        .await
        .unwrap();
    assert!(store.put_client_secret("h1", 10_000, &secret).await.is_err(), "a hash is minted once");
    let keyed = ClientSecret { key_hash: Some("k1".into()), ..secret.clone() };
    store.put_client_secret("h4", 10_000, &keyed).await.unwrap();
    assert_eq!(store.client_secrets_waiting(None).await.unwrap(), 2, "counted per key");
    assert_eq!(store.client_secrets_waiting(Some("k1")).await.unwrap(), 1);
    assert_eq!(store.client_secrets_waiting(Some("k2")).await.unwrap(), 0);
    assert_eq!(store.peek_client_secret("h4", 5_000).await.unwrap(), Some(keyed.clone()), "looked at");
    assert_eq!(store.peek_client_secret("h2", 5_000).await.unwrap(), None, "expired");
    assert_eq!(store.take_client_secret("h4", 5_000).await.unwrap(), Some(keyed), "not used up by a look");
    assert_eq!(store.peek_client_secret("h4", 5_000).await.unwrap(), None, "used up");
    assert_eq!(store.take_client_secret("h1", 5_000).await.unwrap(), Some(secret.clone()));
    assert_eq!(store.take_client_secret("h1", 5_000).await.unwrap(), None, "used up");
    assert_eq!(store.take_client_secret("h2", 5_000).await.unwrap(), None, "expired");
    assert_eq!(store.take_client_secret("nope", 5_000).await.unwrap(), None);
    store.put_client_secret("h3", 3_000, &secret).await.unwrap();
    assert_eq!(store.forget_expired_client_secrets(5_000).await.unwrap(), 1);
    assert_eq!(store.client_secrets_waiting(None).await.unwrap(), 0);
}
