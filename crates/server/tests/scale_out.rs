//! Two brazen nodes behind one PostgreSQL and one llama.cpp server (llama-cpp-python's
//! OpenAI-compatible server), as a deployment of N stateless nodes would run: conversations on
//! both, what either stores visible from both, and one node killed mid-conversation — nothing
//! stored is lost, and its client reconnects to the other node with Voice Live's
//! `conversation-id` and carries on where it was. A client secret minted through one node starts
//! its session on the other.

mod common;

use common::llama::LlamaServer;
use common::postgres::{Postgres, pg_bin};
use common::{Server, Ws, connect, next_within, send, until, user_lines};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

/// A node of the deployment: the retail agent on the shared database and model server.
fn node(database: &str, llm: &str) -> Server {
    Server::start(&[
        "--database-url",
        database,
        "--llm",
        "openai",
        "--llm-url",
        llm,
        "--llm-model",
        "qwen2.5-coder-1.5b",
    ])
}

/// Says `text` and waits (up to 5 minutes: two cores, a 1.5B model) for the finished answer.
async fn turn(ws: &mut Ws, text: &str, response: Value) -> Value {
    send(
        ws,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": text}]}}),
    )
    .await;
    send(ws, json!({"type": "response.create", "response": response})).await;
    loop {
        let e = next_within(ws, Duration::from_secs(300)).await.expect("an answer within 5 minutes");
        if e["type"] == "response.done" {
            assert_eq!(e["response"]["status"], "completed", "{e}");
            return e;
        }
    }
}

