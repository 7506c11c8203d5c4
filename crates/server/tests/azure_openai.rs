//! `--llm azure-openai` with an Entra ID identity (a client secret in the environment), against a
//! stand-in Azure OpenAI deployment and token endpoint written from the published formats: the
//! turn is posted to the deployment's URL with its `api-version` and the token as the bearer.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

mod common;
use common::{Server, send};

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

async fn token(State(seen): State<Seen>, Path(tenant): Path<String>, body: String) -> Response {
    seen.0.lock().unwrap().push(format!("token {tenant} {body}"));
    if tenant != "tenant-1" || !body.contains("client_secret=s3cret") {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client"}))).into_response();
    }
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "entra-token-1"})).into_response()
}

async fn completions(
    State(seen): State<Seen>,
    Path(deployment): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    seen.0
        .lock()
        .unwrap()
        .push(format!("chat {deployment} {} {bearer}", query.get("api-version").cloned().unwrap_or_default()));
    if bearer != "Bearer entra-token-1" {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"code": "401", "message": "Access denied"}})))
            .into_response();
    }
    let chunk = |text: &str| json!({"choices": [{"index": 0, "delta": {"content": text}}]}).to_string();
    let body = format!("data: {}\n\ndata: {}\n\ndata: [DONE]\n\n", chunk("Hello from "), chunk("Azure."));
    ([("content-type", "text/event-stream")], body).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_identity_reaches_an_azure_openai_deployment() {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/openai/deployments/{deployment}/chat/completions", post(completions))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let server = Server::start_with_env(
        &["--agent", "none", "--llm", "azure-openai", "--llm-url", &url, "--llm-model", "gpt-4o-mini"],
        &[
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_CLIENT_ID", "app-1"),
            ("AZURE_CLIENT_SECRET", "s3cret"),
            ("AZURE_AUTHORITY_HOST", url.as_str()),
            ("AZURE_OPENAI_API_KEY", ""),
            ("AZURE_OPENAI_AD_TOKEN", ""),
        ],
    );
    let (mut ws, _) = common::connect(server.port, "/voice-live/realtime", &[]).await.unwrap();
    common::until(&mut ws, "session.created").await;
    send(&mut ws, json!({"type": "session.update", "session": {"modalities": ["text"]}})).await;
    send(
        &mut ws,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "Hi"}]}}),
    )
    .await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let events = common::until(&mut ws, "response.done").await;
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "completed", "{done}");
    let said: String =
        events.iter().filter(|e| e["type"] == "response.text.delta").filter_map(|e| e["delta"].as_str()).collect();
    assert_eq!(said, "Hello from Azure.");
    let seen = seen.0.lock().unwrap().clone();
    assert!(
        seen[0].starts_with("token tenant-1 ")
            && seen[0].contains("scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default"),
        "{seen:?}"
    );
    assert_eq!(seen[1], "chat gpt-4o-mini 2024-10-21 Bearer entra-token-1");
}
