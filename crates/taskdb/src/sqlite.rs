//! SQLite backend: the embedded TaskDB (`tiffin prove`, `tiffin up`), one process, one file.
//!
//! WAL mode with a busy timeout; all writes go through one connection with `BEGIN IMMEDIATE`
//! (SQLite has a single writer anyway, and queuing in-process is fairer and faster than spinning
//! on `SQLITE_BUSY`), reads through a small pool. Wake-ups are published in-process after each
//! commit that makes tasks ready. The claim order comes straight from [`crate::policy::rank`].

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::Row;
use tracing::debug;

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

pub use open::SqliteTaskDb;
use sql::{kinds_json, now_us, ots, ts, uuid};

mod backlog;
mod claim;
mod completion;
mod insert;
mod open;
mod outcome;
mod registry;
mod release;
mod sql;
mod views;

impl SqliteTaskDb {
    async fn job_seq(&self, job: JobId) -> Result<i64> {
        sqlx::query_scalar("SELECT seq FROM jobs WHERE id = ?1")
            .bind(job.to_string())
            .fetch_optional(&self.reader)
            .await?
            .ok_or(Error::JobNotFound(job))
    }
}

#[async_trait]
impl TaskDb for SqliteTaskDb {
    async fn create_job(&self, job: NewJob) -> Result<JobId> {
        self.create_job_in(job).await
    }

    async fn add_tasks(&self, job: JobId, tasks: Vec<NewTask>) -> Result<()> {
        self.add_tasks_in(job, tasks).await
    }

