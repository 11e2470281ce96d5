//! The backlog report on SQLite, read from the reader pool in three statements.

use sqlx::Row;

use super::open::SqliteTaskDb;
use super::sql::ots;
use crate::backlog::{Backlog, Durations, ReadyTasks, assemble};
use crate::error::Result;

/// See `TaskDb::backlog`.
pub(super) async fn report(db: &SqliteTaskDb, sample: u32) -> Result<Vec<Backlog>> {
    let running: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, sum(running) FROM streams GROUP BY kind")
            .fetch_all(&db.reader)
            .await?;
    let ready = sqlx::query(
        "SELECT kind, count(*), min(ready_at), coalesce(sum(work), 0), count(*) - count(work) \
           FROM tasks WHERE state = 'ready' GROUP BY kind",
    )
    .fetch_all(&db.reader)
    .await?
    .iter()
    .map(|r| ReadyTasks {
        kind: r.get(0),
        count: r.get(1),
        oldest: ots(r.get(2)),
        work: r.get(3),
        without_work: r.get(4),
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
