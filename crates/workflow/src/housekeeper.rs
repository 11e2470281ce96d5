//! The housekeeper: requeues expired leases, times out jobs past their deadline, vacuums and
//! analyses the queue tables, garbage-collects finished jobs with their blobs, drops agents
//! that stopped reporting long ago from the registry, ends jobs nothing will finish
//! ([`crate::repair`]: stuck DAGs, snark jobs no agent serves) and runs again jobs that failed
//! only because their hot data was lost (a hot store restarted empty). Every step is
//! safe to run from many aux agents at once (TaskDB's requeue, vacuum and GC are
//! concurrency-safe; deletes are idempotent).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tiffin_storage::Stores;
use tiffin_taskdb::{JobFilter, JobState, TaskDb};
use tokio::sync::{Mutex, watch};
use tracing::{debug, warn};

use crate::blobs;
use crate::repair::{self, Verdict};
use crate::spec::EXECUTE_KEY;

/// How long an agent that stopped reporting stays in the registry by default.
pub const DEFAULT_AGENT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Periodic maintenance of the cluster.
pub struct Housekeeper {
    db: Arc<dyn TaskDb>,
    stores: Stores,
    retention: Duration,
    agent_retention: Duration,
    /// Jobs whose hot blobs were already dropped after they failed or were cancelled.
    /// Ended runs already swept: (job, when it ended), so a restarted job that fails again is
    /// swept again.
    swept: Mutex<HashSet<(tiffin_taskdb::JobId, Option<i64>)>>,
    /// Jobs found stuck at the last repair round: failed if still stuck at the next.
    stuck: Mutex<HashSet<tiffin_taskdb::JobId>>,
    /// When the last repair round ran (it reads every running job: not every pass).
    last_repair: Mutex<Option<std::time::Instant>>,
    /// How long a snark task may wait with no live agent serving snark.
    snark_grace: Duration,
}

/// How often the housekeeper looks for jobs nothing will finish.
const REPAIR_EVERY: Duration = Duration::from_secs(30);
/// Agents that reported within this long count as serving their kinds.
const ALIVE_WITHIN: Duration = Duration::from_secs(30);
/// Running jobs one repair round looks at (the oldest are the likeliest stuck).
const REPAIR_BATCH: u32 = 500;

/// What one pass did, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Tasks whose expired lease was requeued (or failed when out of attempts).
    pub requeued: u64,
    /// Jobs moved to timed_out.
    pub timed_out: usize,
    /// Ended jobs whose hot blobs were dropped early.
    pub swept: usize,
    /// Jobs deleted by retention GC.
    pub collected: usize,
    /// Agents dropped from the registry.
    pub forgotten: u64,
    /// Jobs ended because nothing would finish them.
    pub repaired: usize,
    /// Failed jobs run again because their hot data was lost.
    pub replayed: usize,
}

impl Housekeeper {
    /// A housekeeper keeping finished jobs for `retention`.
    pub fn new(db: Arc<dyn TaskDb>, stores: Stores, retention: Duration) -> Self {
        Self {
            db,
            stores,
            retention,
            agent_retention: DEFAULT_AGENT_RETENTION,
            swept: Mutex::new(HashSet::new()),
            stuck: Mutex::new(HashSet::new()),
            last_repair: Mutex::new(None),
            snark_grace: repair::SNARK_UNSERVED_AFTER,
        }
    }

    /// Drops agents that have not reported for `unseen_for` (default: a day) from the registry.
    pub fn forgetting_agents_after(mut self, unseen_for: Duration) -> Self {
        self.agent_retention = unseen_for;
        self
    }

    /// Fails snark jobs that waited `grace` with no live agent serving snark (default 60 s).
    pub fn failing_unserved_snarks_after(mut self, grace: Duration) -> Self {
        self.snark_grace = grace;
        self
    }