fn get(server: &Server, path: &str) -> Value {
    let (status, body) = server.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// `path` on `server` once `ready` holds (polls for 10 minutes: an analysis waits for quiet, and
/// the model server answers at a few tokens a second on two busy cores).
fn eventually(server: &Server, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = server.get(path);
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            if ready(&v) {
                return v;
            }
            assert!(started.elapsed() < Duration::from_secs(600), "{path} never became ready: {v}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_store_and_a_killed_nodes_call_continues_on_the_other() {
    let Some(bin) = pg_bin() else {
        assert!(std::env::var_os("BRAZEN_TEST_STRICT").is_none(), "PostgreSQL is not installed");
        eprintln!("skipped: PostgreSQL is not installed (scripts/test installs it)");
        return;
    };
    let Some(llama) = LlamaServer::start() else { return };
    let pg = Postgres::start(bin);
    let (database, llm) = (pg.url(), llama.url());
    let mut a = node(&database, &llm);
    let b = node(&database, &llm);

    // A client secret minted through node A starts its one session on node B.
    let (status, _, minted) = a.request(
        "POST",
        "/v1/realtime/client_secrets",
        &[("Content-Type", "application/json")],
        r#"{"session": {"type": "realtime", "instructions": "Minted on node A."}}"#,
    );
    assert_eq!(status, 200, "{minted}");
    let secret = serde_json::from_str::<Value>(&minted).unwrap()["value"].as_str().unwrap().to_owned();
    let offer = format!("realtime, openai-insecure-api-key.{secret}");
    let (mut on_b, _) = connect(b.port, "/v1/realtime", &[("sec-websocket-protocol", offer.as_str())]).await.unwrap();
    let created = until(&mut on_b, "session.created").await.pop().unwrap();
    assert_eq!(created["session"]["instructions"], "Minted on node A.");
    drop(on_b);
    let again = connect(a.port, "/v1/realtime", &[("sec-websocket-protocol", offer.as_str())]).await.unwrap_err();
    assert!(again.starts_with("401 "), "used once, whichever node: {again}");

    // A call on node A orders something (its tool runs on A, against the shared database).
    let (mut ws, _) = connect(a.port, "/voice-live/realtime", &[]).await.unwrap();
    let created = until(&mut ws, "session.created").await.pop().unwrap();
    let conversation = created["session"]["id"].as_str().unwrap().to_owned();
    send(&mut ws, json!({"type": "session.update", "session": {"modalities": ["text"], "turn_detection": null}})).await;
    until(&mut ws, "session.updated").await;
    let order = json!({"tool_choice": {"type": "function", "name": "order_products"}});
    turn(&mut ws, "Please order two Red Knit Beanies for me: product P021, quantity 2.", order).await;
    // The tool's output comes back to the model, which answers from it.
    let answered = turn(&mut ws, "Thank you. Which product did I order?", json!({})).await;
    eprintln!("node A answered: {}", answered["response"]["output"]);

    // A second caller talks to node B meanwhile.
    let (mut other, _) = connect(b.port, "/voice-live/realtime", &[]).await.unwrap();
    until(&mut other, "session.created").await;
    send(&mut other, json!({"type": "session.update", "session": {"modalities": ["text"], "turn_detection": null}}))
        .await;
    until(&mut other, "session.updated").await;
    turn(&mut other, "Hello! What kinds of products do you sell?", json!({})).await;
    drop(other);

    // Both nodes see the order A placed and the conversation as it stands.
    let orders_b = eventually(&b, "/api/orders", |o| o["total"].as_i64() >= Some(1));
    let orders_a = get(&a, "/api/orders");
    assert_eq!(orders_a["items"][0]["id"], orders_b["items"][0]["id"]);
    assert!(orders_b.to_string().contains("P021"), "{orders_b}");
    let path = format!("/api/conversations/{conversation}");
    let before = eventually(&b, &path, |c| user_lines(c).len() == 2);

    // Node A dies mid-call, with no warning.
    Command::new("kill").args(["-KILL", &a.pid().to_string()]).status().unwrap();
    a.wait_exit(Duration::from_secs(10)).expect("node A is gone");
    drop(ws);
    // Nothing it had stored is lost.
    let after = get(&b, &path);
    assert_eq!(after["entries"], before["entries"]);

    // The client reconnects to node B and continues the same conversation.
    let resume = format!("/voice-live/realtime?conversation-id={conversation}");
    let (mut ws, _) = connect(b.port, &resume, &[]).await.unwrap();
    let mut restored = Vec::new();
    let created = loop {
        let e = next_within(&mut ws, Duration::from_secs(10)).await.expect("the restored conversation");
        match e["type"].as_str() {
            Some("session.created") => break e,
            _ => continue,
        }
    };
    assert_eq!(created["type"], "session.created");
    loop {
        let e = next_within(&mut ws, Duration::from_secs(2)).await;
        match e {
            Some(e) if e["type"] == "conversation.item.created" => restored.push(e["item"].clone()),
            Some(_) => continue,
            None => break,
        }
    }
    let said: Vec<&str> =
        restored.iter().filter(|i| i["role"] == "user").filter_map(|i| i["content"][0]["text"].as_str()).collect();
    assert_eq!(
        said,
        [
            "Please order two Red Knit Beanies for me: product P021, quantity 2.",
            "Thank you. Which product did I order?"
        ]
    );
    assert!(restored.iter().any(|i| i["type"] == "function_call" && i["name"] == "order_products"), "{restored:?}");
    send(&mut ws, json!({"type": "session.update", "session": {"modalities": ["text"], "turn_detection": null}})).await;
    until(&mut ws, "session.updated").await;
    let answer = turn(&mut ws, "Remind me: how many beanies did I order?", json!({})).await;
    let text = answer["response"]["output"].to_string().to_lowercase();
    eprintln!("node B answered: {text}");
    assert!(text.contains("two") || text.contains('2'), "node B knows the conversation so far: {text}");
    drop(ws);

    // One conversation, written by both nodes, ended, and analysed (or its failure recorded) —
    // seen from B and from A started again.
    let done = eventually(&b, &path, |c| !c["ended_at"].is_null() && c["analysis"]["attempts"].as_i64() >= Some(1));
    assert_eq!(user_lines(&done).len(), 3, "{done}");
    let kept = before["entries"].as_array().unwrap();
    assert_eq!(
        done["entries"].as_array().unwrap()[..kept.len()],
        kept[..],
        "what A wrote is kept as it was, times included"
    );
    let a = node(&database, &llm);
    let seen_from_a = get(&a, &path);
    assert_eq!(seen_from_a["entries"], done["entries"]);
    assert_eq!(seen_from_a["analysis"]["status"], done["analysis"]["status"]);
    assert_eq!(get(&a, "/api/orders")["total"], orders_b["total"]);
}
