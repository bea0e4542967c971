//! Accepting and serving connections, with the limits a server exposed to clients it does not
//! control needs: how many connections at once, and how long a request may take to arrive.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long connections still open at shutdown get to finish their requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Connection limits of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Connections served at once; further ones wait in the listen backlog.
    pub(crate) max_connections: usize,
    /// How long a request's head may take to arrive, counted from the end of the previous
    /// response on a kept-alive connection (so it also closes idle connections), and how long
    /// its body may take after that.
    pub(crate) read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            read_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `token` is cancelled, then lets open connections finish
/// their requests for a grace period.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    token: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        // Waiting for a permit before accepting leaves extra clients in the kernel's backlog.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p,
            () = token.cancelled() => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = token.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        match accepted {
            Ok((stream, _)) => {
                let conn = serve_connection(stream, app.clone(), limits, token.clone(), permit);
                connections.spawn(conn);
            }
            Err(e) => {
                // Running out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "sqs-local could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "sqs-local closed connections still open after the shutdown grace period"
        );
        connections.shutdown().await;
    }
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    token: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    // Small JSON responses: send them at once rather than wait for more to coalesce.
    let _ = stream.set_nodelay(true);
    let service = TowerToHyperService::new(app);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        () = token.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error during shutdown");
    }
}