    async fn set_stream(&self, tenant: &str, kind: &Kind, config: StreamConfig) -> Result<()> {
        config.validate()?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO streams (tenant, kind, priority_multiplier, reserved, reserved_idle) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant, kind) DO UPDATE \
             SET priority_multiplier = excluded.priority_multiplier, reserved = excluded.reserved, \
                 reserved_idle = excluded.reserved_idle",
        )
        .bind(tenant)
        .bind(kind.as_str())
        .bind(config.priority_multiplier)
        .bind(config.reserved)
        .bind(config.idle.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_batch(
        &self,
        agent: &str,
        kinds: &[Kind],
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Lease>> {
        claim::claim_some(self, agent, kinds, lease, max, None).await
    }

    async fn claim_batch_within(
        &self,
        agent: &str,
        kinds: &[Kind],
        lease: Duration,
        max: usize,
        max_work: i64,
    ) -> Result<Vec<Lease>> {
        claim::claim_some(self, agent, kinds, lease, max, Some(max_work)).await
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<HeartbeatOutcome> {
        let mut tx = self.begin().await?;
        let now = now_us();
        let expires = now + extend.as_micros() as i64;
        let r = sqlx::query(
            "UPDATE tasks SET lease_expires_at = ?3 \
              WHERE id = ?1 AND attempt = ?2 AND state = 'leased' AND lease_expires_at >= ?4",
        )
        .bind(lease.task_id)
        .bind(lease.attempt)
        .bind(expires)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 1 {
            tx.commit().await?;
            return Ok(HeartbeatOutcome::Continue { expires_at: ts(expires) });
        }
        let row = sqlx::query("SELECT state, attempt FROM tasks WHERE id = ?1")
            .bind(lease.task_id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        match row {
            Some(r)
                if r.get::<i32, _>(1) == lease.attempt && r.get::<&str, _>(0) == "cancelled" =>
            {
                Ok(HeartbeatOutcome::Cancelled)
            }
            _ => Err(lost(lease)),
        }
    }

    async fn complete(&self, lease: &Lease, output: Value) -> Result<Completion> {
        let mut done = self.complete_batch(vec![(lease.clone(), output)]).await?;
        done.pop().unwrap_or_else(|| Err(lost(lease)))
    }

    async fn complete_batch(&self, done: Vec<(Lease, Value)>) -> Result<Vec<Result<Completion>>> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(done.len());
        let mut ready = Vec::new();
        for (lease, output) in &done {
            out.push(match completion::complete_in(&mut tx, lease, output).await? {
                Ok((c, kinds)) => {
                    ready.extend(kinds);
                    Ok(c)
                }
                Err(e) => Err(e),
            });
        }
        tx.commit().await?;
        if !ready.is_empty() {
            self.notifier.publish(ready);
        }
        Ok(out)
    }

    async fn fail(&self, lease: &Lease, error: &str, kind: FailureKind) -> Result<FailOutcome> {
        let mut tx = self.begin().await?;
        let (status, nb, ready_kind) = self
            .fail_in(
                &mut tx,
                lease.task_id,
                lease.attempt,
                error,
                kind == FailureKind::Permanent,
                false,
            )
            .await?;
        tx.commit().await?;
        if let Some(k) = ready_kind {
            self.notifier.publish([k]);
        }
        match status {
            "retrying" => Ok(FailOutcome::Retrying { not_before: nb.expect("set when retrying") }),
            "job_failed" => Ok(FailOutcome::JobFailed),
            "cancelled" => Err(cancelled(lease)),
            _ => Err(lost(lease)),
        }
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let mut tx = self.begin().await?;
        let kind = release::release_in(&mut tx, lease).await?;
        tx.commit().await?;
        self.notifier.publish([kind]);
        Ok(())
    }

    async fn requeue_expired(&self) -> Result<u64> {
        let mut tx = self.begin().await?;
        let now = now_us();
        let expired = sqlx::query(
            "SELECT id, attempt, max_attempts, stream_id, kind FROM tasks \
              WHERE state = 'leased' AND lease_expires_at < ?1",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut kinds = Vec::new();
        let mut handled = 0u64;
        for r in &expired {
            let (id, attempt, max, stream): (i64, i32, i32, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            if attempt < max {
                sqlx::query(
                    "UPDATE tasks SET state = 'ready', ready_at = ?2, not_before = ?2, lease_expires_at = NULL, \
                            error = 'lease expired' WHERE id = ?1",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE streams SET running = running - 1 WHERE id = ?1")
                    .bind(stream)
                    .execute(&mut *tx)
                    .await?;
                kinds.push(r.get::<String, _>(4));
                handled += 1;
            } else {
                let msg = format!("lease expired on the last of {attempt} attempts");
                // An earlier task in this loop may have failed the same job already.
                let (status, _, _) = self.fail_in(&mut tx, id, attempt, &msg, true, true).await?;
                if status == "job_failed" {
                    handled += 1;
                }
            }
        }
        tx.commit().await?;
        if !kinds.is_empty() {
            self.notifier.publish(kinds);
        }
        if handled > 0 {
            debug!(handled, "expired leases handled");
        }
        Ok(handled)
    }

    async fn expire_jobs(&self) -> Result<Vec<JobId>> {
        let mut tx = self.begin().await?;
        let rows =
            sqlx::query("SELECT seq, id FROM jobs WHERE state = 'running' AND deadline < ?1")
                .bind(now_us())
                .fetch_all(&mut *tx)
                .await?;
        let mut out = Vec::new();
        for r in rows {
            if Self::end_job(&mut tx, r.get(0), JobState::TimedOut, "the job passed its deadline")
                .await?
            {
                out.push(uuid(r.get::<&str, _>(1))?);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn end_job(&self, job: JobId, state: JobState, reason: &str) -> Result<bool> {
        check_end_state(state)?;
        let mut tx = self.begin().await?;
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM jobs WHERE id = ?1")
            .bind(job.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::JobNotFound(job))?;
        let ended = Self::end_job(&mut tx, seq, state, reason).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn restart_job(&self, job: JobId, from: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT seq, state FROM jobs WHERE id = ?1")
            .bind(job.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::JobNotFound(job))?;
        let (seq, state): (i64, String) = (row.get(0), row.get(1));
        if state != JobState::Failed.as_str() {
            return Ok(false);
        }
        let kind: String =
            sqlx::query_scalar("SELECT kind FROM tasks WHERE job_seq = ?1 AND key = ?2")
                .bind(seq)
                .bind(from)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::InvalidArgument(format!("job {job} has no task {from:?}")))?;
        sqlx::query("DELETE FROM deps WHERE task_id IN (SELECT id FROM tasks WHERE job_seq = ?1)")
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM tasks WHERE job_seq = ?1 AND key <> ?2")
            .bind(seq)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE tasks SET state = 'ready', waiting = 0, max_attempts = attempt + max_attempts, \
                    output = NULL, error = NULL, agent = NULL, ready_at = ?3, not_before = 0, \
                    lease_expires_at = NULL, started_at = NULL, finished_at = NULL \
              WHERE job_seq = ?1 AND key = ?2",
        )
        .bind(seq)
        .bind(from)
        .bind(now_us())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE jobs SET state = 'running', remaining = 1, error = NULL, output = NULL, \
                    finished_at = NULL WHERE seq = ?1",
        )
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.notifier.publish([kind]);
        debug!(%job, from, "job restarted");
        Ok(true)
    }

    async fn agent_seen(&self, agent: &str, kinds: &[Kind], info: &Value) -> Result<()> {
        registry::seen(self, agent, kinds, info).await
    }

    async fn agents(&self, within: Duration) -> Result<Vec<AgentInfo>> {
        registry::list(self, within).await
    }

    async fn pins(&self) -> Result<Vec<crate::pin::AgentPin>> {
        registry::pins(self, self.config.agent_alive).await
    }

    async fn forget_agents(&self, unseen_for: Duration) -> Result<u64> {
        registry::forget(self, unseen_for).await
    }

    async fn backlog(&self, sample: u32) -> Result<Vec<Backlog>> {
        backlog::report(self, sample).await
    }

    async fn served(&self, window: Duration, meta_key: &str) -> Result<Vec<crate::Served>> {
        backlog::served(self, window, meta_key).await
    }

    async fn set_job_output(&self, job: JobId, output: Value) -> Result<()> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE jobs SET output = ?2 WHERE id = ?1")
            .bind(job.to_string())
            .bind(output.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if r.rows_affected() == 0 {
            return Err(Error::JobNotFound(job));
        }
        Ok(())
    }

    async fn wait_for_work(&self, kinds: &[Kind], timeout: Duration) -> Result<bool> {
        let names = kinds_json(kinds);
        wait_loop(&self.notifier, kinds, timeout, self.config.poll_interval, || async {
            let now = now_us();
            let row = sqlx::query(
                // As on PostgreSQL: the backoff scan only when nothing is claimable.
                "SELECT ready, CASE WHEN NOT ready THEN \
                        (SELECT min(t.not_before) FROM streams s JOIN tasks t ON t.stream_id = s.id \
                          WHERE s.kind IN (SELECT value FROM json_each(?1)) AND t.state = 'ready' \
                            AND t.not_before > ?2) END \
                   FROM (SELECT EXISTS (SELECT 1 FROM streams s JOIN tasks t ON t.stream_id = s.id \
                          WHERE s.kind IN (SELECT value FROM json_each(?1)) AND t.state = 'ready' \
                            AND t.not_before <= ?2) AS ready)",
            )
            .bind(&names)
            .bind(now)
            .fetch_one(&self.reader)
            .await?;
            Ok(WorkProbe { ready_now: row.get::<bool, _>(0), next_due: ots(row.get(1)) })
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
        Ok(())
    }

    async fn gc(&self, retention: Duration, batch_size: u32) -> Result<Vec<JobId>> {
        let cutoff = crate::job::cutoff(retention).timestamp_micros();
        let mut tx = self.begin().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "DELETE FROM jobs WHERE seq IN ( \
                 SELECT seq FROM jobs WHERE state <> 'running' AND finished_at < ?1 \
                  ORDER BY finished_at LIMIT ?2) \
             RETURNING id",
        )
        .bind(cutoff)
        .bind(batch_size as i64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        ids.iter().map(|s| uuid(s)).collect()
    }
}
