//! The agent: claims tasks of its kinds with leases, runs them on blocking threads while a
//! heartbeat keeps the lease alive, and reports the outcome.
//!
//! One claimer per agent takes as many tasks as it has free slots in one claim (one
//! transaction), and completions go to the TaskDB in groups ([`Completer`]), so an agent with
//! many slots of short tasks costs the database a transaction per group, not per task.
//!
//! Fixes Bento's failure modes by construction: no sleep-polling (idle agents block in
//! `wait_for_work` and are woken by TaskDB), leases renewed by heartbeat (an expired lease is
//! fenced, so a slow old attempt cannot complete twice), and a heartbeat that learns of a
//! cancelled job stops the work instead of proving on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tiffin_taskdb::{Error as DbError, HeartbeatOutcome, Kind, Lease};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::completions::{self, Completer};
use crate::handlers::{self, Blob, Context, Outcome, Task};
use crate::housekeeper::DEFAULT_AGENT_RETENTION;
use crate::profile::AgentProfile;
use crate::worker::Isolation;
use crate::{Housekeeper, TaskError, kinds, metrics};

/// How an agent behaves.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Shown in TaskDB as the lease holder.
    pub id: String,
    /// Kinds this agent serves.
    pub kinds: Vec<Kind>,
    /// Tasks worked on at once.
    pub concurrency: usize,
    /// Lease length; a crashed agent's task is requeued this long after its last heartbeat.
    pub lease: Duration,
    /// Heartbeat period (well under `lease`).
    pub heartbeat: Duration,
    /// Longest idle wait before re-checking (wake-ups normally come much sooner).
    pub idle_wait: Duration,
    /// On shutdown, how long in-flight tasks may run before their leases are given back.
    pub shutdown_grace: Duration,
    /// Housekeeping period (only agents serving `aux` run the housekeeper).
    pub housekeeping: Duration,
    /// Finished jobs older than this are garbage collected with their blobs.
    pub retention: Duration,
    /// Where proofs, lifts, joins and resolves run: a child process makes them stoppable.
    pub isolation: Isolation,
    /// Agents that have not reported for this long are dropped from the registry by the
    /// housekeeper (the listing shows them as dead until then).
    pub agent_retention: Duration,
    /// The largest segment size (po2) this agent accepts, announced in its presence reports
    /// and enforced at claim ([`AgentConfig::max_work`]).
    pub max_po2: u32,
}

impl AgentConfig {
    /// The most work a task this agent claims may declare: the execute task declares a prove
    /// task's work as its segment's 2^po2 cycles, so 2^`max_po2`.
    pub fn max_work(&self) -> i64 {
        1i64 << self.max_po2.min(62)
    }

    /// Defaults for an agent serving `kinds`.
    pub fn new(id: impl Into<String>, kinds: Vec<Kind>) -> Self {
        Self {
            id: id.into(),
            kinds,
            concurrency: 1,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(5),
            idle_wait: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            housekeeping: Duration::from_secs(5),
            retention: Duration::from_secs(7 * 24 * 3600),
            isolation: Isolation::InProcess,
            agent_retention: DEFAULT_AGENT_RETENTION,
            max_po2: tiffin_zkvm::MAX_PO2,
        }
    }
}

/// Runs a task instead of the workflow's handlers (benchmarks of the agent loop itself).
pub type Handler = Arc<dyn Fn(&Lease) -> Result<Outcome, TaskError> + Send + Sync>;

/// A worker process (or one of several in the embedded cluster).
pub struct Agent {
    cfg: AgentConfig,
    ctx: Context,
    completer: Option<Completer>,
    handler: Option<Handler>,
}

impl Agent {
    /// An agent over the given queue and stores. It groups its completions on its own unless
    /// given a [`Completer`] to share ([`Agent::with_completer`]).
    pub fn new(cfg: AgentConfig, ctx: Context) -> Self {
        Self { cfg, ctx, completer: None, handler: None }
    }

    /// Shares `completer` (e.g. one per process) with other agents.
    pub fn with_completer(mut self, completer: Completer) -> Self {
        self.completer = Some(completer);
        self
    }

    /// Runs every task with `handler` instead of the workflow's handlers.
    pub fn with_handler(mut self, handler: Handler) -> Self {
        self.handler = Some(handler);
        self
    }

