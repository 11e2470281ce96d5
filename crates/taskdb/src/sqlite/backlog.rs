//! The backlog report on SQLite, read from the reader pool in three statements.

use super::open::SqliteTaskDb;
use super::sql::ots;
use crate::backlog::{
    Backlog, Durations, ReadyTasks, Served, ServedRow, assemble, check_meta_key, served_from,
};
use crate::error::Result;

/// See `TaskDb::backlog`.
pub(super) async fn report(db: &SqliteTaskDb, sample: u32) -> Result<Vec<Backlog>> {
    let running: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, sum(running) FROM streams GROUP BY kind")
            .fetch_all(&db.reader)
            .await?;
    let ready = sqlx::query_as::<_, (String, i64, Option<i64>, i64, i64)>(
        "SELECT kind, count(*), min(ready_at), coalesce(sum(work), 0), count(*) - count(work) \
           FROM tasks WHERE state = 'ready' GROUP BY kind",
    )
    .fetch_all(&db.reader)
    .await?
    .into_iter()
    .map(|(kind, count, oldest, work, without)| {
        ReadyTasks::from((kind, count, ots(oldest), work, without))
    })
    .collect();
    let mut durations = Vec::with_capacity(running.len());
    for (kind, _) in &running {
        // newest first by the partial index on (kind, finished_at) of done tasks
        let (sampled, mean_us): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), avg(finished_at - started_at) FROM ( \
                SELECT finished_at, started_at FROM tasks \
                 WHERE kind = ?1 AND state = 'done' AND started_at IS NOT NULL \
                 ORDER BY finished_at DESC LIMIT ?2)",
        )
        .bind(kind)
        .bind(sample)
        .fetch_one(&db.reader)
        .await?;
        let mean_secs = mean_us.map(|us| us / 1e6);
        durations.push(Durations { kind: kind.clone(), sampled, mean_secs });
    }
    Ok(assemble(running, ready, durations))
}

/// See `TaskDb::served`: done tasks by the (kind, finished_at) index of done tasks.
pub(super) async fn served(
    db: &SqliteTaskDb,
    window: std::time::Duration,
    meta_key: &str,
) -> Result<Vec<Served>> {
    check_meta_key(meta_key)?;
    let since =
        super::sql::now_us().saturating_sub(i64::try_from(window.as_micros()).unwrap_or(i64::MAX));
    let rows: Vec<(String, Option<String>, i64, i64, i64)> = sqlx::query_as(
        "SELECT t.kind, CASE WHEN json_type(j.meta, ?2) = 'text' \
                             THEN json_extract(j.meta, ?2) END AS g, \
                count(*), coalesce(sum(t.work), 0), \
                coalesce(sum(CASE WHEN t.work IS NOT NULL \
                                  THEN t.finished_at - t.started_at END), 0) \
           FROM tasks t JOIN jobs j ON j.seq = t.job_seq \
          WHERE t.kind IN (SELECT DISTINCT kind FROM streams) \
            AND t.state = 'done' AND t.finished_at >= ?1 AND t.started_at IS NOT NULL \
          GROUP BY t.kind, g ORDER BY t.kind, g",
    )
    .bind(since)
    .bind(format!("$.{meta_key}"))
    .fetch_all(&db.reader)
    .await?;
    // busy time is summed in microseconds
    let rows: Vec<ServedRow> =
        rows.into_iter().map(|(k, g, t, w, us)| (k, g, t, w, us as f64 / 1e6)).collect();
    Ok(served_from(rows))
}
