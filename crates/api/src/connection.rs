//! The API's listener, served by [`tiffin_tls::serve`] (a header-read timeout, graceful
//! shutdown, the TLS handshake in the connection's task) with no connection cap; over TLS
//! (`--tls-cert`) the links handed to clients name https.

use std::time::Duration;

use axum::Router;
use tiffin_tls::{ServeLimits, TlsAcceptor};
use tokio::net::TcpListener;
use tokio::sync::watch;

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
    let limits = ServeLimits { header_read_timeout, max_connections: None };
    tiffin_tls::serve(listener, app, limits, tls, shutdown).await
}

/// Marks a request as received over TLS (`x-forwarded-proto: https`, see
/// [`crate::AppState::base_url`]).
async fn over_https(mut req: axum::extract::Request) -> axum::extract::Request {
    let https = axum::http::HeaderValue::from_static("https");
    req.headers_mut().insert("x-forwarded-proto", https);
    req
}
