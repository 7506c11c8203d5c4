//! The retail tools through the `Tools` trait, on SQLite and PostgreSQL alike.

use brazen_providers::{
    EngineStream, Knowledge, Llm, LlmEvent, LlmRequest, LlmUsage, Passage, ToolCall, ToolEvent, Tools,
};
use brazen_retail::{CATEGORIES, RetailTools, catalog, seed};
use brazen_store::testing::TestDb;
use brazen_store::{AnalysisStatus, Store};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Each test body runs on a fresh SQLite file and, with `BRAZEN_TEST_POSTGRES_URL`, a fresh
/// PostgreSQL database (else a SKIPPED note; scripts/test always sets it).
macro_rules! backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = brazen_store::testing::TestDb::sqlite();
                let store = db.open().await.expect("open SQLite");
                super::$name(&store).await;
                store.close().await;
                db.finish().await.expect("remove database");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = brazen_store::testing::TestDb::postgres(concat!(module_path!(), "::postgres"))
                    .await
                    .expect("create PostgreSQL database")
                else {
                    return;
                };
                let store = db.open().await.expect("open PostgreSQL");
                super::$name(&store).await;
                store.close().await;
                db.finish().await.expect("drop database");
            }
        }
    )*};
}

backends!(
    seeding_loads_the_catalogue_once,
    categories_and_their_synonyms,
    price_search_is_cheapest_first_and_capped,
    order_ship_and_track,
    bad_orders_and_shipments_are_explained,
    dropped_calls_roll_back,
    knowledge_answers_with_sources,
    call_log_analysis_is_stored,
    conversations_are_analysed_and_failures_counted,
);

async fn call(tools: &dyn Tools, name: &str, arguments: Value) -> ToolEvent {
    call_raw(tools, name, &arguments.to_string()).await
}

async fn call_raw(tools: &dyn Tools, name: &str, arguments: &str) -> ToolEvent {
    let mut stream = tools.call(ToolCall {
        call_id: "call_1".into(),
        name: name.into(),
        arguments: arguments.into(),
        session_id: String::new(),
    });
    let event = stream.next().await.expect("one event");
    assert!(stream.next().await.is_none(), "one event ends the call");
    event
}

/// The JSON of a `Done` answer.
async fn done(tools: &dyn Tools, name: &str, arguments: Value) -> Value {
    match call(tools, name, arguments.clone()).await {
        ToolEvent::Done(text) => serde_json::from_str(&text).expect("JSON output"),
        ToolEvent::Failed(e) => panic!("{name}({arguments}) failed: {e}"),
    }
}

/// The error text of a `Done` refusal.
async fn refused(tools: &dyn Tools, name: &str, arguments: Value) -> (String, Value) {
    let v = done(tools, name, arguments.clone()).await;
    let error = v["error"].as_str().unwrap_or_else(|| panic!("{name}({arguments}) answered {v}, not an error"));
    (error.to_owned(), v)
}

async fn seeded(store: &Store) -> RetailTools {
    seed(store).await.expect("seed");
    RetailTools::new(store.clone(), None, None)
}

async fn stock(store: &Store, id: &str) -> i64 {
    store.product(id).await.unwrap().unwrap().stock
}

fn initial_stock(id: &str) -> i64 {
    catalog().unwrap().into_iter().find(|p| p.id == id).unwrap().stock
}

async fn seeding_loads_the_catalogue_once(store: &Store) {
    assert_eq!(seed(store).await.unwrap(), 72);
    store.place_order("P001", 2, None).await.unwrap();
    seed(store).await.unwrap();
    assert_eq!(stock(store, "P001").await, initial_stock("P001") - 2, "re-seeding keeps stock");
    let mut categories = store.categories().await.unwrap();
    categories.sort();
    let mut expected: Vec<String> = CATEGORIES.iter().map(|c| c.to_string()).collect();
    expected.sort();
    assert_eq!(categories, expected);
}

