//! The running broker: discovery → preflight and pricing → commitment under capacity → lock →
//! prove → fulfil, plus the reaper and the balance monitor. Each stage is a loop in its own
//! module; they share one [`Broker`]. From the lock on, the database is the source of truth,
//! so a restart resumes every committed order without re-proving finished work.
//!
//! Shutdown comes in two phases ([`Broker::run`]): the first signal stops discovery, pricing
//! and locking at once; committed orders keep proving and are fulfilled (or fail) before the
//! process exits. A second signal stops everything at once, leaving the database consistent.
//!
//! Layers (no module imports one that imports it back; `scripts/module-cycles` checks): the
//! leaves `priced` (a priced request) and `preflights` (the preflight cache and slots) import
//! no sibling; `context` (the [`Broker`], [`Stop`], [`wall_clock`]) imports only those; `retry`
//! and `inputs` import `context`; the stages import those below them (`speed` ← `pricer` ←
//! `discovery`, `aggregator` ← `submitter`), never a stage that imports them; this module only
//! declares them and spawns the stages.

mod aggregator;
mod committer;
mod context;
mod discovery;
mod inputs;
mod lists;
mod monitor;
mod preflights;
mod priced;
mod pricer;
mod prover;
mod retry;
mod speed;
mod submitter;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::{BrokerError, Result};

pub use context::{Broker, Stop, wall_clock};
pub use priced::Priced;

impl Broker {
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
}
