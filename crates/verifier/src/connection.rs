//! Accepting connections with bounds `axum::serve` does not offer: at most `max_connections`
//! open at once (a connection over the cap is closed at once), and a client must send its
//! request headers within `header_read_timeout` (one that connects and sends nothing, or a
//! byte at a time, is disconnected instead of holding a task and a file descriptor). Shutdown
//! as `axum::serve`'s graceful one: stop accepting, finish the requests in flight. With TLS the
//! handshake runs in the connection's task and must end within the header timeout too.

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tiffin_tls::TlsAcceptor;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

/// Pause after a failed accept (e.g. out of file descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` turns true, then waits for its connections.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    header_read_timeout: Duration,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let open = Arc::new(Semaphore::new(max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(shutdown.clone()) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
            tracing::warn!(max_connections, "connection refused: too many open");
            continue;
        };
        let conn = accept(stream, tls.clone(), app.clone(), header_read_timeout, shutdown.clone());
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
    if let Some(io) = tiffin_tls::accept(stream, tls.as_ref(), header_read_timeout).await {
        connection(io, app, header_read_timeout, shutdown).await;
    }
}

/// Serves one connection; on shutdown, finishes its request in flight and closes.
async fn connection(
    stream: Box<dyn tiffin_tls::Io>,
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
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Completes once `shutdown` is true (or its sender is gone).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
