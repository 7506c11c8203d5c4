//! The agent through `brazen serve`'s public surface: the built-in retail agent's session
//! defaults, its server-side tools on the database (orders that change stock, shipments, order
//! status), the conversation stored as it happens and analysed when it ends, the admin reads and
//! product pictures, `--agent FILE` and `--agent none`, and clear refusals of bad agent files.
//! The stand-in engines drive it: the echo model calls a tool the user names with the JSON
//! object the user wrote.

use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

mod common;
use common::{Server, Ws, connect, send, until};

async fn say(ws: &mut Ws, text: &str) -> Vec<Value> {
    send(ws, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})).await;
    send(ws, json!({"type": "response.create", "response": {"modalities": ["text"]}})).await;
    until(ws, "response.done").await
}

/// The output of the server-side call among `events` (a `function_call_output` item).
fn tool_output(events: &[Value]) -> Value {
    let item = events
        .iter()
        .find(|e| e["type"] == "conversation.item.created" && e["item"]["type"] == "function_call_output")
        .unwrap_or_else(|| panic!("a tool output item: {events:#?}"));
    serde_json::from_str(item["item"]["output"].as_str().unwrap()).unwrap()
}

fn get_json(server: &Server, path: &str) -> (u16, Value) {
    let (status, body) = server.get(path);
    (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: {body}")))
}

/// Polls `path` until `ready` holds (the database is written off the session's path).
fn eventually(server: &Server, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let (status, body) = get_json(server, path);
        if status == 200 && ready(&body) {
            return body;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{path} never became ready: {:?}", get_json(server, path));
}

#[tokio::test]
async fn the_retail_agent_orders_ships_and_keeps_the_conversation() {
    let server = Server::start(&[]);
    let (status, products) = get_json(&server, "/api/products?category=winter%20wear&limit=100");
    assert_eq!(status, 200);
    assert_eq!(products["total"], 9, "{products}");
    let beanie = products["items"].as_array().unwrap().iter().find(|p| p["id"] == "P021").unwrap().clone();
    let stock = beanie["stock"].as_i64().unwrap();
    let (status, head, svg) = server.get_with_headers("/images/products/P021.svg");
    assert_eq!(status, 200);
    assert!(head.contains("image/svg+xml") && svg.starts_with("<svg"), "{head}");

    let (mut ws, _) = connect(server.port, "/voice-live/realtime", &[]).await.unwrap();
    let created = until(&mut ws, "session.created").await.pop().unwrap();
    let session_id = created["session"]["id"].as_str().unwrap().to_owned();
    assert!(created["session"]["instructions"].as_str().unwrap().contains("Contoso"), "the agent's instructions");
    assert_eq!(created["session"]["interim_response"]["type"], "static_interim_response");

    let events = say(&mut ws, r#"order_products {"product_id": "P021", "quantity": 2}"#).await;
    let order = tool_output(&events);
    assert_eq!((order["ProductId"].clone(), order["Quantity"].clone()), (json!("P021"), json!(2)), "{order}");
    assert_eq!(order["Total"], json!(39.98));
    let order_id = order["OrderId"].as_str().unwrap().to_owned();
    assert!(order_id.starts_with("ORD_"));
    let done = events.last().unwrap();
    assert_eq!(done["response"]["output"].as_array().unwrap().len(), 1, "the call is not the client's to answer");

    // Bad arguments never reach the tool: the schema check answers.
    let events = say(&mut ws, r#"order_products {"product_id": "P021", "quantity": "lots"}"#).await;
    assert!(tool_output(&events)["error"].as_str().unwrap().contains("'quantity' must be integer"));

    let events = say(&mut ws, &format!(r#"create_delivery_order {{"order_id": "{order_id}", "destination": "12  elm street, springfield il 62704"}}"#)).await;
    let shipment = tool_output(&events);
    assert!(shipment["TrackingId"].as_str().unwrap().starts_with("TRK"), "{shipment}");
    let events = say(&mut ws, &format!(r#"get_order_status {{"order_id": "{order_id}"}}"#)).await;
    assert!(tool_output(&events).to_string().contains(shipment["TrackingId"].as_str().unwrap()));

    let (_, orders) = get_json(&server, "/api/orders");
    let stored = &orders["items"][0];
    assert_eq!(
        (stored["id"].as_str(), stored["conversation_id"].as_str()),
        (Some(order_id.as_str()), Some(session_id.as_str()))
    );
    let (_, order_view) = get_json(&server, &format!("/api/orders/{order_id}"));
    assert_eq!(order_view["shipment"]["order_id"], json!(order_id));
    let (_, products) = get_json(&server, "/api/products?category=Winter%20wear&limit=100");
    let after = products["items"].as_array().unwrap().iter().find(|p| p["id"] == "P021").unwrap()["stock"].clone();
    assert_eq!(after, json!(stock - 2), "the order took two from stock");
    let (_, shipments) = get_json(&server, "/api/shipments");
    assert_eq!(shipments["total"], 1);

    // Stored as it happens: the calls and outputs are there before the session ends.
    let path = format!("/api/conversations/{session_id}");
    let live = eventually(&server, &path, |c| c["entries"].as_array().is_some_and(|e| e.len() >= 10));
    assert!(live["ended_at"].is_null());
    let times: Vec<i64> = live["entries"].as_array().unwrap().iter().map(|e| e["at_ms"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "entries keep the time they happened: {times:?}");
    let kinds: Vec<&str> = live["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"function_call") && kinds.contains(&"function_call_output"), "{kinds:?}");
    let outputs: Vec<&Value> =
        live["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "function_call_output").collect();
    assert_eq!(outputs[0]["name"], "order_products", "an output is named after its call");

    drop(ws);
    // Ended, and its analysis attempted: the echo model cannot write one, so the failure is
    // recorded (and kept for a retry), not lost.
    let ended =
        eventually(&server, &path, |c| !c["ended_at"].is_null() && c["analysis"]["attempts"].as_i64() >= Some(1));
    assert_eq!(ended["analysis"]["status"], "failed", "{ended}");
    assert!(!ended["analysis"]["last_error"].as_str().unwrap_or_default().is_empty());
    let (_, list) = get_json(&server, "/api/conversations?limit=10");
    assert_eq!(list["items"][0]["id"], json!(session_id));

    // `brazen analyse ID` runs it again, and records the outcome (the echo model fails again).
    let analyse = |args: &[&str]| {
        Command::new(common::binary())
            .arg("analyse")
            .args(["--llm", "echo", "--data-dir", server.data_dir.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let out = analyse(&[&session_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{session_id}: FAILED")), "{out:?}");
    let (_, again) = get_json(&server, &path);
    assert_eq!(again["analysis"]["attempts"], json!(ended["analysis"]["attempts"].as_i64().unwrap() + 1));
    let out = analyse(&["sess_unknown"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no conversation 'sess_unknown'"), "{out:?}");
}

#[test]
fn admin_reads_are_paged_checked_and_keyed() {
    let server = Server::start(&["--api-key", "admin-test-key"]);
    let (status, _) = get_json(&server, "/api/orders");
    assert_eq!(status, 401, "a keyed server wants its key");
    let (status, page) = get_json(&server, "/api/products?limit=5&offset=70&api-key=admin-test-key");
    assert_eq!(status, 200);
    assert_eq!((page["items"].as_array().unwrap().len(), page["total"].as_i64()), (2, Some(72)));
    for (path, code) in [
        ("/api/products?limit=0", "invalid_limit"),
        ("/api/products?category=spaceships", "invalid_category"),
        ("/api/products?max_price=-3", "invalid_max_price"),
        ("/api/products?colour=red", "invalid_query"),
        ("/api/orders/ORD_NOPE", "not_found"),
        ("/api/conversations/nope", "not_found"),
    ] {
        let (status, body) =
            get_json(&server, &format!("{path}{}api-key=admin-test-key", if path.contains('?') { "&" } else { "?" }));
        assert!((400..500).contains(&status), "{path}: {status}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }
    let (status, cheap) = get_json(&server, "/api/products?category=Accessories&max_price=25&api-key=admin-test-key");
    assert_eq!(status, 200);
    assert!(
        cheap["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["price_cents"].as_i64().unwrap() <= 2500 && p["category"] == "Accessories")
    );
}

#[tokio::test]
async fn another_agent_from_a_file_and_no_agent_at_all() {
    let dir = std::env::temp_dir().join(format!("brazen-agent-test-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(dir.join("docs/hours.md"), "# Hours\nOpen 9 to 5.").unwrap();
    let file = dir.join("clinic.toml");
    std::fs::write(
        &file,
        "name = \"clinic\"\ntools = [\"perform_search_based_qna\"]\nknowledge = \"docs\"\n[session]\ninstructions = \"You answer for a dental clinic.\"\n",
    )
    .unwrap();
    let server = Server::start(&["--agent", file.to_str().unwrap()]);
    let (mut ws, _) = connect(server.port, "/voice-live/realtime", &[]).await.unwrap();
    let created = until(&mut ws, "session.created").await.pop().unwrap();
    assert_eq!(created["session"]["instructions"], "You answer for a dental clinic.");
    assert!(created["session"].get("interim_response").is_none());
    // Only the agent's own tools run inside: order_products is not one of them.
    let events = say(&mut ws, r#"order_products {"product_id": "P021", "quantity": 2}"#).await;
    assert!(!events.iter().any(|e| e["type"] == "conversation.item.created" && e["item"]["type"] == "function_call"));
    drop(ws);

    let bare = Server::start(&["--agent", "none"]);
    let (status, body) = get_json(&bare, "/api/orders");
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("no_agent")));
    let (mut ws, _) = connect(bare.port, "/voice-live/realtime", &[]).await.unwrap();
    let created = until(&mut ws, "session.created").await.pop().unwrap();
    assert_eq!(created["session"]["instructions"], "");

    std::fs::write(&file, "name = \"clinic\"\ntools = [\"teleport\"]\n").unwrap();
    let out = Command::new(common::binary())
        .args(["serve", "--port", "0", "--vad", "energy", "--asr", "echo", "--llm", "echo", "--tts", "tone"])
        .args(["--agent", file.to_str().unwrap()])
        .env("BRAZEN_DATA_DIR", dir.join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("'teleport'") && stderr.contains("order_products"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