    /// Runs until `shutdown` becomes true, then stops claiming, lets in-flight tasks finish
    /// within the grace period and gives back the leases of those that do not.
    pub async fn run(mut self, shutdown: watch::Receiver<bool>) {
        if self.completer.is_none() {
            self.completer =
                Some(Completer::start(self.ctx.db.clone(), completions::DEFAULT_WINDOW));
        }
        let this = Arc::new(self);
        info!(agent = %this.cfg.id, kinds = ?this.cfg.kinds, "agent started");
        metrics::agent_started(&this.cfg.kinds);
        let mut workers = Vec::new();
        {
            let (a, s) = (this.clone(), shutdown.clone());
            workers.push(tokio::spawn(async move { a.claimer(s).await }));
        }
        {
            let (a, s) = (this.clone(), shutdown.clone());
            workers.push(tokio::spawn(async move { a.report_presence(s).await }));
        }
        if this.cfg.kinds.iter().any(|k| k.as_str() == kinds::AUX) {
            let hk =
                Housekeeper::new(this.ctx.db.clone(), this.ctx.stores.clone(), this.cfg.retention)
                    .forgetting_agents_after(this.cfg.agent_retention);
            let (period, s) = (this.cfg.housekeeping, shutdown.clone());
            workers.push(tokio::spawn(async move { hk.run(period, s).await }));
        }
        for w in workers {
            let _ = w.await;
        }
        info!(agent = %this.cfg.id, "agent stopped");
    }

