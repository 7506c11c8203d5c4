//! The Realtime WebSocket as a transport of the runtime's connection driver: axum's messages in
//! and out as [`ClientFrame`]s and [`ServerFrame`]s, its read errors as close codes.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use brazen_runtime::SessionSlot;
use brazen_runtime::connection::{self, ClientFrame, Close, ConnectionOptions, HARD_FRAME_LIMIT, ServerFrame};
use futures_util::{SinkExt, StreamExt, future, stream};

/// Read buffer per connection: small, so idle sessions cost little memory.
const READ_BUFFER: usize = 4 * 1024;

/// Accepts the upgrade and serves the connection in the place `slot` holds.
pub fn upgrade(upgrade: WebSocketUpgrade, slot: SessionSlot, options: ConnectionOptions) -> Response {
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_upgrade(move |socket| run(socket, slot, options))
}

/// Serves one connection until the client leaves.
async fn run(socket: WebSocket, slot: SessionSlot, options: ConnectionOptions) {
    let (sink, messages) = socket.split();
    let frames_out = sink.with(|frame| {
        future::ready(Ok::<_, axum::Error>(match frame {
            ServerFrame::Text(text) => Message::Text(text.into()),
            ServerFrame::Close(Close { code, reason }) => {
                Message::Close(Some(CloseFrame { code, reason: reason.into() }))
            }
        }))
    });
    // Pings and pongs are the socket's own business; a close frame or the end of the socket ends
    // the frames, and so the session.
    let frames_in = stream::unfold(messages, |mut messages| async move {
        loop {
            let frame = match messages.next().await? {
                Ok(Message::Text(text)) => ClientFrame::Text(text),
                Ok(Message::Binary(bytes)) => ClientFrame::Binary(bytes),
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(Message::Close(_)) => return None,
                Err(e) => ClientFrame::Failed { error: e.to_string(), close: close_code(e) },
            };
            return Some((frame, messages));
        }
    });
    connection::drive::<Utf8Bytes, _>(frames_in, frames_out, slot, options).await;
}

/// The close frame for a failed read, if the connection can still take one: 1009 for a frame
/// over [`HARD_FRAME_LIMIT`], 1002 for a broken frame, 1007 for text that is not UTF-8.
fn close_code(e: axum::Error) -> Option<Close> {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => Some(Close::TOO_LARGE),
        tungstenite::Error::Protocol(_) => Some(Close::PROTOCOL),
        tungstenite::Error::Utf8(_) => Some(Close::NOT_UTF8),
        _ => None,
    }
}
