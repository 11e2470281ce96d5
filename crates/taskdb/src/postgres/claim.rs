//! Claims on PostgreSQL: one round trip and one transaction for up to N tasks
//! (`tiffin_claim_batch` in functions.sql), which also serves the single [`TaskDb::claim`].
//!
//! [`TaskDb::claim`]: crate::TaskDb::claim

use std::time::Duration;

use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};

use super::sql::{kinds_vec, retrying};
use crate::Config;
use crate::error::Result;
use crate::lease::Lease;
use crate::task::Kind;

/// Claims up to `max` tasks of `kinds` for `agent` (see `TaskDb::claim_batch`), declaring at
/// most `max_work` when given (`TaskDb::claim_batch_within`), service decaying with the
/// configured half-life, agents live for pinning within `agent_alive`.
pub(super) async fn claim_batch(
    pool: &PgPool,
    agent: &str,
    kinds: &[Kind],
    lease: Duration,
    max: usize,
    max_work: Option<i64>,
    config: &Config,
) -> Result<Vec<Lease>> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let kinds = kinds_vec(kinds);
    let max = i32::try_from(max).unwrap_or(i32::MAX);
    let rows = retrying(|| async {
        Ok(sqlx::query("SELECT * FROM tiffin_claim_batch($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(agent)
            .bind(&kinds)
            .bind(lease.as_millis() as i64)
            .bind(max)
            .bind(millis(config.service_half_life))
            .bind(max_work)
            .bind(millis(config.agent_alive))
            .bind(millis(config.assumed_task_time))
            .fetch_all(pool)
            .await?)
    })
    .await?;
    Ok(rows.iter().map(lease_of).collect())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn lease_of(r: &PgRow) -> Lease {
    Lease {
        task_id: r.get(0),
        job_id: r.get(1),
        key: r.get(2),
        kind: Kind::new(r.get::<String, _>(3)),
        tenant: r.get(4),
        attempt: r.get(5),
        max_attempts: r.get(6),
        expires_at: r.get(7),
        payload: r.get(8),
    }
}
