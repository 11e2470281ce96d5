//! PostgreSQL backend: the distributed TaskDB.
//!
//! Hot paths are one round trip each (a sink's completion two): claim, complete and fail call
//! PL/pgSQL functions (defined in `postgres/functions.sql`) that take row locks in one fixed order
//! (job, tasks, streams) and use `FOR UPDATE SKIP LOCKED` so concurrent claimers never block on
//! each other's tasks. Claims and completions lock no row that others share (`claim.rs`,
//! `completion.rs`, migration 0005): a claim can take several tasks at once, and a completion
//! ends its job in a second statement after it committed. Readiness
//! is broadcast with one `pg_notify` per transaction that makes tasks ready (no per-row
//! triggers); one LISTEN connection per process feeds the in-process [`Notifier`].

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use tracing::debug;
use uuid::Uuid;

use crate::TaskDb;
use crate::agent::AgentInfo;
use crate::backlog::Backlog;
use crate::error::{Error, Result};
use crate::job::{JobFilter, JobId, JobState, JobStatus, JobSummary, NewJob, check_end_state};
use crate::lease::{
    Completion, FailOutcome, FailureKind, HeartbeatOutcome, Lease, cancelled, lost,
};
use crate::notify::{WorkProbe, wait_loop};
use crate::stream::{StreamConfig, StreamInfo};
use crate::task::{Kind, NewTask, TaskInfo};

pub use open::{CHANNEL, PostgresTaskDb};
use sql::{kinds_vec, retrying, vacuum_quietly};

mod backlog;
mod claim;
mod completion;
mod insert;
mod open;
mod registry;
mod release;
mod sql;
mod views;

impl PostgresTaskDb {
    async fn heartbeat_once(&self, lease: &Lease, extend: Duration) -> Result<HeartbeatOutcome> {
        let row = sqlx::query(
            "UPDATE tasks SET lease_expires_at = now() + $3 * interval '1 millisecond' \
              WHERE id = $1 AND attempt = $2 AND state = 'leased' AND lease_expires_at >= now() \
             RETURNING lease_expires_at",
        )
        .bind(lease.task_id)
        .bind(lease.attempt)
        .bind(extend.as_millis() as i64)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return Ok(HeartbeatOutcome::Continue { expires_at: row.get(0) });
        }
        let row = sqlx::query("SELECT state, attempt FROM tasks WHERE id = $1")
            .bind(lease.task_id)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r)
                if r.get::<i32, _>(1) == lease.attempt && r.get::<String, _>(0) == "cancelled" =>
            {
                Ok(HeartbeatOutcome::Cancelled)
            }
            _ => Err(lost(lease)),
        }
    }
}

#[async_trait]
impl TaskDb for PostgresTaskDb {
    async fn create_job(&self, job: NewJob) -> Result<JobId> {
        self.create_job_in(job).await
    }

    async fn add_tasks(&self, job: JobId, tasks: Vec<NewTask>) -> Result<()> {
        self.add_tasks_in(job, tasks).await
    }

