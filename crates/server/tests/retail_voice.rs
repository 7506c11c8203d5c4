//! The retail agent end to end, by voice, with the local models (Silero, Whisper tiny.en, the
//! 1.5B Qwen, Piper) through the Voice Live protocol: a customer asks for winter wear, orders two
//! of a product, gives an address, asks a policy question and hangs up. The call must leave an
//! order of two, a shipment to that address, and a stored analysis in the database.
//!
//! The customer's voice is Piper's with its variation off (the same sound every run), sent as
//! fast as the socket takes it; server VAD ends each turn. Like a customer, the test answers a question the
//! agent asks back ("Shall I place the order?") before it counts a step as missed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use brazen_audio::Resampler;
use brazen_models::{Manifest, Store, progress};
use brazen_speech::PiperVoice;
use futures_util::SinkExt;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

mod common;
use common::{Server, Ws};

async fn next(ws: &mut Ws) -> Value {
    common::next_within(ws, Duration::from_secs(240)).await.expect("an event within 4 minutes")
}

/// The customer's voice: Piper's, with its variation off, so the same words always make the
/// same sound and a run that passes once passes again (a random voice made Whisper tiny.en
/// mishear a word now and then).
fn customer() -> PiperVoice {
    let store = Store::new(Store::default_root());
    let install = |name: &str| store.install(Manifest::builtin().get(name).unwrap(), &progress()).unwrap();
    let dir = install("piper-en-us-joe-medium");
    let runtime = install("onnxruntime").join(brazen_speech::ONNX_RUNTIME_LIBRARY);
    PiperVoice::load(&dir.join("en_US-joe-medium.onnx"), &dir.join("en_US-joe-medium.onnx.json"), &runtime)
        .unwrap()
        .with_noise(0.0, 0.0)
}

