//! The WebSocket client side shared by the benchmarks that speak the realtime protocol.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A client connection to `brazen serve`.
pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends one client event.
pub async fn send(ws: &mut Ws, event: Value) {
    ws.send(Message::Text(event.to_string().into())).await.expect("send");
}

/// The next event within `wait`, if any.
#[allow(dead_code)] // not every benchmark waits with a deadline
pub async fn next(ws: &mut Ws, wait: Duration) -> Option<Value> {
    match tokio::time::timeout(wait, ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str(&t).ok(),
        _ => None,
    }
}