async fn categories_and_their_synonyms(store: &Store) {
    let tools = seeded(store).await;
    let v = done(&tools, "get_products_by_category", json!({"category": "Winter wear"})).await;
    assert_eq!(v["category"], "Winter wear");
    assert_eq!(v["matched"], 9);
    assert_eq!(v["products"].as_array().unwrap().len(), 8, "capped at 8");
    assert!(v["note"].as_str().unwrap().contains("8 cheapest of 9"));
    let first = &v["products"][0];
    let keys: Vec<&str> = first.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "ProductName", "Category", "Price", "ProductDescription", "imageurl", "InStock"]);
    assert_eq!(first["Category"], "Winter wear");
    assert_eq!(first["imageurl"], format!("/images/products/{}.svg", first["id"].as_str().unwrap()));
    assert!(first["Price"].is_f64());

    for (said, meant) in [
        ("winterwear", "Winter wear"),
        ("WINTER CLOTHES", "Winter wear"),
        ("winter-wear", "Winter wear"),
        ("swimsuits", "Swim wear"),
        ("Swimwear", "Swim wear"),
        ("socks", "Stockings"),
        ("tights", "Stockings"),
        ("dresses", "Garments"),
        ("suits", "Formal wear"),
        ("formal", "Formal wear"),
        ("sportswear", "Active wear"),
        ("activewear", "Active wear"),
        ("bags", "Accessories"),
        (" apparel ", "Apparel"),
        ("t-shirts", "Apparel"),
    ] {
        let v = done(&tools, "get_products_by_category", json!({ "category": said })).await;
        assert_eq!(v["category"], meant, "{said}");
        assert!(v["products"].as_array().unwrap().iter().all(|p| p["Category"] == meant), "{said}");
    }
    let (error, v) = refused(&tools, "get_products_by_category", json!({"category": "shoes"})).await;
    assert!(error.contains("'shoes'"), "{error}");
    assert_eq!(v["categories"], json!(CATEGORIES));
    let (error, v) = refused(&tools, "get_products_by_category", json!({})).await;
    assert!(error.contains("'category'"), "{error}");
    assert_eq!(v["categories"].as_array().unwrap().len(), 8);
    let (error, _) = refused(&tools, "get_products_by_category", json!({"category": ["Apparel"]})).await;
    assert!(error.contains("must be a string"), "{error}");
}

async fn price_search_is_cheapest_first_and_capped(store: &Store) {
    let tools = seeded(store).await;
    let v = done(&tools, "search_products_by_category_and_price", json!({"category": "Apparel", "price": 40})).await;
    let expected = catalog().unwrap().into_iter().filter(|p| p.category == "Apparel" && p.price_cents <= 4000).count();
    assert_eq!(v["matched"], expected as i64);
    assert_eq!(v["max_price"], 40.0);
    let prices: Vec<f64> = v["products"].as_array().unwrap().iter().map(|p| p["Price"].as_f64().unwrap()).collect();
    assert_eq!(prices.len(), expected.min(8));
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "cheapest first: {prices:?}");
    assert!(prices.iter().all(|p| *p <= 40.0));
    // The cap: every Stockings product is under $30, and there are 9.
    let v =
        done(&tools, "search_products_by_category_and_price", json!({"category": "stockings", "price": 1000})).await;
    assert_eq!((v["matched"].as_i64(), v["products"].as_array().unwrap().len()), (Some(9), 8));
    // Prices written as text.
    let v =
        done(&tools, "search_products_by_category_and_price", json!({"category": "Swim wear", "price": "$30"})).await;
    assert!(v["products"].as_array().unwrap().iter().all(|p| p["Price"].as_f64().unwrap() <= 30.0));
    assert!(v["matched"].as_i64().unwrap() >= 2);
    // Nothing that cheap: the note names the cheapest.
    let v = done(&tools, "search_products_by_category_and_price", json!({"category": "Formal wear", "price": 5})).await;
    assert_eq!(v["matched"], 0);
    assert!(v["note"].as_str().unwrap().contains("the cheapest is Silk Bow Tie"), "{v}");
    let (error, _) =
        refused(&tools, "search_products_by_category_and_price", json!({"category": "Apparel", "price": 0})).await;
    assert!(error.contains("above 0"), "{error}");
    let (error, _) =
        refused(&tools, "search_products_by_category_and_price", json!({"category": "Apparel", "price": "cheap"}))
            .await;
    assert!(error.contains("must be a number"), "{error}");
    let (error, v) =
        refused(&tools, "search_products_by_category_and_price", json!({"category": "Shoes", "price": 10})).await;
    assert!(error.contains("'Shoes'") && v["categories"].is_array(), "{error}");
}

