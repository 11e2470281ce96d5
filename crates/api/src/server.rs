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
}

impl Server {
    /// Binds `bind` (port 0 for any free port) and serves.
    pub async fn start(bind: SocketAddr, state: Arc<AppState>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let (stop, rx) = watch::channel(false);
        let api = tokio::spawn(crate::serve(listener, state.clone(), rx));
        Ok(Self { addr, state, stop, api, metrics: None })
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

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, lets requests in flight finish, and waits for everything to
    /// end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.api.await;
        if let Some(m) = self.metrics {
            let _ = m.await;
        }
    }
}