    /// Presence: operators see idle agents too, when each last reported, and what it runs on.
    async fn report_presence(&self, mut shutdown: watch::Receiver<bool>) {
        let cfg = &self.cfg;
        let profile = AgentProfile::detect(cfg.max_po2, cfg.concurrency, cfg.heartbeat);
        info!(agent = %self.cfg.id, ?profile, "announcing");
        let info = profile.to_json();
        let mut tick = tokio::time::interval(self.cfg.heartbeat);
        while !*shutdown.borrow() {
            if let Err(e) = self.ctx.db.agent_seen(&self.cfg.id, &self.cfg.kinds, &info).await {
                warn!(agent = %self.cfg.id, error = %e, "presence report failed");
            }
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims as many tasks as there are free slots, in one claim, and works on each in its
    /// slot; idle, waits for TaskDB's wake-up. On shutdown, waits for the slots to empty.
    async fn claimer(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.cfg.concurrency.max(1)));
        // the lease holder: `<agent>/<slot>` as before, one name for the slots a claim fills
        let holder = format!("{}/slots", self.cfg.id);
        let mut running = JoinSet::new();
        let mut missed_after_wake = false;
        while !*shutdown.borrow() {
            let first = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = shutdown.changed() => continue,
            };
            let mut free = vec![first];
            while let Ok(p) = slots.clone().try_acquire_owned() {
                free.push(p);
            }
            while running.try_join_next().is_some() {}
            let (kinds, lease) = (&self.cfg.kinds, self.cfg.lease);
            // never a segment larger than the agent announced (--max-po2)
            let claimed = self.ctx.db.claim_batch_within(
                &holder,
                kinds,
                lease,
                free.len(),
                self.cfg.max_work(),
            );
            match claimed.await {
                Ok(leases) if !leases.is_empty() => {
                    missed_after_wake = false;
                    for (lease, slot) in leases.into_iter().zip(free) {
                        let (this, mut s) = (self.clone(), shutdown.clone());
                        running.spawn(async move {
                            this.work(lease, &mut s).await;
                            drop(slot);
                        });
                    }
                }
                Ok(_) => {
                    drop(free);
                    // Work may be ready that this agent may not take (a reservation pins it
                    // and says wait; tasks too large for it): then the wake-up answers at once,
                    // and a short pause keeps the loop from spinning.
                    if missed_after_wake {
                        let pause = self.cfg.idle_wait.min(Duration::from_millis(100));
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            _ = shutdown.changed() => {}
                        }
                    }
                    let idle = self.cfg.idle_wait;
                    missed_after_wake = tokio::select! {
                        r = self.ctx.db.wait_for_work(&self.cfg.kinds, idle) => matches!(r, Ok(true)),
                        _ = shutdown.changed() => false,
                    };
                }
                Err(e) => {
                    warn!(agent = %self.cfg.id, error = %e, "claim failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        while running.join_next().await.is_some() {}
    }

    async fn work(&self, lease: Lease, shutdown: &mut watch::Receiver<bool>) {
        debug!(job = %lease.job_id, task = %lease.key, attempt = lease.attempt, "claimed");
        metrics::task_claimed(&lease.kind);
        let started = Instant::now();
        let lease = Arc::new(lease);
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut handle = {
            let (ctx, lease, cancelled) = (self.ctx.clone(), lease.clone(), cancelled.clone());
            let (isolation, handler) = (self.cfg.isolation.clone(), self.handler.clone());
            tokio::task::spawn_blocking(move || {
                if let Some(handler) = handler {
                    return handler(&lease);
                }
                let isolation = &isolation;
                handlers::run(&ctx, &Task { lease: &lease, cancelled: &cancelled, isolation })
            })
        };
        let mut beat = tokio::time::interval(self.cfg.heartbeat);
        beat.tick().await;
        let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let result = loop {
            tokio::select! {
                res = &mut handle => break res,
                _ = beat.tick() => match self.ctx.db.heartbeat(&lease, self.cfg.lease).await {
                    Ok(HeartbeatOutcome::Continue { .. }) => {}
                    Ok(HeartbeatOutcome::Cancelled) => {
                        info!(job = %lease.job_id, task = %lease.key, "job cancelled; stopping task");
                        cancelled.store(true, Ordering::Relaxed);
                        metrics::task_cancelled(&lease.kind);
                        return;
                    }
                    Err(e @ (DbError::LeaseLost { .. } | DbError::TaskCancelled { .. })) => {
                        warn!(task = %lease.key, error = %e, "lease lost; abandoning task");
                        cancelled.store(true, Ordering::Relaxed);
                        metrics::task_abandoned(&lease.kind, &e);
                        return;
                    }
                    Err(e) => warn!(task = %lease.key, error = %e, "heartbeat failed; will retry"),
                },
                _ = shutdown.changed(), if grace.is_none() => {
                    grace = Some(Box::pin(tokio::time::sleep(self.cfg.shutdown_grace)));
                }
                _ = async { grace.as_mut().unwrap().await }, if grace.is_some() => {
                    // Handed back, not failed: restarting agents never uses up attempts.
                    cancelled.store(true, Ordering::Relaxed);
                    self.hand_back(&lease).await;
                    return;
                }
            }
        };
        match result {
            Ok(Ok(outcome)) => self.complete(&lease, outcome, started).await,
            Ok(Err(err)) => self.report_failure(&lease, err, started).await,
            Err(join) => {
                let err = TaskError::transient(format!("handler panicked: {join}"));
                self.report_failure(&lease, err, started).await
            }
        }
    }

    /// Records a finished task's output, then deletes the blobs only it consumed.
    async fn complete(&self, lease: &Lease, outcome: Outcome, started: Instant) {
        // One line per accepted or refused completion: the chaos suite counts them to prove
        // that no task is ever completed twice (docs/reliability.md).
        let completer = self.completer.as_ref().expect("run starts the completer");
        if let Err(e) = completer.complete(lease, outcome.output).await {
            warn!(job = %lease.job_id, task = %lease.key, attempt = lease.attempt, error = %e, "completion rejected");
            metrics::task_abandoned(&lease.kind, &e);
            return;
        }
        info!(job = %lease.job_id, task = %lease.key, attempt = lease.attempt, "task completed");
        metrics::task_completed(&lease.kind, started.elapsed(), outcome.proven_cycles);
        for blob in outcome.cleanup {
            let res = match &blob {
                Blob::Hot(key) => self.ctx.stores.hot.delete(key).await.map(drop),
                Blob::Cold(key) => self.ctx.stores.cold.delete(key).await,
            };
            if let Err(e) = res {
                warn!(?blob, error = %e, "could not delete consumed blob; GC will");
            }
        }
    }

    /// Gives an unfinished task back on shutdown: not a failure, its attempt is not counted.
    async fn hand_back(&self, lease: &Lease) {
        match self.ctx.db.release(lease).await {
            Ok(()) => {
                info!(task = %lease.key, "shut down before the task finished; lease handed back");
                metrics::task_released(&lease.kind);
            }
            Err(e) => {
                warn!(task = %lease.key, error = %e, "could not hand the lease back");
                metrics::task_abandoned(&lease.kind, &e);
            }
        }
    }

    async fn report_failure(&self, lease: &Lease, err: TaskError, started: Instant) {
        warn!(job = %lease.job_id, task = %lease.key, kind = ?err.kind, error = %err, "task failed");
        metrics::task_failed(&lease.kind, err.kind, started.elapsed());
        if let Err(e) = self.ctx.db.fail(lease, &err.message, err.kind).await {
            warn!(task = %lease.key, error = %e, "failure report rejected");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_work_is_the_largest_segment_in_cycles() {
        let mut cfg = AgentConfig::new("a", vec![Kind::new(kinds::PROVE)]);
        for (po2, work) in [(20, 1i64 << 20), (22, 1 << 22), (62, 1 << 62), (u32::MAX, 1 << 62)] {
            cfg.max_po2 = po2;
            assert_eq!(cfg.max_work(), work, "max_po2 {po2}");
        }
    }
}
