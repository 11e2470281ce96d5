//! A whole cluster process: the API plus in-process agents (and so the housekeeper, which runs
//! in every agent serving `aux`) over one queue and one pair of stores. `tiffin up` runs this
//! on the embedded backends; `tiffin api` runs it with no agents against a distributed
//! cluster; the tests run it exactly as shipped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tiffin_workflow::handlers::Context;
use tiffin_workflow::{Agent, AgentConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::AppState;

/// A running API server with its agents.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Shared state (cluster, tenants, config).
    pub state: Arc<AppState>,
    stop: watch::Sender<bool>,
    api: JoinHandle<std::io::Result<()>>,
    metrics: Option<JoinHandle<std::io::Result<()>>>,
    agents: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds `bind` (port 0 for any free port), starts the agents, and serves.
    pub async fn start(
        bind: SocketAddr,
        state: Arc<AppState>,
        agents: Vec<AgentConfig>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let (stop, rx) = watch::channel(false);
        let handles = agents
            .into_iter()
            .map(|cfg| {
                let ctx = Context {
                    db: state.cluster.db.clone(),
                    stores: state.cluster.stores.clone(),
                    rt: tokio::runtime::Handle::current(),
                    room_timeout: Duration::from_secs(3600),
                };
                tokio::spawn(Agent::new(cfg, ctx).run(rx.clone()))
            })
            .collect();
        let api = tokio::spawn(crate::serve(listener, state.clone(), rx));
        Ok(Self { addr, state, stop, api, metrics: None, agents: handles })
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

    /// Stops accepting requests, lets agents finish in-flight tasks within their grace, and
    /// waits for everything to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.api.await;
        if let Some(m) = self.metrics {
            let _ = m.await;
        }
        for a in self.agents {
            let _ = a.await;
        }
    }
}
