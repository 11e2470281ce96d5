//! The HTTP/1 connections of a listener (the API's and the verifier's), served by hyper with
//! bounds `axum::serve` does not offer: a client must send its request headers within
//! `header_read_timeout` (one that connects and sends nothing, or a byte at a time, is
//! disconnected instead of holding a task and a socket forever), and, where a cap is given, at
//! most `max_connections` are open at once (a connection over the cap is closed at once).
//! Graceful shutdown as `axum::serve`'s: stop accepting, let requests in flight finish, close
//! idle connections. With TLS the handshake must also end within the header timeout, and runs
//! in the connection's task, never in the accept loop.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

/// Pause after a failed accept (e.g. out of file descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds of [`serve`].
#[derive(Clone, Copy, Debug)]
pub struct ServeLimits {
    /// How long a client may take to send its request headers (and, over TLS, to handshake).
    pub header_read_timeout: Duration,
    /// How many connections may be open at once; `None`: no cap.
    pub max_connections: Option<usize>,
}

/// Serves `app` on `listener` until `shutdown` turns true, then waits for its connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let open = limits.max_connections.map(|n| Arc::new(Semaphore::new(n.max(1))));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(shutdown.clone()) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let permit = match &open {
            None => None,
            Some(open) => match Arc::clone(open).try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    warn!(
                        max_connections = limits.max_connections,
                        "connection refused: too many open"
                    );
                    continue;
                }
            },
        };
        let timeout = limits.header_read_timeout;
        let conn = accept(stream, tls.clone(), app.clone(), timeout, shutdown.clone());
        connections.spawn(async move {
            conn.await;
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Serves one accepted connection, after a TLS handshake when `tls` is set.
async fn accept(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    app: Router,
    header_read_timeout: Duration,
    shutdown: watch::Receiver<bool>,
) {
    if let Some(io) = crate::accept(stream, tls.as_ref(), header_read_timeout).await {
        connection(io, app, header_read_timeout, shutdown).await;
    }
}

/// Serves one connection; on shutdown, finishes its request in flight and closes.
async fn connection(
    stream: Box<dyn crate::Io>,
    app: Router,
    header_read_timeout: Duration,
    shutdown: watch::Receiver<bool>,
) {
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stopped(shutdown) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(error = %e, "connection ended with an error");
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
