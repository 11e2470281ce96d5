//! The housekeeper: requeues expired leases, times out jobs past their deadline, vacuums and
//! analyses the queue tables, and garbage-collects finished jobs with their blobs. Every step is
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
}

impl Housekeeper {
    /// A housekeeper keeping finished jobs for `retention`.
    pub fn new(db: Arc<dyn TaskDb>, stores: Stores, retention: Duration) -> Self {
        Self { db, stores, retention, swept: Mutex::new(HashSet::new()) }
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
