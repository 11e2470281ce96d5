//! The HTTP/1 connections of a listener, served by hyper with a header-read timeout (which
//! `axum::serve` does not offer): a client that opens a connection and sends its headers a
//! byte at a time, or not at all, is disconnected after the timeout instead of holding a task
//! and a socket forever. Graceful shutdown as `axum::serve`'s: stop accepting, let requests in
//! flight finish, close idle connections. With TLS (`--tls-cert`), the handshake must also end
//! within the header timeout, and runs in the connection's task, never in the accept loop.

use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tiffin_tls::TlsAcceptor;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// Pause after a failed accept (e.g. out of file descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` turns true, then waits for the connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read_timeout: Duration,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    // Links handed to clients (upload URLs, receipt URLs) must name https: this server is
    // where TLS ends, so what a client says about the protocol is replaced.
    let app = match tls {
        Some(_) => app.layer(axum::middleware::map_request(over_https)),
        None => app,
    };
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
        let conn = accept(stream, tls.clone(), app.clone(), header_read_timeout, shutdown.clone());
        connections.spawn(conn);
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
        debug!(error = %e, "connection ended with an error");
    }
}

/// Marks a request as received over TLS (`x-forwarded-proto: https`, see
/// [`crate::AppState::base_url`]).
async fn over_https(mut req: axum::extract::Request) -> axum::extract::Request {
    let https = axum::http::HeaderValue::from_static("https");
    req.headers_mut().insert("x-forwarded-proto", https);
    req
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
}