async fn order_ship_and_track(store: &Store) {
    let tools = seeded(store).await;
    let order = done(&tools, "order_products", json!({"product_id": "P001", "quantity": 2})).await;
    let keys: Vec<&str> = order.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["OrderId", "ProductId", "Name", "Quantity", "Price", "Total", "Status"]);
    assert_eq!(order["ProductId"], "P001");
    assert_eq!(order["Name"], "Classic White Cotton T-Shirt");
    assert_eq!(
        (order["Quantity"].as_i64(), order["Price"].as_f64(), order["Total"].as_f64()),
        (Some(2), Some(19.99), Some(39.98))
    );
    assert_eq!(stock(store, "P001").await, initial_stock("P001") - 2);
    let order_id = order["OrderId"].as_str().unwrap().to_owned();
    assert!(order_id.starts_with("ORD_"));

    // Spoken-style ids: lower case, spaces, a bare number.
    let other = done(&tools, "order_products", json!({"product_id": "p 2", "quantity": "1"})).await;
    assert_eq!(other["ProductId"], "P002");

    let status = done(&tools, "get_order_status", json!({"order_id": order_id.to_lowercase()})).await;
    assert_eq!(status["order"]["OrderId"], order_id.as_str());
    assert_eq!(status["shipment"], Value::Null);

    let shipment = done(
        &tools,
        "create_delivery_order",
        json!({"order_id": order_id, "destination": "12 main st, seattle, wa 98101"}),
    )
    .await;
    let keys: Vec<&str> = shipment.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["TrackingId", "OrderId", "Destination", "Carrier", "EstimatedDelivery", "Status"]);
    assert_eq!(shipment["Destination"], "12 Main St, Seattle, WA 98101");
    assert!(shipment["TrackingId"].as_str().unwrap().starts_with("TRK"));
    let again =
        done(&tools, "create_delivery_order", json!({"order_id": order_id, "destination": "1 Elsewhere Rd, Boston"}))
            .await;
    assert_eq!(again, shipment, "one shipment per order");

    let status = done(&tools, "get_order_status", json!({"order_id": order_id})).await;
    assert_eq!(status["order"]["Status"], "shipping");
    assert_eq!(status["shipment"], shipment);

    // Orders placed through a conversation's tools carry its id.
    let tools = tools.for_conversation("conv_9");
    let o = done(&tools, "order_products", json!({"product_id": "P003", "quantity": 1})).await;
    let stored = store.order(o["OrderId"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.conversation_id.as_deref(), Some("conv_9"));
}

