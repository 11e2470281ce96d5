//! `tiffin agent`: one worker process of a distributed cluster.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use tiffin_workflow::handlers::Context;
use tiffin_workflow::{AgentConfig, Crew, Isolation, kinds};
use tokio::sync::watch;

use crate::backend::BackendArgs;

#[derive(Args)]
pub struct AgentArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// Task kinds to serve, comma separated (exec,prove,join,aux,snark).
    #[arg(long, env = "TIFFIN_KINDS", default_value = "exec,prove,join,aux")]
    kinds: String,
    /// Tasks worked on at once.
    #[arg(long, env = "TIFFIN_CONCURRENCY", default_value_t = 1)]
    concurrency: usize,
    /// Agent name shown as the lease holder (default: host-pid).
    #[arg(long, env = "TIFFIN_AGENT_ID")]
    id: Option<String>,
    /// Lease length in seconds: a crashed agent's task is retried this long after it died.
    #[arg(long, env = "TIFFIN_LEASE_SECS", default_value_t = 30)]
    lease_secs: u64,
    /// Heartbeat period in seconds.
    #[arg(long, env = "TIFFIN_HEARTBEAT_SECS", default_value_t = 5)]
    heartbeat_secs: u64,
    /// Housekeeping period in seconds (aux agents).
    #[arg(long, env = "TIFFIN_HOUSEKEEPING_SECS", default_value_t = 5)]
    housekeeping_secs: u64,
    /// Keep finished jobs (and their receipts) this many hours before GC.
    #[arg(long, env = "TIFFIN_RETENTION_HOURS", default_value_t = 168)]
    retention_hours: u64,
    /// Seconds in-flight tasks may run after SIGTERM before their leases are given back.
    #[arg(long, env = "TIFFIN_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// The largest segment size (po2) this agent accepts (e.g. 20 on a GPU with less memory):
    /// announced to operators and enforced at claim; at most the cluster's maximum.
    #[arg(long, env = "TIFFIN_MAX_PO2", default_value_t = tiffin_zkvm::MAX_PO2,
          value_parser = clap::value_parser!(u32).range(i64::from(tiffin_zkvm::MIN_PO2)..=i64::from(tiffin_zkvm::MAX_PO2)))]
    max_po2: u32,
    /// Aux agents drop agents that have not reported for this many hours from the registry.
    #[arg(long, env = "TIFFIN_AGENT_RETENTION_HOURS", default_value_t = 24)]
    agent_retention_hours: u64,
    /// Serve Prometheus metrics (`/metrics`: tasks claimed, completed, failed, durations,
    /// cycles proven) on this address, e.g. 127.0.0.1:9100; the agent's only HTTP endpoint.
    #[arg(long, env = "TIFFIN_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

/// Proofs in child processes of this binary, so stopping a task frees its cores at once
/// (the one place the CLI's agents get their isolation).
pub(crate) fn isolated_proving() -> Result<Isolation> {
    Ok(Isolation::Child(std::env::current_exe()?))
}

pub fn run(args: AgentArgs) -> Result<()> {
    let kinds = kinds::parse_list(&args.kinds).map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let (db, stores) = args.backend.open().await?;
        let id = args.id.clone().unwrap_or_else(|| format!("agent-{}", std::process::id()));
        let mut cfg = AgentConfig::new(id.clone(), kinds);
        cfg.concurrency = args.concurrency;
        cfg.lease = Duration::from_secs(args.lease_secs);
        cfg.heartbeat = Duration::from_secs(args.heartbeat_secs);
        cfg.housekeeping = Duration::from_secs(args.housekeeping_secs);
        cfg.retention = Duration::from_secs(args.retention_hours * 3600);
        cfg.shutdown_grace = Duration::from_secs(args.shutdown_grace_secs);
        cfg.max_po2 = args.max_po2;
        cfg.agent_retention = Duration::from_secs(args.agent_retention_hours * 3600);
        cfg.isolation = isolated_proving()?;
        let (tx, rx) = watch::channel(false);
        let metrics = match args.metrics_listen {
            Some(bind) => Some(serve_metrics(bind, rx).await?),
            None => None,
        };
        let crew = Crew::spawn(&Context::new(db, stores), vec![cfg]);
        eprintln!("tiffin agent {id} running; SIGTERM or Ctrl-C stops it gracefully");
        stop_requested().await?;
        eprintln!("shutting down: finishing in-flight tasks");
        let _ = tx.send(true);
        crew.stop().await?;
        if let Some(m) = metrics {
            m.await??;
        }
        Ok(())
    })
}

/// Resolves at the first SIGTERM or Ctrl-C.
pub(crate) async fn stop_requested() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// Serves the agent's `/metrics` on `bind` until shutdown (prints the address bound, so port 0
/// works).
async fn serve_metrics(
    bind: SocketAddr,
    shutdown: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("serving metrics on {bind}"))?;
    let addr = listener.local_addr()?;
    println!("metrics on http://{addr}/metrics");
    Ok(tokio::spawn(tiffin_api::metrics::serve(listener, None, shutdown)))
}
