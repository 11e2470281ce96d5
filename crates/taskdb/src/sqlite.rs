//! SQLite backend: the embedded TaskDB (`tiffin prove`, `tiffin up`), one process, one file.
//!
//! WAL mode with a busy timeout; all writes go through one connection with `BEGIN IMMEDIATE`
//! (SQLite has a single writer anyway, and queuing in-process is fairer and faster than spinning
//! on `SQLITE_BUSY`), reads through a small pool. Wake-ups are published in-process after each
//! commit that makes tasks ready. The claim order comes straight from [`crate::policy::rank`].

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use tracing::debug;
use uuid::Uuid;

use crate::agent::AgentInfo;
use crate::backlog::Backlog;
use crate::error::{Error, Result};
use crate::job::{
    JobFilter, JobId, JobState, JobStatus, JobSummary, NewJob, TaskCount, TaskFailure,
    check_end_state,
};
use crate::lease::{
    Completion, FailOutcome, FailureKind, HeartbeatOutcome, Lease, cancelled, lost,
};
use crate::notify::{Notifier, WorkProbe, wait_loop};
use crate::stream::{ReservationIdle, StreamConfig, StreamInfo};
use crate::task::{ExistingTask, Kind, NewTask, PrereqRef, TaskInfo, TaskState, plan_batch};
use crate::{Config, TaskDb};

mod backlog;
mod claim;
mod completion;
mod registry;
mod release;

/// TaskDB on a SQLite file. Cheap to share: hold it in an `Arc<dyn TaskDb>`.
pub struct SqliteTaskDb {
    writer: SqlitePool,
    reader: SqlitePool,
    config: Config,
    notifier: Notifier,
}

fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

fn ts(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn ots(us: Option<i64>) -> Option<DateTime<Utc>> {
    us.map(ts)
}

fn json(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("bad JSON in database: {e}")))
}

fn ojson(s: Option<String>) -> Result<Option<Value>> {
    s.as_deref().map(json).transpose()
}

fn uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| Error::Corrupt(format!("bad job id {s:?}: {e}")))
}

fn job_state(s: &str) -> Result<JobState> {
    JobState::parse(s).ok_or_else(|| Error::Corrupt(format!("unknown job state {s:?}")))
}

fn task_state(s: &str) -> Result<TaskState> {
    TaskState::parse(s).ok_or_else(|| Error::Corrupt(format!("unknown task state {s:?}")))
}

fn kinds_json(kinds: &[Kind]) -> String {
    serde_json::to_string(&kinds.iter().map(Kind::as_str).collect::<Vec<_>>())
        .expect("strings serialize")
}

impl SqliteTaskDb {
    /// Opens (creating if needed) the database file at `path` and applies the embedded
    /// migrations.
    pub async fn open(path: impl AsRef<Path>, config: Config) -> Result<Self> {
        let opts = SqliteConnectOptions::new().filename(path.as_ref()).create_if_missing(true);
        Self::open_with(opts, config).await
    }