async fn bad_orders_and_shipments_are_explained(store: &Store) {
    let tools = seeded(store).await;
    let (e, _) = refused(&tools, "order_products", json!({"product_id": "P999", "quantity": 1})).await;
    assert!(e.contains("no product with id 'P999'"), "{e}");
    let (e, _) = refused(&tools, "order_products", json!({"product_id": "P001", "quantity": 0})).await;
    assert!(e.contains("1 to 100"), "{e}");
    let (e, _) = refused(&tools, "order_products", json!({"product_id": "P001", "quantity": "two"})).await;
    assert!(e.contains("'quantity' must be a number"), "{e}");
    let (e, _) = refused(&tools, "order_products", json!({"product_id": "P001", "quantity": 1.5})).await;
    assert!(e.contains("whole number"), "{e}");
    let (e, _) = refused(&tools, "order_products", json!({"quantity": 1})).await;
    assert!(e.contains("'product_id' is missing"), "{e}");
    // P009 has none, P007 three.
    let (e, v) = refused(&tools, "order_products", json!({"product_id": "P009", "quantity": 1})).await;
    assert!(e.contains("out of stock"), "{e}");
    assert_eq!(v["in_stock"], 0);
    let (e, v) = refused(&tools, "order_products", json!({"product_id": "P007", "quantity": 5})).await;
    assert!(e.contains("Only 3"), "{e}");
    assert_eq!(v["in_stock"], 3);
    assert_eq!(stock(store, "P007").await, 3, "a refused order takes nothing");
    assert_eq!(store.orders(10, 0).await.unwrap().total, 0);

    let (e, _) = refused(
        &tools,
        "create_delivery_order",
        json!({"order_id": "ORD_NOPE1234", "destination": "12 Main St, Seattle"}),
    )
    .await;
    assert!(e.contains("no order with id 'ORD_NOPE1234'"), "{e}");
    let order = done(&tools, "order_products", json!({"product_id": "P001", "quantity": 1})).await;
    let id = order["OrderId"].as_str().unwrap();
    let (e, _) = refused(&tools, "create_delivery_order", json!({"order_id": id, "destination": "  "})).await;
    assert!(e.contains("empty"), "{e}");
    let (e, _) = refused(&tools, "create_delivery_order", json!({"order_id": id, "destination": "Paris"})).await;
    assert!(e.contains("too short"), "{e}");
    let (e, _) = refused(&tools, "create_delivery_order", json!({"order_id": id})).await;
    assert!(e.contains("'destination' is missing"), "{e}");
    let (e, _) = refused(&tools, "get_order_status", json!({"order_id": "ORD_NOPE1234"})).await;
    assert!(e.contains("no order"), "{e}");

    // Arguments that are not an object, and tools that do not exist.
    match call_raw(&tools, "order_products", "{\"product_id\": ").await {
        ToolEvent::Done(text) => assert!(text.contains("not valid JSON"), "{text}"),
        other => panic!("{other:?}"),
    }
    match call_raw(&tools, "order_products", "[1]").await {
        ToolEvent::Done(text) => assert!(text.contains("must be a JSON object"), "{text}"),
        other => panic!("{other:?}"),
    }
    match call(&tools, "launch_rocket", json!({})).await {
        ToolEvent::Failed(e) => assert!(e.contains("no retail tool named 'launch_rocket'"), "{e}"),
        other => panic!("{other:?}"),
    }
}

async fn dropped_calls_roll_back(store: &Store) {
    let tools = seeded(store).await;
    let before = stock(store, "P002").await;
    // Start orders and drop their streams at assorted moments, some surely mid-transaction.
    for i in 0..30u64 {
        let mut stream = tools.call(ToolCall {
            call_id: format!("c{i}"),
            name: "order_products".into(),
            arguments: json!({"product_id": "P002", "quantity": 1}).to_string(),
            session_id: String::new(),
        });
        // Poll it by hand a few times (0 to 7), letting the database work a little in between.
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        for _ in 0..i % 8 {
            if stream.poll_next_unpin(&mut cx).is_ready() {
                break;
            }
            std::thread::sleep(Duration::from_micros(150));
        }
        drop(stream);
    }
    // Whatever committed is whole; nothing else holds a lock or half a write.
    let ordered: i64 = store.orders(500, 0).await.unwrap().items.iter().map(|o| o.quantity).sum();
    assert_eq!(stock(store, "P002").await + ordered, before);
    let placed = tokio::time::timeout(Duration::from_secs(20), store.place_order("P002", 1, None)).await;
    eprintln!("{ordered} of 30 dropped calls committed");
    assert!(placed.expect("no lock left behind").is_ok());
    assert!(ordered < 30, "some calls were cut short ({ordered} of 30 committed)");
}

/// A knowledge base that answers from fixed passages, or fails.
struct FixedKnowledge {
    fail: bool,
    delay: Duration,
    queries: Mutex<Vec<(String, usize)>>,
}

