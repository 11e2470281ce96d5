//! The API's background work: ended sessions' cycles charged to their tenants (what to charge
//! is the pure [`crate::charging`]), and inputs and uploaded receipts nobody used collected
//! ([`crate::storage_quota::collect`]). Every API process runs it; both are idempotent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tiffin_taskdb::JobState;
use tiffin_workflow::cluster::ClusterError;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::error::ApiError;
use crate::session::{JobKind, job_kind};
use crate::state::AppState;
use crate::{charging, storage_quota};

/// How often unused uploads are looked for (more often when their time to live is shorter).
const COLLECT_EVERY: Duration = Duration::from_secs(60);

/// Charges and collects every `charge_period` until `stop` turns true.
pub async fn run(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    let mut last_collection: Option<Instant> = None;
    while !*stop.borrow() {
        match charge_finished(&state).await {
            Ok(0) => {}
            Ok(n) => debug!(n, "charged finished sessions"),
            Err(e) => warn!(error = %e, "charging finished sessions failed"),
        }
        if let Some(ttl) = state.cfg.blob_ttl
            && last_collection.is_none_or(|at| at.elapsed() >= COLLECT_EVERY.min(ttl))
        {
            last_collection = Some(Instant::now());
            match storage_quota::collect(&state, ttl).await {
                Ok(0) => {}
                Ok(n) => debug!(n, "collected unused uploads"),
                Err(e) => warn!(error = %e, "collecting unused uploads failed"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(state.cfg.charge_period) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Charges finished sessions' cycles to their tenants (idempotent; safe from several API
/// processes). Returns how many were charged.
pub async fn charge_finished(st: &AppState) -> Result<usize, ApiError> {
    let mut charged = 0;
    for s in st.tenants.uncharged(500).await? {
        let Ok(id) = s.id.parse() else {
            st.tenants.charge(&s.id, 0).await?;
            continue;
        };
        let (cycles, missed) = match st.cluster.job(id).await {
            Ok(job) if job.state == JobState::Running => continue,
            Ok(job) => {
                let executed = st.cluster.execution(id).await?.map(|e| e.total_cycles);
                let spec = match job_kind(&job) {
                    Some(JobKind::Session(spec)) => Some(spec),
                    _ => None,
                };
                let so_far = match executed {
                    Some(_) => None,
                    None => st.cluster.executed_so_far(id).await?,
                };
                let ended = job.finished_at.unwrap_or_else(chrono::Utc::now);
                let missed = spec.as_ref().and_then(|s| s.missed_deadline(ended));
                (charging::cycles_to_charge(executed, so_far, spec.as_ref(), &job), missed)
            }
            // Garbage-collected before we saw it end: nothing left to count.
            Err(ClusterError::Db(tiffin_taskdb::Error::JobNotFound(_))) => (0, None),
            Err(e) => return Err(e.into()),
        };
        if st.tenants.charge(&s.id, cycles).await? {
            charged += 1;
            if missed == Some(true) {
                crate::metrics::session_missed_deadline();
            }
            release_image(st, &s.id).await?;
        }
    }
    Ok(charged)
}

/// Drops an ended session's hold on its image, deleting the blob if nothing else holds it.
async fn release_image(st: &AppState, session: &str) -> Result<(), ApiError> {
    if let Some(image) = st.tenants.end_session_image(session).await? {
        st.cluster.delete_image(&image).await?;
    }
    Ok(())
}
