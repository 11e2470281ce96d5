//! Completions on SQLite, inside the caller's write transaction, so a batch of completions is
//! one transaction and one commit. The job's `remaining` counter ends it in the same
//! transaction: SQLite has one writer, so that counter costs no waiting.

use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use super::sql::{job_state, now_us};
use crate::error::Result;
use crate::lease::{Completion, Lease};
use crate::lease::{cancelled, lost};

/// Completes one leased attempt inside a write transaction: the inner error says why the lease
/// could not complete (nothing was changed then); the kinds are those of tasks it made ready.
pub(super) async fn complete_in(
    tx: &mut SqliteConnection,
    lease: &Lease,
    output: &Value,
) -> Result<Result<(Completion, Vec<String>)>> {
    let now = now_us();
    let Some(r) = sqlx::query(
        "SELECT job_seq, state, attempt, lease_expires_at, stream_id FROM tasks WHERE id = ?1",
    )
    .bind(lease.task_id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Err(lost(lease)));
    };
    let (job_seq, state, attempt): (i64, String, i32) = (r.get(0), r.get(1), r.get(2));
    let (exp, stream): (Option<i64>, i64) = (r.get(3), r.get(4));
    if attempt != lease.attempt {
        return Ok(Err(lost(lease)));
    }
    if state == "cancelled" {
        return Ok(Err(cancelled(lease)));
    }
    if state != "leased" || exp.unwrap_or(0) < now {
        return Ok(Err(lost(lease)));
    }
    sqlx::query("UPDATE tasks SET state = 'done', output = ?2, finished_at = ?3 WHERE id = ?1")
        .bind(lease.task_id)
        .bind(output.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let became = sqlx::query(
        "UPDATE tasks SET waiting = waiting - 1, \
                state = CASE WHEN waiting = 1 THEN 'ready' ELSE state END, \
                ready_at = CASE WHEN waiting = 1 THEN ?2 ELSE ready_at END \
          WHERE state = 'pending' AND id IN (SELECT task_id FROM deps WHERE prereq_id = ?1) \
         RETURNING state, kind",
    )
    .bind(lease.task_id)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let ready: Vec<String> =
        became.iter().filter(|r| r.get::<&str, _>(0) == "ready").map(|r| r.get(1)).collect();
    let n_ready = became.iter().filter(|r| r.get::<&str, _>(0) == "ready").count() as i64;
    let jstate: String = sqlx::query_scalar(
        "UPDATE jobs SET remaining = remaining - 1, \
                state = CASE WHEN remaining = 1 AND state = 'running' THEN 'succeeded' ELSE state END, \
                finished_at = CASE WHEN remaining = 1 AND state = 'running' THEN ?2 ELSE finished_at END \
          WHERE seq = ?1 RETURNING state",
    )
    .bind(job_seq)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE streams SET running = running - 1 WHERE id = ?1")
        .bind(stream)
        .execute(&mut *tx)
        .await?;
    Ok(Ok((Completion { job_state: job_state(&jstate)?, became_ready: n_ready }, ready)))
}