impl Knowledge for FixedKnowledge {
    fn search(&self, query: &str, limit: usize) -> Result<Vec<Passage>, String> {
        std::thread::sleep(self.delay);
        self.queries.lock().unwrap().push((query.to_owned(), limit));
        if self.fail {
            return Err("the index is missing".into());
        }
        Ok((0..limit)
            .map(|i| Passage {
                source: format!("policy{i}.md"),
                title: format!("Policy {i}"),
                text: format!("Returns are free within 30 days ({i})."),
                score: 0.9 - i as f32 / 10.0,
            })
            .collect())
    }
}

async fn knowledge_answers_with_sources(store: &Store) {
    let none = seeded(store).await;
    match call(&none, "perform_search_based_qna", json!({"query": "returns?"})).await {
        ToolEvent::Failed(e) => assert!(e.contains("no knowledge base"), "{e}"),
        other => panic!("{other:?}"),
    }
    let kb = Arc::new(FixedKnowledge { fail: false, delay: Duration::ZERO, queries: Mutex::new(Vec::new()) });
    let tools = RetailTools::new(store.clone(), Some(kb.clone()), None);
    let v = done(&tools, "perform_search_based_qna", json!({"query": "Can I return a coat?"})).await;
    let passages = v["passages"].as_array().unwrap();
    assert_eq!(passages.len(), 3);
    assert_eq!(passages[0]["source"], "policy0.md");
    assert_eq!(passages[0]["title"], "Policy 0");
    assert!(passages[2]["text"].as_str().unwrap().contains("30 days"));
    assert_eq!(kb.queries.lock().unwrap().as_slice(), [("Can I return a coat?".to_owned(), 3)]);
    let (e, _) = refused(&tools, "perform_search_based_qna", json!({"query": ""})).await;
    assert!(e.contains("'query'"), "{e}");

    let broken = Arc::new(FixedKnowledge { fail: true, delay: Duration::ZERO, queries: Mutex::new(Vec::new()) });
    let tools = RetailTools::new(store.clone(), Some(broken), None);
    match call(&tools, "perform_search_based_qna", json!({"query": "x"})).await {
        ToolEvent::Failed(e) => assert!(e.contains("the index is missing"), "{e}"),
        other => panic!("{other:?}"),
    }
    // A slow search: dropping the stream returns at once.
    let slow =
        Arc::new(FixedKnowledge { fail: false, delay: Duration::from_millis(500), queries: Mutex::new(Vec::new()) });
    let tools = RetailTools::new(store.clone(), Some(slow), None);
    let mut stream = tools.call(ToolCall {
        call_id: "q".into(),
        name: "perform_search_based_qna".into(),
        arguments: r#"{"query":"x"}"#.into(),
        session_id: String::new(),
    });
    let started = std::time::Instant::now();
    assert!(tokio::time::timeout(Duration::from_millis(50), stream.next()).await.is_err(), "still searching");
    drop(stream);
    assert!(started.elapsed() < Duration::from_millis(400));
}

/// A model that answers every request with the same scripted events, and keeps the requests.
struct ScriptedLlm {
    events: Vec<LlmEvent>,
    requests: Mutex<Vec<LlmRequest>>,
}

impl ScriptedLlm {
    fn calling(arguments: &str) -> ScriptedLlm {
        let (a, b) = arguments.split_at(arguments.len() / 2);
        ScriptedLlm::new(vec![
            LlmEvent::ToolCallStart { call_id: "call_a".into(), name: "record_call_analysis".into() },
            LlmEvent::ToolCallArguments { call_id: "call_a".into(), delta: a.into() },
            LlmEvent::ToolCallArguments { call_id: "call_a".into(), delta: b.into() },
            LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false },
        ])
    }

    fn new(events: Vec<LlmEvent>) -> ScriptedLlm {
        ScriptedLlm { events, requests: Mutex::new(Vec::new()) }
    }
}

impl Llm for ScriptedLlm {
    fn generate(&self, request: LlmRequest) -> EngineStream<LlmEvent> {
        self.requests.lock().unwrap().push(request);
        Box::pin(futures_util::stream::iter(self.events.clone()))
    }
}

