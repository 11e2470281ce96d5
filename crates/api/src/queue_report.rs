//! The queue report (`GET /admin/queue-report?target_secs=300`): per worker kind, what waits,
//! what runs, for how long the oldest task has waited, the proving cycles waiting, how long
//! tasks take, how many agents serve the kind now and how many it needs ([`crate::scaling`]) to
//! drain its queue within `target_secs`. The signal an autoscaler reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tiffin_taskdb::Backlog;
use tiffin_workflow::kinds;

use crate::agent_liveness::Registered;
use crate::auth::Admin;
use crate::capacity_report::whole;
use crate::error::{ApiError, ErrorBody};
use crate::openapi::answers;
use crate::registry::registered;
use crate::scaling::{Demand, agents_needed};
use crate::state::AppState;

/// The drain time asked for when `target_secs` is not given.
pub const DEFAULT_TARGET_SECS: u64 = 300;
pub use crate::capacity::DURATION_SAMPLE;

/// The report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueReport {
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The drain time `agents_needed` is computed for.
    pub target_secs: u64,
    /// One entry per worker kind.
    pub kinds: BTreeMap<String, KindReport>,
}

/// The queue of one worker kind, over every tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KindReport {
    /// Tasks ready to be claimed (including those waiting out a retry backoff).
    pub queued: i64,
    /// Tasks leased to agents now.
    pub running: i64,
    /// Seconds the longest-waiting ready task has waited (0 when none waits).
    pub oldest_wait_secs: f64,
    /// Proving cycles of the queued tasks that know theirs (prove tasks: 2^po2 of their
    /// segment); other tasks count in `queued_without_cycles`.
    pub cycles_waiting: i64,
    /// Queued tasks whose cycles are unknown (joins, execute, … and prove tasks of jobs
    /// planned before this report existed).
    pub queued_without_cycles: i64,
    /// Mean seconds from first claim to completion of the last finished tasks (`null` until
    /// one finishes).
    pub mean_task_secs: Option<f64>,
    /// How many finished tasks that mean is over (at most 100).
    pub finished_sampled: i64,
    /// Seconds per task `agents_needed` assumes: the mean, else 60.
    pub assumed_task_secs: f64,
    /// Live agents serving the kind.
    pub agents_alive: u64,
    /// Their task slots (an agent with `--concurrency 4` has four).
    pub slots_alive: u64,
    /// Task slots needed to finish the queued and running tasks within `target_secs`.
    pub agents_needed: u64,
}

impl KindReport {
    fn new(b: &Backlog, agents: &[Registered], now: DateTime<Utc>, target_secs: u64) -> Self {
        let demand = Demand {
            queued: b.ready.max(0) as u64,
            running: b.running.max(0) as u64,
            mean_task_secs: b.mean_secs,
        };
        let serving: Vec<&Registered> =
            agents.iter().filter(|a| a.alive() && a.serves(&b.kind)).collect();
        let waited = b.oldest_ready_at.map_or(0, |t| (now - t).num_milliseconds().max(0));
        KindReport {
            queued: b.ready,
            running: b.running,
            oldest_wait_secs: waited as f64 / 1000.0,
            cycles_waiting: b.ready_work,
            queued_without_cycles: b.ready_without_work,
            mean_task_secs: b.mean_secs,
            finished_sampled: b.sampled,
            assumed_task_secs: demand.task_secs(),
            agents_alive: serving.len() as u64,
            slots_alive: serving.iter().map(|a| a.slots()).sum(),
            agents_needed: agents_needed(&demand, target_secs as f64),
        }
    }
}

/// `target_secs` from the query: whole seconds, at least 1.
fn target_secs(q: &BTreeMap<String, String>) -> Result<u64, ApiError> {
    Ok(whole(q, "target_secs", (1, u64::MAX))?.unwrap_or(DEFAULT_TARGET_SECS))
}

/// `GET /admin/queue-report`.
#[utoipa::path(get, path = "/admin/queue-report", tag = "admin", security(("admin_key" = [])),
    params(("target_secs" = Option<u64>, Query, description = "The drain time to size `agents_needed` for, whole seconds >= 1 (default 300)")),
    responses(
        (status = 200, description = "The report", body = QueueReport),
        (status = 400, description = "TIFFIN-API-062 bad target_secs", body = ErrorBody),
        answers::DbError,
    ))]
pub async fn queue_report(
    State(st): State<Arc<AppState>>,
    _: Admin,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<QueueReport>, ApiError> {
    let target_secs = target_secs(&q)?;
    let backlog = st.db().backlog(DURATION_SAMPLE).await?;
    let agents = registered(&st).await?;
    let now = Utc::now();
    let kinds = kinds::ALL
        .iter()
        .map(|kind| {
            let empty = Backlog::empty(*kind);
            let b = backlog.iter().find(|b| b.kind == *kind).unwrap_or(&empty);
            (kind.to_string(), KindReport::new(b, &agents, now, target_secs))
        })
        .collect();
    Ok(Json(QueueReport { at: now, target_secs, kinds }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_defaults_and_rejects_nonsense() {
        let q = |v: &str| BTreeMap::from([("target_secs".to_string(), v.to_string())]);
        assert_eq!(target_secs(&BTreeMap::new()).unwrap(), DEFAULT_TARGET_SECS);
        assert_eq!(target_secs(&q("60")).unwrap(), 60);
        for bad in ["0", "-5", "1.5", "soon"] {
            let err = target_secs(&q(bad)).unwrap_err();
            assert_eq!(err.code(), "TIFFIN-API-062", "{bad}");
        }
    }

    #[test]
    fn a_kind_report_turns_a_backlog_into_a_demand() {
        let now = Utc::now();
        let b = Backlog {
            ready: 30,
            running: 2,
            oldest_ready_at: Some(now - chrono::Duration::seconds(90)),
            ready_work: 30 << 20,
            ready_without_work: 0,
            sampled: 12,
            mean_secs: Some(20.0),
            ..Backlog::empty("prove")
        };
        let r = KindReport::new(&b, &[], now, 300);
        assert_eq!((r.queued, r.running, r.oldest_wait_secs), (30, 2, 90.0));
        assert_eq!((r.cycles_waiting, r.assumed_task_secs), (30 << 20, 20.0));
        // 32 tasks × 20 s / 300 s = 2.13…: 3 slots; no agent serves it yet.
        assert_eq!((r.agents_needed, r.agents_alive, r.slots_alive), (3, 0, 0));
        let idle = KindReport::new(&Backlog::empty("exec"), &[], now, 300);
        assert_eq!(
            (idle.agents_needed, idle.oldest_wait_secs, idle.mean_task_secs),
            (0, 0.0, None)
        );
    }
}