    /// Runs a pass every `period` until shutdown.
    pub async fn run(&self, period: Duration, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            match self.pass().await {
                Ok(p) if p != Pass::default() => debug!(?p, "housekeeping"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "housekeeping pass failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One maintenance pass.
    pub async fn pass(&self) -> Result<Pass, String> {
        let mut pass = Pass {
            requeued: self.db.requeue_expired().await.map_err(|e| e.to_string())?,
            timed_out: self.db.expire_jobs().await.map_err(|e| e.to_string())?.len(),
            ..Pass::default()
        };
        // A failed vacuum only slows claims down; it must not stop the sweep and GC below.
        if let Err(e) = self.db.vacuum().await {
            warn!(error = %e, "vacuuming the queue tables failed");
        }
        // Nor does a registry that keeps a dead agent a little longer.
        match self.db.forget_agents(self.agent_retention).await {
            Ok(n) => pass.forgotten = n,
            Err(e) => warn!(error = %e, "dropping silent agents from the registry failed"),
        }
        // Failed and cancelled jobs will never read their intermediate data again: free the
        // hot store now rather than at retention (Bento never cleaned failed jobs).
        for state in [JobState::Failed, JobState::Cancelled, JobState::TimedOut] {
            let filter = JobFilter { state: Some(state), limit: 100, ..Default::default() };
            for job in self.db.list_jobs(filter).await.map_err(|e| e.to_string())? {
                if self
                    .swept
                    .lock()
                    .await
                    .insert((job.id, job.finished_at.map(|t| t.timestamp_micros())))
                {
                    self.stores
                        .hot
                        .delete_prefix(&blobs::job_prefix(job.id))
                        .await
                        .map_err(|e| e.to_string())?;
                    pass.swept += 1;
                    if state == JobState::Failed && self.replay_if_lost(job.id).await? {
                        pass.replayed += 1;
                    }
                }
            }
        }
        pass.repaired = self.repair_if_due().await.map_err(|e| e.to_string())?;
        loop {
            let gone = self.db.gc(self.retention, 100).await.map_err(|e| e.to_string())?;
            if gone.is_empty() {
                break;
            }
            for job in &gone {
                let prefix = blobs::job_prefix(*job);
                self.stores.hot.delete_prefix(&prefix).await.map_err(|e| e.to_string())?;
                self.stores.cold.delete_prefix(&prefix).await.map_err(|e| e.to_string())?;
            }
            pass.collected += gone.len();
        }
        Ok(pass)
    }
}

impl Housekeeper {
    /// Runs a failed job again from execution if it failed only for lost hot data
    /// ([`repair::lost_hot_data`]). Several housekeepers may try: the TaskDB restarts a failed
    /// job once.
    async fn replay_if_lost(&self, id: tiffin_taskdb::JobId) -> Result<bool, String> {
        let job = self.db.job(id).await.map_err(|e| e.to_string())?;
        let tasks = self.db.tasks(id).await.map_err(|e| e.to_string())?;
        let attempts = tasks.iter().find(|t| t.key == EXECUTE_KEY).map_or(i32::MAX, |t| t.attempt);
        if !repair::lost_hot_data(&job, attempts) {
            return Ok(false);
        }
        let replayed = self.db.restart_job(id, EXECUTE_KEY).await.map_err(|e| e.to_string())?;
        if replayed {
            warn!(job = %id, attempts, "its hot data was lost (hot store restarted?): running it again");
        }
        Ok(replayed)
    }

    /// Ends the jobs nothing will finish, at most every [`REPAIR_EVERY`]: a stuck job once it
    /// was found stuck at the round before too, a snark job no agent serves at once.
    async fn repair_if_due(&self) -> Result<usize, tiffin_taskdb::Error> {
        {
            let mut last = self.last_repair.lock().await;
            if last.is_some_and(|t| t.elapsed() < REPAIR_EVERY) {
                return Ok(0);
            }
            *last = Some(std::time::Instant::now());
        }
        self.repair().await
    }

    /// One repair round over the running jobs.
    pub async fn repair(&self) -> Result<usize, tiffin_taskdb::Error> {
        let filter =
            JobFilter { state: Some(JobState::Running), limit: REPAIR_BATCH, ..Default::default() };
        let jobs = self.db.list_jobs(filter).await?;
        let served: HashSet<String> =
            self.db.agents(ALIVE_WITHIN).await?.into_iter().flat_map(|a| a.kinds).collect();
        let mut stuck = self.stuck.lock().await;
        let (mut still_stuck, mut ended) = (HashSet::new(), 0);
        for summary in jobs {
            let job = match self.db.job(summary.id).await {
                Ok(job) if job.state == JobState::Running => job,
                Ok(_) | Err(tiffin_taskdb::Error::JobNotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let age = (chrono::Utc::now() - job.created_at).to_std().unwrap_or_default();
            let reason = match repair::judge(&job, &served, age, self.snark_grace) {
                Verdict::Fine => continue,
                Verdict::Stuck(_) if !stuck.contains(&job.id) => {
                    still_stuck.insert(job.id);
                    continue;
                }
                Verdict::Stuck(reason) | Verdict::Unserved(reason) => reason,
            };
            if self.db.end_job(job.id, JobState::Failed, &reason).await? {
                warn!(job = %job.id, %reason, "ended a job nothing would finish");
                ended += 1;
            }
        }
        *stuck = still_stuck;
        Ok(ended)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use tiffin_storage::StoreConfig;
    use tiffin_taskdb::{Config, JobState, Kind, NewJob, NewTask, SqliteTaskDb, TaskDb};

    use super::Housekeeper;

    /// A job left with no runnable task (here by a write behind TaskDB's back, as a bug
    /// would) fails at the second repair round that finds it so; a snark job no agent serves
    /// fails at once past its grace; a job with work ready is left alone.
    #[tokio::test]
    async fn repair_ends_stuck_jobs_and_unserved_snarks_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taskdb.sqlite");
        let db: Arc<dyn TaskDb> =
            Arc::new(SqliteTaskDb::open(&path, Config::default()).await.unwrap());
        let stores = StoreConfig::new(dir.path()).open().await.unwrap();
        let task = |k: &str, kind: &str| NewTask::new(k, kind, json!({}));
        let stuck = db.create_job(NewJob::new("t", vec![task("a", "prove")])).await.unwrap();
        let snark = db.create_job(NewJob::new("t", vec![task("s", "snark")])).await.unwrap();
        let fine = db.create_job(NewJob::new("t", vec![task("c", "prove")])).await.unwrap();
        let raw = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await;
        sqlx::query("UPDATE tasks SET state = 'pending' WHERE job_seq = (SELECT seq FROM jobs WHERE id = ?1)")
            .bind(stuck.to_string())
            .execute(&raw.unwrap())
            .await
            .unwrap();
        let hk = Housekeeper::new(db.clone(), stores, Duration::from_secs(3600))
            .failing_unserved_snarks_after(Duration::ZERO);
        assert_eq!(hk.repair().await.unwrap(), 1, "the snark job; the stuck one is noted");
        assert_eq!(db.job(stuck).await.unwrap().state, JobState::Running);
        assert_eq!(hk.repair().await.unwrap(), 1, "the stuck job, still stuck");
        assert_eq!(hk.repair().await.unwrap(), 0);
        for (job, code) in [(stuck, "TIFFIN-WORKFLOW-007"), (snark, "TIFFIN-WORKFLOW-008")] {
            let st = db.job(job).await.unwrap();
            assert_eq!(st.state, JobState::Failed);
            assert!(st.error.as_deref().unwrap_or_default().contains(code), "{:?}", st.error);
        }
        assert_eq!(db.job(fine).await.unwrap().state, JobState::Running);
    }

    #[tokio::test]
    async fn a_pass_drops_agents_silent_past_the_agent_retention() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteTaskDb::open(dir.path().join("taskdb.sqlite"), Config::default());
        let db: Arc<dyn TaskDb> = Arc::new(sqlite.await.unwrap());
        let stores = StoreConfig::new(dir.path()).open().await.unwrap();
        db.agent_seen("gone", &[Kind::new("prove")], &json!(null)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        db.agent_seen("here", &[Kind::new("prove")], &json!(null)).await.unwrap();
        let hk = Housekeeper::new(db.clone(), stores, Duration::from_secs(3600))
            .forgetting_agents_after(Duration::from_millis(200));
        assert_eq!(hk.pass().await.unwrap().forgotten, 1);
        let left: Vec<String> =
            db.agents(Duration::MAX).await.unwrap().into_iter().map(|a| a.id).collect();
        assert_eq!(left, ["here"]);
        assert_eq!(hk.pass().await.unwrap().forgotten, 0);
    }
}