fn good_arguments() -> String {
    json!({
        "call_reason": "Bought a winter coat",
        "customer_satisfaction": "satisfied",
        "customer_sentiment": "positive",
        "rating": 5,
        "rating_justification": "Quick and friendly.",
        "product": "P019"
    })
    .to_string()
}

async fn call_log_analysis_is_stored(store: &Store) {
    let no_model = seeded(store).await;
    match call(&no_model, "perform_call_log_analysis", json!({"call_log": "User: hi"})).await {
        ToolEvent::Failed(e) => assert!(e.contains("No model"), "{e}"),
        other => panic!("{other:?}"),
    }
    let llm = Arc::new(ScriptedLlm::calling(&good_arguments()));
    let tools = RetailTools::new(store.clone(), None, Some(llm.clone()));
    let log = json!([{"role": "user", "text": "I want the camel coat"}, {"role": "assistant", "text": "Ordered!"}]);
    let v = done(&tools, "perform_call_log_analysis", json!({"call_log": log.to_string()})).await;
    assert_eq!(v["rating"], 5);
    assert_eq!(v["customer_sentiment"], "positive");
    let id = v["conversation_id"].as_str().unwrap();
    let stored = store.conversation(id).await.unwrap().unwrap();
    assert_eq!(stored.entries[0].text, "User: I want the camel coat\nAssistant: Ordered!");
    let record = stored.analysis.unwrap();
    assert_eq!((record.status, record.attempts), (AnalysisStatus::Done, 1));
    assert_eq!(record.analysis.unwrap().product, "P019");
    let request = llm.requests.lock().unwrap()[0].clone();
    assert!(request.items[0].text().contains("I want the camel coat"));

    let bad = Arc::new(ScriptedLlm::calling(&good_arguments().replace("\"rating\":5", "\"rating\":9")));
    let tools = RetailTools::new(store.clone(), None, Some(bad));
    match call(&tools, "perform_call_log_analysis", json!({"call_log": "User: my order is late"})).await {
        ToolEvent::Failed(e) => assert!(e.contains("rating must be from 1 to 5; got 9"), "{e}"),
        other => panic!("{other:?}"),
    }
    let failed = store.conversations(10, 0).await.unwrap();
    assert!(failed.items.iter().any(|c| c.analysis_status == Some(AnalysisStatus::Failed)));
    let (e, _) = refused(&tools, "perform_call_log_analysis", json!({"call_log": " "})).await;
    assert!(e.contains("'call_log'"), "{e}");
}