    /// Opens a database by URL (`sqlite:///path/to/tiffin.db`).
    pub async fn open_url(url: &str, config: Config) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
        Self::open_with(opts, config).await
    }

    async fn open_with(opts: SqliteConnectOptions, config: Config) -> Result<Self> {
        let opts = opts
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk when it returns, so a session marked SUCCEEDED (or a
            // task done) survives a power loss, not only a crash of the process.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(600))
            .connect_with(opts.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(config.max_connections.clamp(1, 8))
            .connect_with(opts)
            .await?;
        Ok(SqliteTaskDb { writer, reader, config, notifier: Notifier::default() })
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Inserts a validated batch; returns the kind of every task that became ready.
    async fn insert_tasks(
        conn: &mut SqliteConnection,
        job: JobId,
        tenant: &str,
        job_seq: i64,
        tasks: &[NewTask],
        existing: &HashMap<String, ExistingTask>,
    ) -> Result<Vec<String>> {
        let plan = plan_batch(job, tasks, existing)?;
        let now = now_us();
        let mut streams: HashMap<&str, i64> = HashMap::new();
        for t in tasks {
            if !streams.contains_key(t.kind.as_str()) {
                sqlx::query(
                    "INSERT INTO streams (tenant, kind) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )
                .bind(tenant)
                .bind(t.kind.as_str())
                .execute(&mut *conn)
                .await?;
                let id: i64 =
                    sqlx::query_scalar("SELECT id FROM streams WHERE tenant = ?1 AND kind = ?2")
                        .bind(tenant)
                        .bind(t.kind.as_str())
                        .fetch_one(&mut *conn)
                        .await?;
                streams.insert(t.kind.as_str(), id);
            }
        }
        let mut ids = Vec::with_capacity(tasks.len());
        let mut ready = Vec::new();
        for (t, (waiting, refs)) in tasks.iter().zip(&plan) {
            let state = if *waiting == 0 { "ready" } else { "pending" };
            let id: i64 = sqlx::query_scalar(
                // the job's due time ("none" last) and priority, copied for the claim's index
                "INSERT INTO tasks (job_seq, key, kind, stream_id, depth, state, waiting, max_attempts, \
                                    payload, ready_at, created_at, work, job_due, job_priority) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
                        coalesce(due, 9223372036854775807), priority FROM jobs WHERE seq = ?1 \
                 RETURNING id",
            )
            .bind(job_seq)
            .bind(&t.key)
            .bind(t.kind.as_str())
            .bind(streams[t.kind.as_str()])
            .bind(t.depth)
            .bind(state)
            .bind(waiting)
            .bind(t.max_attempts)
            .bind(t.payload.to_string())
            .bind((*waiting == 0).then_some(now))
            .bind(now)
            .bind(t.work)
            .fetch_one(&mut *conn)
            .await?;
            for r in refs {
                let pre = match *r {
                    PrereqRef::Row(p) => p,
                    PrereqRef::Batch(i) => ids[i],
                };
                sqlx::query("INSERT INTO deps (prereq_id, task_id) VALUES (?1, ?2)")
                    .bind(pre)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            if *waiting == 0 {
                ready.push(t.kind.as_str().to_string());
            }
            ids.push(id);
        }
        Ok(ready)
    }

    /// Ends a running job and cancels its unfinished tasks, fixing the stream counters.
    async fn end_job(
        conn: &mut SqliteConnection,
        job_seq: i64,
        state: JobState,
        error: &str,
    ) -> Result<bool> {
        let now = now_us();
        let r = sqlx::query(
            "UPDATE jobs SET state = ?2, error = coalesce(error, ?3), finished_at = ?4 \
              WHERE seq = ?1 AND state = 'running'",
        )
        .bind(job_seq)
        .bind(state.as_str())
        .bind(error)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        let leased = sqlx::query(
            "SELECT stream_id, count(*) FROM tasks WHERE job_seq = ?1 AND state = 'leased' GROUP BY stream_id",
        )
        .bind(job_seq)
        .fetch_all(&mut *conn)
        .await?;
        for r in leased {
            sqlx::query("UPDATE streams SET running = running - ?2 WHERE id = ?1")
                .bind(r.get::<i64, _>(0))
                .bind(r.get::<i64, _>(1))
                .execute(&mut *conn)
                .await?;
        }
        sqlx::query(
            "UPDATE tasks SET state = 'cancelled', finished_at = ?2 \
              WHERE job_seq = ?1 AND state IN ('pending', 'ready', 'leased')",
        )
        .bind(job_seq)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(true)
    }

    /// Fails one task attempt inside a write transaction. `expired`: the housekeeper fails an
    /// expired lease rather than the agent a live one.
    #[allow(clippy::too_many_arguments)]
    async fn fail_in(
        &self,
        conn: &mut SqliteConnection,
        task_id: i64,
        attempt: i32,
        error: &str,
        permanent: bool,
        expired: bool,
    ) -> Result<(&'static str, Option<DateTime<Utc>>, Option<String>)> {
        let now = now_us();
        let Some(r) = sqlx::query(
            "SELECT job_seq, state, attempt, max_attempts, lease_expires_at, stream_id, key, kind \
               FROM tasks WHERE id = ?1",
        )
        .bind(task_id)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(("lost", None, None));
        };
        let (job_seq, state, cur, max): (i64, String, i32, i32) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let exp: Option<i64> = r.get(4);
        let (stream, key, kind): (i64, String, String) = (r.get(5), r.get(6), r.get(7));
        if cur != attempt {
            return Ok(("lost", None, None));
        }
        if state == "cancelled" {
            return Ok(("cancelled", None, None));
        }
        if state != "leased" || (exp.unwrap_or(0) < now) != expired {
            return Ok(("lost", None, None));
        }
        if !permanent && cur < max {
            let nb = now + self.config.backoff.delay(cur).as_micros() as i64;
            sqlx::query(
                "UPDATE tasks SET state = 'ready', error = ?2, lease_expires_at = NULL, ready_at = ?3, \
                        not_before = ?4 WHERE id = ?1",
            )
            .bind(task_id)
            .bind(error)
            .bind(now)
            .bind(nb)
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE streams SET running = running - 1 WHERE id = ?1")
                .bind(stream)
                .execute(&mut *conn)
                .await?;
            return Ok(("retrying", Some(ts(nb)), Some(kind)));
        }
        Self::end_job(
            &mut *conn,
            job_seq,
            JobState::Failed,
            &format!("task {key} ({kind}) failed: {error}"),
        )
        .await?;
        sqlx::query(
            "UPDATE tasks SET state = 'failed', error = ?2, finished_at = ?3 WHERE id = ?1",
        )
        .bind(task_id)
        .bind(error)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(("job_failed", None, None))
    }

    async fn job_seq(&self, job: JobId) -> Result<i64> {
        sqlx::query_scalar("SELECT seq FROM jobs WHERE id = ?1")
            .bind(job.to_string())
            .fetch_optional(&self.reader)
            .await?
            .ok_or(Error::JobNotFound(job))
    }
}

fn summary(r: &SqliteRow) -> Result<JobSummary> {
    Ok(JobSummary {
        id: uuid(r.get::<&str, _>("id"))?,
        tenant: r.get("tenant"),
        state: job_state(r.get::<&str, _>("state"))?,
        meta: json(r.get::<&str, _>("meta"))?,
        error: r.get("error"),
        created_at: ts(r.get("created_at")),
        finished_at: ots(r.get("finished_at")),
    })
}

#[async_trait]
impl TaskDb for SqliteTaskDb {
    async fn create_job(&self, job: NewJob) -> Result<JobId> {
        if job.tasks.is_empty() {
            return Err(Error::InvalidArgument("a job needs at least one task".into()));
        }
        let id = Uuid::new_v4();
        plan_batch(id, &job.tasks, &HashMap::new())?;
        let mut tx = self.begin().await?;
        if let Some(limit) = job.running_limit {
            // One writer at a time (BEGIN IMMEDIATE): the count cannot change before the insert.
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM jobs WHERE tenant = ?1 AND state = 'running'",
            )
            .bind(&job.tenant)
            .fetch_one(&mut *tx)
            .await?;
            if running >= limit {
                return Err(Error::RunningLimit { tenant: job.tenant, running, limit });
            }
        }
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO jobs (id, tenant, meta, deadline, remaining, created_at, due, priority) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING seq",
        )
        .bind(id.to_string())
        .bind(&job.tenant)
        .bind(job.meta.to_string())
        .bind(job.deadline.map(|d| d.timestamp_micros()))
        .bind(job.tasks.len() as i64)
        .bind(now_us())
        .bind(job.due.map(|d| d.timestamp_micros()))
        .bind(job.priority)
        .fetch_one(&mut *tx)
        .await?;
        let ready =
            Self::insert_tasks(&mut tx, id, &job.tenant, seq, &job.tasks, &HashMap::new()).await?;
        tx.commit().await?;
        if !ready.is_empty() {
            self.notifier.publish(ready);
        }
        debug!(job = %id, tenant = %job.tenant, tasks = job.tasks.len(), "job created");
        Ok(id)
    }

    async fn add_tasks(&self, job: JobId, tasks: Vec<NewTask>) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT tenant, state, seq FROM jobs WHERE id = ?1")
            .bind(job.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::JobNotFound(job))?;
        let (tenant, state, seq): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
        if state != "running" {
            return Err(Error::JobNotRunning { job, state });
        }
        let mut keys: BTreeSet<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
        keys.extend(tasks.iter().flat_map(|t| t.prerequisites.iter().map(String::as_str)));
        let keys_json = serde_json::to_string(&keys).expect("strings serialize");
        let rows = sqlx::query(
            "SELECT key, id, state FROM tasks WHERE job_seq = ?1 AND key IN (SELECT value FROM json_each(?2))",
        )
        .bind(seq)
        .bind(keys_json)
        .fetch_all(&mut *tx)
        .await?;
        let existing = rows
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>(0),
                    ExistingTask { id: r.get(1), done: r.get::<&str, _>(2) == "done" },
                )
            })
            .collect();
        let ready = Self::insert_tasks(&mut tx, job, &tenant, seq, &tasks, &existing).await?;
        sqlx::query("UPDATE jobs SET remaining = remaining + ?2 WHERE seq = ?1")
            .bind(seq)
            .bind(tasks.len() as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if !ready.is_empty() {
            self.notifier.publish(ready);
        }
        Ok(())
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

    async fn claim(&self, agent: &str, kinds: &[Kind], lease: Duration) -> Result<Option<Lease>> {
        Ok(self.claim_batch(agent, kinds, lease, 1).await?.pop())
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
        let r = sqlx::query(
            "SELECT seq, id, tenant, state, meta, output, error, remaining, created_at, finished_at, deadline, \
                    (SELECT min(started_at) FROM tasks WHERE job_seq = jobs.seq) AS started_at \
               FROM jobs WHERE id = ?1",
        )
        .bind(job.to_string())
        .fetch_optional(&self.reader)
        .await?
        .ok_or(Error::JobNotFound(job))?;
        let seq: i64 = r.get("seq");
        let counts = sqlx::query(
            "SELECT kind, state, count(*) FROM tasks WHERE job_seq = ?1 GROUP BY kind, state ORDER BY kind, state",
        )
        .bind(seq)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|c| Ok(TaskCount { kind: c.get(0), state: task_state(c.get::<&str, _>(1))?, count: c.get(2) }))
        .collect::<Result<Vec<_>>>()?;
        let first_failure = sqlx::query(
            "SELECT key, kind, coalesce(error, '') FROM tasks WHERE job_seq = ?1 AND state = 'failed' \
             ORDER BY finished_at, id LIMIT 1",
        )
        .bind(seq)
        .fetch_optional(&self.reader)
        .await?
        .map(|f| TaskFailure { task: f.get(0), kind: f.get(1), error: f.get(2) });
        Ok(JobStatus {
            id: uuid(r.get::<&str, _>("id"))?,
            tenant: r.get("tenant"),
            state: job_state(r.get::<&str, _>("state"))?,
            meta: json(r.get::<&str, _>("meta"))?,
            output: ojson(r.get("output"))?,
            error: r.get("error"),
            first_failure,
            remaining: r.get("remaining"),
            counts,
            created_at: ts(r.get("created_at")),
            started_at: ots(r.get("started_at")),
            finished_at: ots(r.get("finished_at")),
            deadline: ots(r.get("deadline")),
        })
    }

    async fn tasks(&self, job: JobId) -> Result<Vec<TaskInfo>> {
        let seq = self.job_seq(job).await?;
        let rows = sqlx::query(
            "SELECT key, kind, state, attempt, max_attempts, depth, waiting, payload, output, error, \
                    agent, created_at, finished_at FROM tasks WHERE job_seq = ?1 ORDER BY id",
        )
        .bind(seq)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TaskInfo {
                    key: r.get(0),
                    kind: r.get(1),
                    state: task_state(r.get::<&str, _>(2))?,
                    attempt: r.get(3),
                    max_attempts: r.get(4),
                    depth: r.get(5),
                    waiting: r.get(6),
                    payload: json(r.get::<&str, _>(7))?,
                    output: ojson(r.get(8))?,
                    error: r.get(9),
                    agent: r.get(10),
                    created_at: ts(r.get(11)),
                    finished_at: ots(r.get(12)),
                })
            })
            .collect()
    }

    async fn task_output(&self, job: JobId, key: &str) -> Result<Option<Value>> {
        let out: Option<Option<String>> = sqlx::query_scalar(
            "SELECT t.output FROM tasks t JOIN jobs j ON j.seq = t.job_seq \
              WHERE j.id = ?1 AND t.key = ?2 AND t.state = 'done'",
        )
        .bind(job.to_string())
        .bind(key)
        .fetch_optional(&self.reader)
        .await?;
        ojson(out.flatten())
    }

    async fn streams(&self) -> Result<Vec<StreamInfo>> {
        let rows = sqlx::query(
            "SELECT s.tenant, s.kind, s.priority_multiplier, s.reserved, s.running, \
                    (SELECT count(*) FROM tasks t WHERE t.stream_id = s.id AND t.state = 'ready'), \
                    s.reserved_idle \
               FROM streams s ORDER BY s.tenant, s.kind",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StreamInfo {
                tenant: r.get(0),
                kind: r.get(1),
                config: StreamConfig {
                    priority_multiplier: r.get(2),
                    reserved: r.get(3),
                    idle: ReservationIdle::parse(r.get::<&str, _>(6)),
                },
                running: r.get(4),
                ready: r.get(5),
            })
            .collect())
    }

    async fn list_jobs(&self, filter: JobFilter) -> Result<Vec<JobSummary>> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit } as i64;
        let rows = sqlx::query(
            "SELECT id, tenant, state, meta, error, created_at, finished_at FROM jobs \
              WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR state = ?2) \
              ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
        )
        .bind(filter.tenant)
        .bind(filter.state.map(|s| s.as_str()))
        .bind(limit)
        .bind(filter.offset as i64)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(summary).collect()
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
