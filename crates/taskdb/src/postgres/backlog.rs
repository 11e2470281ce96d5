//! The backlog report on PostgreSQL, in three statements (not one snapshot: a report, not a
//! ledger).

use sqlx::Row;
use sqlx::postgres::PgPool;

use crate::backlog::{
    Backlog, Durations, ReadyRow, ReadyTasks, Served, assemble, check_meta_key, served_from,
};
use crate::error::Result;

/// See `TaskDb::backlog`.
pub(super) async fn report(pool: &PgPool, sample: u32) -> Result<Vec<Backlog>> {
    // running = the base counter plus the sharded deltas (migration 0005)
    let running: Vec<(String, i64)> = sqlx::query_as(
        "SELECT s.kind, sum(s.running + coalesce((SELECT sum(r.n) FROM stream_running r \
                                                   WHERE r.stream_id = s.id), 0))::int8 \
           FROM streams s GROUP BY s.kind",
    )
    .fetch_all(pool)
    .await?;
    let ready = sqlx::query_as::<_, ReadyRow>(
        "SELECT kind, count(*), min(ready_at), coalesce(sum(work), 0)::int8, \
                count(*) - count(work) \
           FROM tasks WHERE state = 'ready' GROUP BY kind",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(ReadyTasks::from)
    .collect();
    // newest first by the partial index on (kind, finished_at) of done tasks (migration 0007)
    let durations = sqlx::query(
        "SELECT k.kind, d.n, d.mean FROM (SELECT DISTINCT kind FROM streams) k \
          CROSS JOIN LATERAL ( \
                SELECT count(*) AS n, \
                       avg(extract(epoch FROM x.finished_at - x.started_at))::float8 AS mean \
                  FROM (SELECT t.finished_at, t.started_at FROM tasks t \
                         WHERE t.kind = k.kind AND t.state = 'done' AND t.started_at IS NOT NULL \
                         ORDER BY t.finished_at DESC LIMIT $1) x) d",
    )
    .bind(i64::from(sample))
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| Durations { kind: r.get(0), sampled: r.get(1), mean_secs: r.get(2) })
    .collect();
    Ok(assemble(running, ready, durations))
}

/// See `TaskDb::served`: done tasks by the (kind, finished_at) index of done tasks.
pub(super) async fn served(
    pool: &PgPool,
    window: std::time::Duration,
    meta_key: &str,
) -> Result<Vec<Served>> {
    check_meta_key(meta_key)?;
    let rows = sqlx::query_as(
        "SELECT t.kind, CASE WHEN jsonb_typeof(j.meta -> $2) = 'string' \
                             THEN j.meta ->> $2 END AS g, \
                count(*), coalesce(sum(t.work), 0)::int8, \
                coalesce(sum(extract(epoch FROM t.finished_at - t.started_at)) \
                         FILTER (WHERE t.work IS NOT NULL), 0)::float8 \
           FROM tasks t JOIN jobs j ON j.id = t.job_id \
          WHERE t.kind = ANY(ARRAY(SELECT DISTINCT kind FROM streams)) \
            AND t.state = 'done' AND t.started_at IS NOT NULL \
            AND t.finished_at >= now() - make_interval(secs => $1) \
          GROUP BY t.kind, g",
    )
    .bind(window.as_secs_f64())
    .bind(meta_key)
    .fetch_all(pool)
    .await?;
    let mut served = served_from(rows);
    // byte order, as SQLite sorts (not the database's collation), no group first
    served.sort_by(|a, b| (&a.kind, &a.group).cmp(&(&b.kind, &b.group)));
    Ok(served)
}
