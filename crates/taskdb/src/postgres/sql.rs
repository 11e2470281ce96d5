//! Helpers the PostgreSQL backend's statements share: retries, row decoding.

use std::time::Duration;

use tracing::debug;

use super::open::CHANNEL;
use crate::error::{Error, Result};
pub(super) use crate::rows::{job_state, task_state};
use crate::task::Kind;

/// Vacuums the queue tables with this connection's notices off (see `TaskDb::vacuum`).
pub(super) async fn vacuum_quietly(conn: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query("SET client_min_messages = error").execute(&mut *conn).await?;
    let vacuum = "VACUUM (ANALYZE, SKIP_LOCKED) tasks, deps, jobs, streams, stream_running";
    let vacuumed = sqlx::query(vacuum).execute(&mut *conn).await;
    sqlx::query("RESET client_min_messages").execute(&mut *conn).await?;
    vacuumed?;
    Ok(())
}

/// Wakes the agents of the kinds in `payload` (`kind:count,…`, see [`CHANNEL`]) when the
/// transaction `conn` is in commits.
pub(super) async fn notify(conn: &mut sqlx::PgConnection, payload: &str) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(&mut *conn).await?;
    Ok(())
}

/// Retries a write on deadlock / serialization failure (rare: locks are taken in a fixed order,
/// but multi-stream counter updates can still cross).
pub(super) async fn retrying<T, F, Fut>(mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut attempt = 0u32;
    loop {
        match op().await {
            Err(Error::Database(sqlx::Error::Database(e)))
                if attempt < 8 && matches!(e.code().as_deref(), Some("40P01" | "40001")) =>
            {
                attempt += 1;
                debug!(code = ?e.code(), attempt, "TaskDB transaction conflict; retrying");
                tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
            }
            r => return r,
        }
    }
}

pub(super) fn kinds_vec(kinds: &[Kind]) -> Vec<String> {
    kinds.iter().map(|k| k.as_str().to_string()).collect()
}