async fn conversations_are_analysed_and_failures_counted(store: &Store) {
    use brazen_retail::analyse_conversation;
    use brazen_store::{Entry, EntryKind, EntryRole};
    store.start_conversation("conv_1", "sess_1", "retail", 1).await.unwrap();
    let entries = [
        (EntryRole::User, EntryKind::Message, None, "Do you have winter coats?"),
        (
            EntryRole::Assistant,
            EntryKind::FunctionCall,
            Some("get_products_by_category"),
            "{\"category\":\"Winter wear\"}",
        ),
        (EntryRole::Tool, EntryKind::FunctionCallOutput, Some("get_products_by_category"), "{\"matched\":9}"),
        (EntryRole::Assistant, EntryKind::Message, None, "Yes, nine of them."),
    ];
    for (seq, (role, kind, name, text)) in entries.into_iter().enumerate() {
        let entry = Entry {
            seq: seq as i64,
            at_ms: seq as i64,
            role,
            kind,
            name: name.map(str::to_owned),
            call_id: name.map(|_| "call_1".to_owned()),
            text: text.into(),
        };
        store.append_entry("conv_1", &entry).await.unwrap();
    }
    store.mark_analysis_pending("conv_1").await.unwrap();

    // Failures are recorded and counted.
    let texty = ScriptedLlm::new(vec![
        LlmEvent::TextDelta("The call went well.".into()),
        LlmEvent::Done { usage: LlmUsage::default(), hit_token_cap: false },
    ]);
    let e = analyse_conversation(store, &texty, "conv_1").await.unwrap_err();
    assert!(e.contains("wrote text instead of calling record_call_analysis"), "{e}");
    let broken = ScriptedLlm::calling("{\"call_reason\": \"x\"");
    let e = analyse_conversation(store, &broken, "conv_1").await.unwrap_err();
    assert!(e.contains("not valid JSON"), "{e}");
    let record = store.analysis("conv_1").await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts), (AnalysisStatus::Failed, 2));
    assert!(record.last_error.unwrap().contains("not valid JSON"));
    assert_eq!(store.pending_analyses().await.unwrap(), vec!["conv_1".to_owned()]);

    // Then a good one.
    let llm = ScriptedLlm::calling(&good_arguments());
    let analysis = analyse_conversation(store, &llm, "conv_1").await.unwrap();
    assert_eq!(analysis.rating, 5);
    let record = store.analysis("conv_1").await.unwrap().unwrap();
    assert_eq!((record.status, record.attempts, record.analysis), (AnalysisStatus::Done, 3, Some(analysis)));
    assert!(store.pending_analyses().await.unwrap().is_empty());
    // The request forced the one tool and carried the rendered transcript.
    let request = llm.requests.lock().unwrap()[0].clone();
    assert_eq!(request.tool_choice, brazen_protocol::ToolChoice::Function("record_call_analysis".into()));
    assert_eq!(request.tools.len(), 1);
    let schema = &request.tools[0].parameters;
    assert_eq!(schema["required"].as_array().unwrap().len(), 6);
    assert_eq!(schema["properties"]["rating"]["type"], "integer");
    let transcript = request.items[0].text();
    assert!(transcript.contains("User: Do you have winter coats?"), "{transcript}");
    assert!(transcript.contains("Assistant called get_products_by_category with {\"category\":\"Winter wear\"}"));
    assert!(transcript.contains("Assistant: Yes, nine of them."));

    assert!(analyse_conversation(store, &llm, "nope").await.unwrap_err().contains("no conversation 'nope'"));
    store.start_conversation("empty", "s", "retail", 2).await.unwrap();
    let e = analyse_conversation(store, &llm, "empty").await.unwrap_err();
    assert!(e.contains("no transcript"), "{e}");
    assert_eq!(store.analysis("empty").await.unwrap().unwrap().status, AnalysisStatus::Failed);
}

#[tokio::test]
async fn specs_name_the_seven_tools_with_timeouts() {
    let db = TestDb::sqlite();
    let store = db.open().await.unwrap();
    let tools = RetailTools::new(store.clone(), None, None);
    let specs = tools.specs();
    let got: Vec<(&str, u64)> = specs.iter().map(|s| (s.definition.name.as_str(), s.timeout.as_secs())).collect();
    assert_eq!(
        got,
        [
            ("get_products_by_category", 5),
            ("search_products_by_category_and_price", 5),
            ("order_products", 5),
            ("create_delivery_order", 5),
            ("perform_search_based_qna", 10),
            ("perform_call_log_analysis", 60),
            ("get_order_status", 5),
        ]
    );
    let params: Vec<Vec<String>> = specs
        .iter()
        .map(|s| s.definition.parameters["properties"].as_object().unwrap().keys().cloned().collect())
        .collect();
    assert_eq!(params[1], ["category", "price"]);
    assert_eq!(params[2], ["product_id", "quantity"]);
    assert_eq!(params[3], ["order_id", "destination"]);
    for s in &specs {
        let p = &s.definition.parameters;
        let properties: Vec<&String> = p["properties"].as_object().unwrap().keys().collect();
        let required: Vec<&str> = p["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(properties.len(), required.len(), "{}: all parameters required", s.definition.name);
        assert!(s.definition.description.len() < 260, "{}: short description", s.definition.name);
    }
    assert_eq!(specs[0].definition.parameters["properties"]["category"]["enum"], json!(CATEGORIES));
    assert_eq!(specs[1].definition.parameters["properties"]["price"]["type"], "number");
    assert_eq!(specs[2].definition.parameters["properties"]["quantity"]["type"], "integer");
    store.close().await;
    db.finish().await.unwrap();
}
