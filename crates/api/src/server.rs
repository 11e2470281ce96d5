//! A running API server: the router, its background work and, if asked, a second `/metrics`
//! listener. `tiffin up` runs it beside in-process agents (`tiffin_workflow::crew`), `tiffin
//! api` in front of a distributed cluster whose agents run elsewhere; the tests run it exactly
//! as shipped. It starts no agents.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

/// A running API server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Shared state (cluster, tenants, config).
    pub state: Arc<AppState>,
    stop: watch::Sender<bool>,
    api: JoinHandle<std::io::Result<()>>,
    metrics: Option<JoinHandle<std::io::Result<()>>>,
    /// Serving HTTPS; the task that reloads its certificate.
    tls: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `bind` (port 0 for any free port) and serves plain HTTP.
    pub async fn start(bind: SocketAddr, state: Arc<AppState>) -> std::io::Result<Self> {
        Self::start_with_tls(bind, state, None).await
    }

    /// Binds `bind` and serves, HTTPS when `tls` is set (its certificate reloads on SIGHUP
    /// and when its files change, see [`tiffin_tls::ServerTls::spawn_reloader`]).
    pub async fn start_with_tls(
        bind: SocketAddr,
        state: Arc<AppState>,
        tls: Option<tiffin_tls::ServerTls>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let (stop, rx) = watch::channel(false);
        let reloader = match &tls {
            Some(t) => Some(t.spawn_reloader(tiffin_tls::RELOAD_POLL)?),
            None => None,
        };
        let api = tokio::spawn(crate::serve(listener, state.clone(), tls, rx));
        Ok(Self { addr, state, stop, api, metrics: None, tls: reloader })
    }

    /// Also serves `/metrics` (the same as the API's) on `bind`, until shutdown; returns the
    /// address bound (port 0 picks a free port).
    pub async fn serve_metrics(&mut self, bind: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let queue = Some(self.state.queue_gauges.clone());
        let task = crate::metrics::serve(listener, queue, self.stop.subscribe());
        self.metrics = Some(tokio::spawn(task));
        Ok(addr)
    }

    /// `http://ADDR`, or `https://ADDR` when serving TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting requests, lets requests in flight finish, and waits for everything to
    /// end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Some(reloader) = &self.tls {
            reloader.abort();
        }
        let _ = self.api.await;
        if let Some(m) = self.metrics {
            let _ = m.await;
        }
    }
}