/// `text` in the customer's voice, 24 kHz PCM16 bytes.
fn voice(customer: &PiperVoice, text: &str) -> Vec<u8> {
    let speech = customer.synthesize(text, 1.0).unwrap().samples;
    let mut resampler = Resampler::new(customer.sample_rate(), 24_000);
    let mut out = Vec::new();
    resampler.process_i16(&speech, &mut out);
    resampler.flush_i16(&mut out);
    out.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// What one spoken turn did: the user's transcript, the tools the agent ran, what it said.
#[derive(Debug, Default)]
struct Turn {
    heard: String,
    calls: Vec<(String, Value)>,
    outputs: Vec<Value>,
    said: String,
}

/// Says `text` (with silence around it) and follows the turn to its `response.done`.
async fn say(ws: &mut Ws, customer: &PiperVoice, text: &str) -> Turn {
    let speech = voice(customer, text);
    let audio: Vec<u8> = [vec![0u8; 9_600], speech, vec![0u8; 48_000]].concat();
    for chunk in audio.chunks(9_600) {
        let event = json!({"type": "input_audio_buffer.append", "audio": B64.encode(chunk)});
        ws.send(Message::Text(event.to_string().into())).await.unwrap();
    }
    let mut turn = Turn::default();
    loop {
        let e = next(ws).await;
        match e["type"].as_str().unwrap_or("") {
            "conversation.item.input_audio_transcription.completed" => {
                turn.heard = e["transcript"].as_str().unwrap_or_default().to_owned();
            }
            "conversation.item.created" if e["item"]["type"] == "function_call" => {
                let args = serde_json::from_str(e["item"]["arguments"].as_str().unwrap()).unwrap_or(Value::Null);
                turn.calls.push((e["item"]["name"].as_str().unwrap().to_owned(), args));
            }
            "conversation.item.created" if e["item"]["type"] == "function_call_output" => {
                turn.outputs.push(serde_json::from_str(e["item"]["output"].as_str().unwrap()).unwrap_or(Value::Null));
            }
            "response.done" => {
                turn.said = e["response"]["output"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["content"][0]["transcript"].as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                eprintln!(
                    "user: {text:?} (heard {:?})\n  calls: {:?}\n  agent: {:?}",
                    turn.heard, turn.calls, turn.said
                );
                return turn;
            }
            "error" => panic!("error during the turn {text:?}: {e}"),
            _ => {}
        }
    }
}

/// Says `text`; if the agent did not run `tool`, confirms once (as a customer would when asked).
async fn until_called(ws: &mut Ws, customer: &PiperVoice, text: &str, tool: &str) -> Turn {
    let turn = say(ws, customer, text).await;
    if turn.calls.iter().any(|(name, _)| name == tool) {
        return turn;
    }
    say(ws, customer, "Yes, please go ahead.").await
}

fn get_json(server: &Server, path: &str) -> Value {
    let (status, body) = server.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn a_spoken_order_leaves_an_order_a_shipment_and_an_analysis() {
    let server = Server::start(&[
        "--vad",
        "silero",
        "--asr",
        "whisper-tiny-en",
        "--llm",
        "qwen2.5-coder-1.5b",
        "--tts",
        "piper",
    ]);
    let customer = customer();
    let (mut ws, _) = common::connect(server.port, "/voice-live/realtime", &[]).await.unwrap();
    loop {
        if next(&mut ws).await["type"] == "session.created" {
            break;
        }
    }

    let browse = say(&mut ws, &customer, "Hi! What winter wear do you have?").await;
    assert!(
        browse.calls.iter().any(|(n, a)| n.contains("products") && a["category"] == "Winter wear"),
        "the agent looks up winter wear: {browse:?}"
    );
    let listed: Vec<Value> =
        browse.outputs.iter().flat_map(|o| o["products"].as_array().cloned().unwrap_or_default()).collect();
    let beanie = listed.iter().find(|p| p["ProductName"] == "Red Knit Beanie").expect("the red beanie is listed");

    let order = until_called(&mut ws, &customer, "Can I get two red knit beanies, please?", "order_products").await;
    let placed =
        order.outputs.iter().find(|o| o["OrderId"].is_string()).unwrap_or_else(|| panic!("an order: {order:?}"));
    assert_eq!((&placed["ProductId"], &placed["Quantity"]), (&beanie["id"], &json!(2)), "{placed}");
    let order_id = placed["OrderId"].as_str().unwrap().to_owned();

    let ship = until_called(
        &mut ws,
        &customer,
        "Please send them to 12 Elm Street, Springfield, Illinois.",
        "create_delivery_order",
    )
    .await;
    let shipment =
        ship.outputs.iter().find(|o| o["TrackingId"].is_string()).unwrap_or_else(|| panic!("a shipment: {ship:?}"));
    assert_eq!(shipment["OrderId"], json!(order_id));
    assert!(shipment["Destination"].as_str().unwrap().contains("Elm"), "{shipment}");

    let policy = say(&mut ws, &customer, "How many days do I have to return them?").await;
    let searched = policy.outputs.iter().flat_map(|o| o["passages"].as_array().cloned().unwrap_or_default());
    assert!(
        searched.into_iter().any(|p| p["source"] == "returns-policy.md"),
        "the returns policy is found: {policy:?}"
    );
    assert!(policy.said.contains("30") || policy.said.to_lowercase().contains("thirty"), "{policy:?}");

    say(&mut ws, &customer, "Great, thank you. Goodbye!").await;
    drop(ws);

    let orders = get_json(&server, "/api/orders");
    assert_eq!(orders["items"][0]["id"], json!(order_id));
    assert_eq!(orders["items"][0]["quantity"], 2);
    assert_eq!(get_json(&server, "/api/shipments")["items"][0]["order_id"], json!(order_id));
    let conversation_id = orders["items"][0]["conversation_id"].as_str().unwrap().to_owned();
    let path = format!("/api/conversations/{conversation_id}");
    for _ in 0..240 {
        let stored = get_json(&server, &path);
        match stored["analysis"]["status"].as_str() {
            Some("done") => {
                let analysis = &stored["analysis"]["analysis"];
                eprintln!("analysis: {analysis}");
                assert!((1..=5).contains(&analysis["rating"].as_i64().unwrap()));
                assert!(!analysis["call_reason"].as_str().unwrap().is_empty());
                return;
            }
            Some("failed") if stored["analysis"]["attempts"].as_i64() >= Some(3) => {
                panic!("the analysis failed: {}", stored["analysis"])
            }
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    panic!("no analysis within 4 minutes: {}", get_json(&server, &path)["analysis"]);
}
