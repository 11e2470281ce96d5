//! Completions on PostgreSQL, in two statements (migration 0005):
//!
//! 1. `tiffin_complete_many` marks the leased attempts done and readies their dependents in one
//!    transaction, locking only the tasks themselves (and the dependents it counts down). With
//!    PostgreSQL's default durability a transaction keeps its locks until its commit is on
//!    disk, so a lock every completion needs (the job row, a stream counter) would line them
//!    all up behind one flush after another.
//! 2. For the jobs of completed sinks (tasks without dependents, the only ones that can be a
//!    job's last), `tiffin_finish_jobs` then checks for unfinished tasks and ends the job,
//!    locking its row only when none is left. It runs after step 1 committed, so of two racing
//!    last completions the later check sees both. If the process or the server stops between
//!    the two, the housekeeper's [`repair_orphaned_jobs`] ends the job.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgPool;
use tracing::{debug, info};
use uuid::Uuid;

use super::sql::{job_state, retrying};
use crate::error::Result;
use crate::job::JobState;
use crate::lease::{Completion, Lease};
use crate::lease::{cancelled, lost};

/// Completes `done` (see `TaskDb::complete_batch`): one result per lease, in order.
pub(super) async fn complete_batch(
    pool: &PgPool,
    done: Vec<(Lease, Value)>,
) -> Result<Vec<Result<Completion>>> {
    if done.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = done.iter().map(|(l, _)| l.task_id).collect();
    let attempts: Vec<i32> = done.iter().map(|(l, _)| l.attempt).collect();
    let outputs: Vec<&Value> = done.iter().map(|(_, o)| o).collect();
    let rows = retrying(|| async {
        Ok(sqlx::query("SELECT * FROM tiffin_complete_many($1, $2, $3)")
            .bind(&ids)
            .bind(&attempts)
            .bind(&outputs)
            .fetch_all(pool)
            .await?)
    })
    .await?;
    let mut sink_jobs: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.get::<&str, _>(0) == "ok" && r.get::<bool, _>(2))
        .filter_map(|r| r.get::<Option<Uuid>, _>(1))
        .collect();
    sink_jobs.sort();
    sink_jobs.dedup();
    let finished = finish_jobs(pool, &sink_jobs).await?;
    let mut out = Vec::with_capacity(done.len());
    for ((lease, _), r) in done.iter().zip(&rows) {
        out.push(match r.get::<&str, _>(0) {
            "ok" => {
                let job_state = match finished.get(&r.get::<Uuid, _>(1)) {
                    Some(s) => *s,
                    None => job_state(r.get::<Option<&str>, _>(4).unwrap_or("(deleted)"))?,
                };
                Ok(Completion { job_state, became_ready: r.get(3) })
            }
            "cancelled" => Err(cancelled(lease)),
            _ => Err(lost(lease)),
        });
    }
    Ok(out)
}

/// Ends those of `jobs` with nothing unfinished (see the module docs); returns every job's state.
async fn finish_jobs(pool: &PgPool, jobs: &[Uuid]) -> Result<HashMap<Uuid, JobState>> {
    if jobs.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = retrying(|| async {
        Ok(sqlx::query("SELECT o_job, o_state FROM tiffin_finish_jobs($1)")
            .bind(jobs)
            .fetch_all(pool)
            .await?)
    })
    .await?;
    rows.iter().map(|r| Ok((r.get::<Uuid, _>(0), job_state(r.get::<&str, _>(1))?))).collect()
}

/// Ends running jobs whose last completion committed without its job's end (a crash between the
/// two statements). Returns how many it ended.
pub(super) async fn repair_orphaned_jobs(pool: &PgPool) -> Result<u64> {
    let ended: i64 = retrying(|| async {
        Ok(sqlx::query_scalar("SELECT tiffin_finish_orphaned_jobs()").fetch_one(pool).await?)
    })
    .await?;
    if ended > 0 {
        info!(ended, "ended jobs whose last completion was interrupted before the job's end");
    } else {
        debug!("no interrupted job ends to repair");
    }
    Ok(ended as u64)
}
