//! The running broker: discovery → preflight and pricing → commitment under capacity → lock →
//! prove → fulfil, plus the reaper and the balance monitor. Each stage is a loop in its own
//! module; they share one [`Broker`]. From the lock on, the database is the source of truth,
//! so a restart resumes every committed order without re-proving finished work.
//!
//! Shutdown comes in two phases ([`Broker::run`]): the first signal stops discovery, pricing
//! and locking at once; committed orders keep proving and are fulfilled (or fail) before the
//! process exits. A second signal stops everything at once, leaving the database consistent.

mod committer;
mod discovery;
mod lists;
mod monitor;
mod pricer;
mod prover;
mod submitter;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::attest::VerifierService;
use crate::breaker::CircuitBreaker;
use crate::chain::Chain;
use crate::cluster::Cluster;
use crate::config::BrokerConfig;
use crate::db::Db;
use crate::error::Result;
use crate::order::Order;
use crate::params;

pub use committer::Priced;

/// Everything the stages share.
pub struct Broker {
    pub chain: Chain,
    pub cluster: Cluster,
    pub verifier: VerifierService,
    pub db: Db,
    config: watch::Receiver<Arc<BrokerConfig>>,
    breaker: Mutex<CircuitBreaker>,
    /// Priced requests waiting for their time and for capacity (not yet committed).
    queue: Mutex<Vec<Priced>>,
    /// Orders a task is driving right now (by key).
    driving: Mutex<HashSet<String>>,
    preflights: pricer::PreflightCache,
    /// Failed submissions per order key (in memory: a restart grants a fresh budget).
    submissions: Mutex<std::collections::HashMap<String, u32>>,
    /// Priority requestors named by `priority_requestor_lists`.
    listed_priority: Mutex<Vec<alloy::primitives::Address>>,
}

/// What stops the broker.
#[derive(Debug, Clone)]
pub struct Stop {
    /// Stop discovering, pricing and locking (the first signal).
    pub intake: watch::Receiver<bool>,
    /// Stop everything now (the second signal).
    pub now: watch::Receiver<bool>,
}

impl Broker {
    pub fn new(
        chain: Chain,
        cluster: Cluster,
        verifier: VerifierService,
        db: Db,
        config: watch::Receiver<Arc<BrokerConfig>>,
    ) -> Arc<Self> {
        let breaker = CircuitBreaker::new(params::breaker(&config.borrow()));
        Arc::new(Self {
            chain,
            cluster,
            verifier,
            db,
            config,
            breaker: Mutex::new(breaker),
            queue: Mutex::new(Vec::new()),
            driving: Mutex::new(HashSet::new()),
            preflights: pricer::PreflightCache::default(),
            submissions: Mutex::new(Default::default()),
            listed_priority: Mutex::new(Vec::new()),
        })
    }

    /// The configuration in force (re-read when the file changes).
    pub fn config(&self) -> Arc<BrokerConfig> {
        self.config.borrow().clone()
    }

    /// Runs until `stop.intake` is raised and no committed order is left, or `stop.now`.
    pub async fn run(self: &Arc<Self>, stop: Stop) -> Result<()> {
        committer::recover(self).await?;
        let mut intake = JoinSet::new();
        intake.spawn(discovery::run(self.clone()));
        intake.spawn(committer::run(self.clone()));
        let mut work = JoinSet::new();
        work.spawn(prover::run(self.clone()));
        work.spawn(submitter::run(self.clone()));
        work.spawn(monitor::reaper(self.clone()));
        work.spawn(monitor::balances(self.clone()));
        work.spawn(monitor::health(self.clone()));
        work.spawn(lists::run(self.clone()));

        let mut now = stop.now.clone();
        let mut first = stop.intake.clone();
        tokio::select! {
            _ = first.wait_for(|s| *s) => {}
            _ = now.wait_for(|s| *s) => {}
        }
        intake.abort_all();
        tracing::info!("stopped discovery, pricing and locking");
        loop {
            let left = self.db.committed().await?.len();
            if left == 0 || *now.borrow() {
                if left > 0 {
                    tracing::warn!(
                        left,
                        "stopping with committed orders; they resume at the next start"
                    );
                }
                break;
            }
            tracing::info!(left, "waiting for committed orders before exiting");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = now.wait_for(|s| *s) => {}
            }
        }
        work.abort_all();
        Ok(())
    }

    /// Every priority requestor: configured and listed.
    fn priority_requestors(&self) -> Vec<alloy::primitives::Address> {
        let mut all = self.config().market.priority_requestor_addresses.clone();
        all.extend(self.listed_priority.lock().expect("list lock").iter().copied());
        all
    }

    /// Moves `order` to its new state if it is still in `from`; logs a lost race.
    async fn save(&self, order: &Order, from: crate::order::OrderState) -> Result<bool> {
        let moved = self.db.update(order, from).await?;
        if !moved {
            tracing::debug!(order = order.key(), %from, to = %order.state, "order moved elsewhere");
        }
        Ok(moved)
    }
}

/// Runs `call` up to `1 + req_retry_count` times, `req_retry_sleep_ms` apart, until it succeeds
/// (the cluster's API may blip; a request must not be lost to one refused connection).
async fn with_retries<T, F, Fut>(b: &Broker, what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let (retries, sleep) = {
        let p = &b.config().prover;
        (p.req_retry_count, p.req_retry_sleep_ms)
    };
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if attempt < retries => {
                attempt += 1;
                tracing::debug!("{what} failed ({attempt}/{retries}): {e}");
                tokio::time::sleep(Duration::from_millis(sleep)).await;
            }
            other => return other,
        }
    }
}

/// Runs `step` for ever, `interval_ms()` apart (re-read each time: the file may change),
/// logging its errors without stopping: a stage survives a blip of the chain or the cluster.
async fn every<F, Fut>(what: &'static str, interval_ms: impl Fn() -> u64, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    loop {
        if let Err(e) = step().await {
            tracing::warn!("{what}: {e}");
        }
        tick(interval_ms()).await;
    }
}

/// Sleeps `ms` milliseconds (the loops' tick).
async fn tick(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms.max(10))).await;
}

/// Seconds since the epoch by this machine's clock (for bookkeeping; deadlines use the chain's).
pub fn wall_clock() -> u64 {
    crate::order::now_ms() / 1000
}
