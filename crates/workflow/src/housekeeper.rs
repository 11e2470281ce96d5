//! The housekeeper: requeues expired leases, times out jobs past their deadline, vacuums and
//! analyses the queue tables, garbage-collects finished jobs with their blobs, and drops agents
//! that stopped reporting long ago from the registry. Every step is
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
}

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
}

impl Housekeeper {
    /// A housekeeper keeping finished jobs for `retention`.
    pub fn new(db: Arc<dyn TaskDb>, stores: Stores, retention: Duration) -> Self {
        Self {
            db,
            stores,
            retention,
            agent_retention: crate::agent::DEFAULT_AGENT_RETENTION,
            swept: Mutex::new(HashSet::new()),
        }
    }

    /// Drops agents that have not reported for `unseen_for` (default: a day) from the registry.
    pub fn forgetting_agents_after(mut self, unseen_for: Duration) -> Self {
        self.agent_retention = unseen_for;
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
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::json;
    use tiffin_storage::StoreConfig;
    use tiffin_taskdb::{Config, Kind, SqliteTaskDb, TaskDb};

    use super::Housekeeper;

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
