//! Handing a lease back on PostgreSQL (graceful agent shutdown): the task is ready again at
//! once, its attempt budget grown by the attempt it hands back, so the attempt is not counted.
//! Locks the job row first, in the order every job-changing function takes its locks.

use sqlx::postgres::PgConnection;

use super::sql::notify;
use crate::error::Result;
use crate::lease::Lease;
use crate::lease::refusal;

/// Releases a live lease inside a transaction and wakes agents of the task's kind.
pub(super) async fn release_in(tx: &mut PgConnection, lease: &Lease) -> Result<()> {
    sqlx::query("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE")
        .bind(lease.job_id)
        .execute(&mut *tx)
        .await?;
    let row: Option<(i64, String)> = sqlx::query_as(
        "UPDATE tasks SET state = 'ready', lease_expires_at = NULL, ready_at = now(), \
                not_before = now(), max_attempts = max_attempts + 1, error = 'handed back' \
          WHERE id = $1 AND attempt = $2 AND state = 'leased' AND lease_expires_at >= now() \
         RETURNING stream_id, kind",
    )
    .bind(lease.task_id)
    .bind(lease.attempt)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((stream, kind)) = row {
        sqlx::query("UPDATE streams SET running = running - 1 WHERE id = $1")
            .bind(stream)
            .execute(&mut *tx)
            .await?;
        return notify(tx, &format!("{kind}:1")).await;
    }
    let current = sqlx::query_as("SELECT state, attempt FROM tasks WHERE id = $1")
        .bind(lease.task_id)
        .fetch_optional(&mut *tx)
        .await?;
    Err(refusal(lease, current))
}
