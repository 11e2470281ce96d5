//! The running broker: discovery → preflight and pricing → commitment under capacity → lock →
//! prove → fulfil, plus the reaper and the balance monitor. Each stage is a loop in its own
//! module; they share one [`Broker`]. From the lock on, the database is the source of truth,
//! so a restart resumes every committed order without re-proving finished work.
//!
//! Shutdown comes in two phases ([`Broker::run`]): the first signal stops discovery, pricing
//! and locking at once; committed orders keep proving and are fulfilled (or fail) before the
//! process exits. A second signal stops everything at once, leaving the database consistent.

mod aggregator;
mod committer;
mod discovery;
mod lists;
mod monitor;
mod pricer;
mod prover;
mod speed;
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
use crate::error::{BrokerError, Result};
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
    /// Requests waiting for a preflight slot.
    pricing: crate::pricing_queue::PricingQueue,
    /// Failed submissions per order key (in memory: a restart grants a fresh budget).
    submissions: Mutex<std::collections::HashMap<String, u32>>,
    /// Priority requestors named by `priority_requestor_lists`.
    listed_priority: Mutex<Vec<alloy::primitives::Address>>,
    /// The measured and calibrated proving speeds ([`speed`]).
    speeds: Mutex<speed::Known>,
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
            pricing: Default::default(),
            submissions: Mutex::new(Default::default()),
            listed_priority: Mutex::new(Vec::new()),
            speeds: Mutex::new(Default::default()),
        })
    }

    /// The configuration in force (re-read when the file changes).
    pub fn config(&self) -> Arc<BrokerConfig> {
        self.config.borrow().clone()
    }

    /// Runs until `stop.intake` is raised and no committed order is left, or `stop.now`, or a
    /// stage gives up (more than `max_critical_task_retries` failures in a row: the error is
    /// returned and the committed orders resume at the next start).
    pub async fn run(self: &Arc<Self>, stop: Stop) -> Result<()> {
        committer::recover(self).await?;
        speed::refresh(self).await?;
        speed::calibrate_if_needed(self);
        let mut intake = JoinSet::new();
        intake.spawn(discovery::run(self.clone()));
        intake.spawn(committer::run(self.clone()));
        let mut work = JoinSet::new();
        work.spawn(committer::watch_locks(self.clone()));
        work.spawn(prover::run(self.clone()));
        work.spawn(submitter::run(self.clone()));
        work.spawn(monitor::reaper(self.clone()));
        work.spawn(monitor::balances(self.clone()));
        work.spawn(monitor::health(self.clone()));
        work.spawn(lists::run(self.clone()));
        work.spawn(speed::watch_cluster(self.clone()));

        let mut now = stop.now.clone();
        let mut first = stop.intake.clone();
        let mut failure = tokio::select! {
            _ = first.wait_for(|s| *s) => None,
            _ = now.wait_for(|s| *s) => None,
            Some(Ok(e)) = intake.join_next() => Some(e),
            Some(Ok(e)) = work.join_next() => Some(e),
        };
        intake.abort_all();
        if failure.is_none() {
            tracing::info!("stopped discovery, pricing and locking");
            failure = self.drain(&mut work, now).await?;
        }
        work.abort_all();
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Waits until no committed order is left, `now` is raised or a stage gives up.
    async fn drain(
        &self,
        work: &mut JoinSet<BrokerError>,
        mut now: watch::Receiver<bool>,
    ) -> Result<Option<BrokerError>> {
        loop {
            let left = self.db.committed().await?.len();
            if left == 0 || *now.borrow() {
                if left > 0 {
                    tracing::warn!(
                        left,
                        "stopping with committed orders; they resume at the next start"
                    );
                }
                return Ok(None);
            }
            tracing::info!(left, "waiting for committed orders before exiting");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = now.wait_for(|s| *s) => {}
                Some(Ok(e)) = work.join_next() => return Ok(Some(e)),
            }
        }
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

/// Runs a stage's `step` for ever, `interval_ms()` apart (re-read each time: the file may
/// change), with the broker's `max_critical_task_retries`; see [`repeat`].
async fn every<F, Fut>(
    b: &Broker,
    what: &'static str,
    interval_ms: impl Fn() -> u64,
    step: F,
) -> BrokerError
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    repeat(what, interval_ms, || b.config().market.max_critical_task_retries, step).await
}

/// Runs `step` for ever, `interval_ms()` apart. A failing step is logged and tried again after
/// [`retry_delay`], so a stage survives a blip of the chain or the cluster; after more than
/// `max_retries()` failures in a row it gives up with [`BrokerError::StageGaveUp`].
async fn repeat<F, Fut>(
    what: &'static str,
    interval_ms: impl Fn() -> u64,
    max_retries: impl Fn() -> u32,
    mut step: F,
) -> BrokerError
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut failures = 0u32;
    loop {
        match step().await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures > max_retries() {
                    tracing::error!(stage = what, failures, "giving up: {e}");
                    return BrokerError::StageGaveUp { stage: what, failures, last: e.to_string() };
                }
                tracing::warn!(stage = what, failures, "{e}");
            }
        }
        tokio::time::sleep(retry_delay(interval_ms(), failures)).await;
    }
}

/// The longest wait between two tries of a failing stage.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The wait before a stage's next step after `failures` failures in a row: its interval (at
/// least 10 ms), doubled for each failure, at most [`MAX_RETRY_DELAY`] (never less than the
/// interval itself).
fn retry_delay(interval_ms: u64, failures: u32) -> Duration {
    let base = Duration::from_millis(interval_ms.max(10));
    let doubled = base.saturating_mul(1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX));
    doubled.min(MAX_RETRY_DELAY.max(base))
}

/// Seconds since the epoch by this machine's clock (for bookkeeping; deadlines use the chain's).
/// The failure reason of an order someone else fulfilled: lost, not done.
fn lost_to(prover: alloy::primitives::Address) -> String {
    format!("lost: fulfilled by {prover} first")
}

pub fn wall_clock() -> u64 {
    crate::order::now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn a_failing_stage_backs_off_doubling_up_to_a_minute() {
        assert_eq!(retry_delay(200, 0), Duration::from_millis(200));
        assert_eq!(retry_delay(200, 1), Duration::from_millis(400));
        assert_eq!(retry_delay(200, 4), Duration::from_millis(3_200));
        assert_eq!(retry_delay(200, 9), Duration::from_secs(60));
        assert_eq!(retry_delay(200, u32::MAX), Duration::from_secs(60));
        assert_eq!(retry_delay(0, 0), Duration::from_millis(10), "never a busy loop");
        assert_eq!(retry_delay(90_000, 3), Duration::from_secs(90), "never below the interval");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stage_gives_up_after_its_retries_in_a_row_and_a_success_resets_the_count() {
        // Fails twice, succeeds, then fails for good: with 2 retries it gives up at the 3rd
        // failure in a row, i.e. at the 6th step.
        let steps = AtomicU32::new(0);
        let step = || async {
            let n = steps.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 { Ok(()) } else { Err(BrokerError::Chain(format!("step {n} failed"))) }
        };
        let started = tokio::time::Instant::now();
        let e = repeat("testing", || 100, || 2, step).await;
        assert_eq!(steps.load(Ordering::SeqCst), 6);
        assert_eq!(e.code(), "TIFFIN-BROKER-018");
        let text = e.to_string();
        assert!(
            text.contains("testing failed 3 times in a row") && text.contains("step 6"),
            "{text}"
        );
        // Waits: 200 + 400 (failures), 100 (success), 200 + 400 (failures) ms.
        assert_eq!(started.elapsed(), Duration::from_millis(1_300));
    }
}
