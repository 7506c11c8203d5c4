//! Accepting HTTP connections and shutting down.
//!
//! Each TCP connection is served by hyper's HTTP/1 server with a timer, so a client that opens
//! a connection and never finishes its request headers (or never sends a byte) is dropped after
//! [`HEADER_TIMEOUT`] instead of holding a socket and a task forever. (HTTP/2 is not served:
//! every client of the Realtime protocol upgrades an HTTP/1.1 request.) On SIGTERM or Ctrl-C the
//! listener stops taking connections; each session lets its response in progress finish (within
//! the runtime's drain time), sends an `error` event `server_shutting_down` and closes its
//! WebSocket (1001, going away); the process waits for them, [`DRAIN_MARGIN`] past the drain
//! time at most, and returns (the caller then flushes the database).

use axum::Router;
use brazen_runtime::Runtime;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The longest a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long past the runtime's drain time shutdown waits for sessions to close their sockets.
const DRAIN_MARGIN: Duration = Duration::from_secs(3);

/// Serves `app` on `listener` until SIGTERM or Ctrl-C, then closes the sessions of `runtime`.
pub async fn serve(listener: TcpListener, app: Router, runtime: Arc<Runtime>) {
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Events are small and latency-bound: send each write at once (no Nagle delay).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        // Handlers see the client's address (the limits on new sessions per address).
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                request
            },
        ));
        let closing = runtime.closing();
        let drain = runtime.limits.drain + DRAIN_MARGIN;
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(tcp), service).with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("connection ended: {e}");
                    }
                }
                () = closing => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(drain, conn).await;
                }
            }
        });
    }
    tracing::info!("shutting down: closing {} session(s)", runtime.open_sessions());
    runtime.begin_closing();
    let drained = tokio::time::timeout(runtime.limits.drain + DRAIN_MARGIN, async {
        while runtime.open_sessions() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    if drained.await.is_err() {
        tracing::warn!("{} session(s) did not close in time", runtime.open_sessions());
    }
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}