    async fn set_stream(&self, tenant: &str, kind: &Kind, config: StreamConfig) -> Result<()> {
        config.validate()?;
        sqlx::query(
            "INSERT INTO streams (tenant, kind, priority_multiplier, reserved, reserved_idle) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, kind) DO UPDATE \
             SET priority_multiplier = EXCLUDED.priority_multiplier, reserved = EXCLUDED.reserved, \
                 reserved_idle = EXCLUDED.reserved_idle",
        )
        .bind(tenant)
        .bind(kind.as_str())
        .bind(config.priority_multiplier)
        .bind(config.reserved)
        .bind(config.idle.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_batch(
        &self,
        agent: &str,
        kinds: &[Kind],
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Lease>> {
        claim::claim_batch(&self.pool, agent, kinds, lease, max, None, &self.config).await
    }

    async fn claim_batch_within(
        &self,
        agent: &str,
        kinds: &[Kind],
        lease: Duration,
        max: usize,
        max_work: i64,
    ) -> Result<Vec<Lease>> {
        let within = Some(max_work);
        claim::claim_batch(&self.pool, agent, kinds, lease, max, within, &self.config).await
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<HeartbeatOutcome> {
        self.heartbeat_once(lease, extend).await
    }

    async fn complete(&self, lease: &Lease, output: Value) -> Result<Completion> {
        let mut done =
            completion::complete_batch(&self.pool, vec![(lease.clone(), output)]).await?;
        done.pop().unwrap_or_else(|| Err(lost(lease)))
    }

    async fn complete_batch(&self, done: Vec<(Lease, Value)>) -> Result<Vec<Result<Completion>>> {
        completion::complete_batch(&self.pool, done).await
    }

    async fn fail(&self, lease: &Lease, error: &str, kind: FailureKind) -> Result<FailOutcome> {
        let backoff = self.config.backoff.delay(lease.attempt).as_millis() as i64;
        let row = retrying(|| async {
            Ok(sqlx::query("SELECT * FROM tiffin_fail($1, $2, $3, $4, $5, false)")
                .bind(lease.task_id)
                .bind(lease.attempt)
                .bind(error)
                .bind(kind == FailureKind::Permanent)
                .bind(backoff)
                .fetch_one(&self.pool)
                .await?)
        })
        .await?;
        match row.get::<&str, _>(0) {
            "retrying" => Ok(FailOutcome::Retrying { not_before: row.get(1) }),
            "job_failed" => Ok(FailOutcome::JobFailed),
            "cancelled" => Err(cancelled(lease)),
            _ => Err(lost(lease)),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        release::release_in(&mut tx, lease).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn requeue_expired(&self) -> Result<u64> {
        let requeued: i64 = retrying(|| async {
            Ok(sqlx::query_scalar("SELECT tiffin_requeue_expired()").fetch_one(&self.pool).await?)
        })
        .await?;
        let exhausted = sqlx::query(
            "SELECT id, attempt FROM tasks WHERE state = 'leased' AND lease_expires_at < now() \
             AND attempt >= max_attempts LIMIT 1000",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut failed = 0u64;
        for r in exhausted {
            let (id, attempt): (i64, i32) = (r.get(0), r.get(1));
            let status: String = retrying(|| async {
                Ok(sqlx::query_scalar(
                    "SELECT o_status FROM tiffin_fail($1, $2, $3, true, 0, true)",
                )
                .bind(id)
                .bind(attempt)
                .bind(format!("lease expired on the last of {attempt} attempts"))
                .fetch_one(&self.pool)
                .await?)
            })
            .await?;
            if status == "job_failed" {
                failed += 1;
            }
        }
        if requeued > 0 || failed > 0 {
            debug!(requeued, failed, "expired leases handled");
        }
        // not counted: these are jobs, not tasks
        completion::repair_orphaned_jobs(&self.pool).await?;
        Ok(requeued as u64 + failed)
    }

    async fn expire_jobs(&self) -> Result<Vec<JobId>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'running' AND deadline < now() LIMIT 1000",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for id in ids {
            let ended: bool = retrying(|| async {
                Ok(sqlx::query_scalar(
                    "SELECT tiffin_end_job($1, 'timed_out', 'the job passed its deadline')",
                )
                .bind(id)
                .fetch_one(&self.pool)
                .await?)
            })
            .await?;
            if ended {
                out.push(id);
            }
        }
        Ok(out)
    }

    async fn end_job(&self, job: JobId, state: JobState, reason: &str) -> Result<bool> {
        check_end_state(state)?;
        let ended: bool = retrying(|| async {
            Ok(sqlx::query_scalar("SELECT tiffin_end_job($1, $2, $3)")
                .bind(job)
                .bind(state.as_str())
                .bind(reason)
                .fetch_one(&self.pool)
                .await?)
        })
        .await?;
        if !ended {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs WHERE id = $1)")
                    .bind(job)
                    .fetch_one(&self.pool)
                    .await?;
            if !exists {
                return Err(Error::JobNotFound(job));
            }
        }
        Ok(ended)
    }

    async fn restart_job(&self, job: JobId, from: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1 FOR UPDATE")
            .bind(job)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::JobNotFound(job))?;
        if state != JobState::Failed.as_str() {
            return Ok(false);
        }
        let kind: String =
            sqlx::query_scalar("SELECT kind FROM tasks WHERE job_id = $1 AND key = $2")
                .bind(job)
                .bind(from)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::InvalidArgument(format!("job {job} has no task {from:?}")))?;
        sqlx::query("DELETE FROM deps WHERE task_id IN (SELECT id FROM tasks WHERE job_id = $1)")
            .bind(job)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tasks WHERE job_id = $1 AND key <> $2")
            .bind(job)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE tasks SET state = 'ready', waiting = 0, max_attempts = attempt + max_attempts, \
                    output = NULL, error = NULL, agent = NULL, ready_at = now(), \
                    not_before = '-infinity', lease_expires_at = NULL, started_at = NULL, \
                    finished_at = NULL \
              WHERE job_id = $1 AND key = $2",
        )
        .bind(job)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE jobs SET state = 'running', error = NULL, output = NULL, \
                    finished_at = NULL WHERE id = $1",
        )
        .bind(job)
        .execute(&mut *tx)
        .await?;
        sql::notify(&mut tx, &format!("{kind}:1")).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn agent_seen(&self, agent: &str, kinds: &[Kind], info: &Value) -> Result<()> {
        registry::seen(&self.pool, agent, kinds, info).await
    }

    async fn agents(&self, within: Duration) -> Result<Vec<AgentInfo>> {
        registry::list(&self.pool, within).await
    }

    async fn pins(&self) -> Result<Vec<crate::pin::AgentPin>> {
        registry::pins(&self.pool, self.config.agent_alive).await
    }

    async fn forget_agents(&self, unseen_for: Duration) -> Result<u64> {
        registry::forget(&self.pool, unseen_for).await
    }

    async fn backlog(&self, sample: u32) -> Result<Vec<Backlog>> {
        backlog::report(&self.pool, sample).await
    }

    async fn served(&self, window: Duration, meta_key: &str) -> Result<Vec<crate::Served>> {
        backlog::served(&self.pool, window, meta_key).await
    }

    async fn set_job_output(&self, job: JobId, output: Value) -> Result<()> {
        let r = sqlx::query("UPDATE jobs SET output = $2 WHERE id = $1")
            .bind(job)
            .bind(output)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::JobNotFound(job));
        }
        Ok(())
    }

    async fn wait_for_work(&self, kinds: &[Kind], timeout: Duration) -> Result<bool> {
        let names = kinds_vec(kinds);
        wait_loop(&self.notifier, kinds, timeout, self.config.poll_interval, || async {
            // Both halves walk the per-stream "ready" index in order (like claim): an EXISTS or
            // min() over the join lets the planner pick a sequential scan when its statistics
            // were taken with a full queue, and at the tail of a big job (nothing ready) that
            // scanned every task, ~250 ms a probe with 1,000 idle agents. The backoff half runs
            // only when nothing is claimable (CASE is lazy) and looks at the first 1,000 ready
            // tasks per stream; the fallback poll covers a longer backoff queue.
            let row = sqlx::query(
                "SELECT ready, CASE WHEN NOT ready THEN \
                   (SELECT min(b.not_before) FROM streams s CROSS JOIN LATERAL ( \
                      SELECT t.not_before FROM tasks t \
                       WHERE t.stream_id = s.id AND t.state = 'ready' \
                       ORDER BY t.ready_at LIMIT 1000) b \
                     WHERE s.kind = ANY($1) AND b.not_before > now()) END \
                   FROM (SELECT EXISTS (SELECT 1 FROM streams s CROSS JOIN LATERAL ( \
                      SELECT 1 FROM tasks t \
                       WHERE t.stream_id = s.id AND t.state = 'ready' AND t.not_before <= now() \
                       ORDER BY t.ready_at LIMIT 1) r \
                     WHERE s.kind = ANY($1)) AS ready) p",
            )
            .bind(&names)
            .fetch_one(&self.pool)
            .await?;
            Ok(WorkProbe {
                ready_now: row.get(0),
                next_due: row.get::<Option<DateTime<Utc>>, _>(1),
            })
        })
        .await
    }

    async fn job(&self, job: JobId) -> Result<JobStatus> {
        self.job_view(job).await
    }

    async fn tasks(&self, job: JobId) -> Result<Vec<TaskInfo>> {
        self.tasks_view(job).await
    }

    async fn task_output(&self, job: JobId, key: &str) -> Result<Option<Value>> {
        self.task_output_view(job, key).await
    }

    async fn streams(&self) -> Result<Vec<StreamInfo>> {
        self.streams_view().await
    }

    async fn list_jobs(&self, filter: JobFilter) -> Result<Vec<JobSummary>> {
        self.list_jobs_view(filter).await
    }

    async fn vacuum(&self) -> Result<()> {
        // VACUUM cannot run in a transaction block, so it gets its own statement on one
        // connection. SKIP_LOCKED warns for each table another vacuum holds, which with several
        // housekeepers is every pass: quiet this connection's notices while it runs.
        let mut conn = self.pool.acquire().await?;
        vacuum_quietly(&mut conn).await
    }

    async fn gc(&self, retention: Duration, batch_size: u32) -> Result<Vec<JobId>> {
        let cutoff = crate::job::cutoff(retention);
        let ids = retrying(|| async {
            Ok(sqlx::query_scalar(
                "DELETE FROM jobs WHERE id IN ( \
                     SELECT id FROM jobs WHERE state <> 'running' AND finished_at < $1 \
                      ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 RETURNING id",
            )
            .bind(cutoff)
            .bind(batch_size as i64)
            .fetch_all(&self.pool)
            .await?)
        })
        .await?;
        Ok(ids)
    }
}
