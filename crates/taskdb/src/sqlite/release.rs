//! Handing a lease back on SQLite (graceful agent shutdown): the task is ready again at once,
//! its attempt budget grown by the attempt it hands back, so the attempt is not counted.

use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use super::sql::now_us;
use crate::error::Result;
use crate::lease::Lease;
use crate::lease::refusal;

/// Releases a live lease inside a write transaction; returns the task's kind (now ready).
pub(super) async fn release_in(tx: &mut SqliteConnection, lease: &Lease) -> Result<String> {
    let now = now_us();
    let r = sqlx::query(
        "UPDATE tasks SET state = 'ready', lease_expires_at = NULL, ready_at = ?3, \
                not_before = ?3, max_attempts = max_attempts + 1, error = 'handed back' \
          WHERE id = ?1 AND attempt = ?2 AND state = 'leased' AND lease_expires_at >= ?3 \
         RETURNING stream_id, kind",
    )
    .bind(lease.task_id)
    .bind(lease.attempt)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(r) = r {
        sqlx::query("UPDATE streams SET running = running - 1 WHERE id = ?1")
            .bind(r.get::<i64, _>(0))
            .execute(&mut *tx)
            .await?;
        return Ok(r.get(1));
    }
    let current = sqlx::query_as("SELECT state, attempt FROM tasks WHERE id = ?1")
        .bind(lease.task_id)
        .fetch_optional(&mut *tx)
        .await?;
    Err(refusal(lease, current))
}
