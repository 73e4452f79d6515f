//! Accepting connections without letting slow or idle clients take the gateway down: every
//! connection must finish its request headers within `header_read_timeout` (also how long
//! an idle keep-alive connection is kept), every request must be answered within
//! `request_timeout`, and at most `max_connections` are open at once — below the process's
//! file-descriptor limit, which is raised to its hard limit at start — so `accept` never
//! fails for want of descriptors and `/healthz` keeps answering. HTTP/1.1 only: the
//! version our clients (merchant servers, browsers, wallets) speak, and the one whose
//! header timeout covers a connection from its first byte.

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How connections are held.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Descriptors kept back from connections: the database, log files, outgoing callbacks and
/// wallet calls need some too.
const RESERVED_DESCRIPTORS: u64 = 512;

/// Raises the soft descriptor limit to the hard one, and returns how many connections fit
/// under it (`wanted`, or fewer).
pub fn connection_cap(wanted: usize) -> usize {
    let soft = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let fit = soft.saturating_sub(RESERVED_DESCRIPTORS).max(64);
    let cap = wanted.min(usize::try_from(fit).unwrap_or(usize::MAX));
    if cap < wanted {
        tracing::warn!(
            descriptors = soft,
            max_connections = cap,
            "connections capped by the descriptor limit"
        );
    }
    cap
}

/// Serves `app` on `listener` until `shutdown`; then stops accepting, lets requests in
/// flight finish (idle connections close at once) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(64 * 1024);
    loop {
        // At the cap, wait for a connection to close before accepting another: newcomers
        // wait in the kernel's backlog instead of costing a descriptor each.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or similar: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request.map(axum::body::Body::new))
            });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that times out or misbehaves simply loses its connection.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
