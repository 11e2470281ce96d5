//! PostgreSQL backend: the distributed TaskDB.
//!
//! Hot paths are one round trip each (a sink's completion two): claim, complete and fail call
//! PL/pgSQL functions (defined in `migrations/postgres/`) that take row locks in one fixed order
//! (job, tasks, streams) and use `FOR UPDATE SKIP LOCKED` so concurrent claimers never block on
//! each other's tasks. Claims and completions lock no row that others share (`claim.rs`,
//! `completion.rs`, migration 0005): a claim can take several tasks at once, and a completion
//! ends its job in a second statement after it committed. Readiness
//! is broadcast with one `pg_notify` per transaction that makes tasks ready (no per-row
//! triggers); one LISTEN connection per process feeds the in-process [`Notifier`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use tracing::{debug, warn};
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

/// The NOTIFY channel; the payload is a comma-separated list of `kind:count` that became ready.
pub const CHANNEL: &str = "tiffin_taskdb_ready";

/// TaskDB on PostgreSQL. Cheap to share: hold it in an `Arc<dyn TaskDb>`.
pub struct PostgresTaskDb {
    pool: PgPool,
    config: Config,
    notifier: Notifier,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresTaskDb {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresTaskDb {
    /// Connects to `url` (`postgres://user:pass@host:port/db`), applies the embedded migrations
    /// and starts the LISTEN task that wakes [`TaskDb::wait_for_work`].
    pub async fn connect(url: &str, config: Config) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        // No JIT: every TaskDB statement is a short indexed lookup, and with PostgreSQL's
        // default (JIT above an estimated cost of 100,000) one misestimated plan would be
        // compiled for tens of milliseconds on every call. (No gain measured; a safeguard.)
        let options = options.options([("jit", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Self::from_pool(pool, config).await
    }

    /// Like [`PostgresTaskDb::connect`] with an existing pool.
    pub async fn from_pool(pool: PgPool, config: Config) -> Result<Self> {
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let notifier = Notifier::default();
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let n = notifier.clone();
        let listener = tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(msg) => n.publish(msg.payload().split(',').filter(|s| !s.is_empty())),
                    Err(e) => {
                        warn!(error = %e, "TaskDB LISTEN connection failed; reconnecting");
                        // wake everyone: a notification may have been lost
                        n.publish(Vec::<String>::new());
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(PostgresTaskDb { pool, config, notifier, listener })
    }

    /// The connection pool (for health checks and metrics).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn insert_tasks(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        job: JobId,
        tenant: &str,
        job_seq: i64,
        tasks: &[NewTask],
        existing: &HashMap<String, ExistingTask>,
    ) -> Result<()> {
        let plan = plan_batch(job, tasks, existing)?;
        let kinds: Vec<String> = tasks
            .iter()
            .map(|t| t.kind.as_str().to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let streams = ensure_streams(tx, tenant, &kinds).await?;
        let mut keys = Vec::with_capacity(tasks.len());
        let mut tkinds = Vec::with_capacity(tasks.len());
        let mut sids = Vec::with_capacity(tasks.len());
        let mut depths = Vec::with_capacity(tasks.len());
        let mut waits = Vec::with_capacity(tasks.len());
        let mut maxes = Vec::with_capacity(tasks.len());
        let mut payloads = Vec::with_capacity(tasks.len());
        let mut works = Vec::with_capacity(tasks.len());
        for (t, (w, _)) in tasks.iter().zip(&plan) {
            keys.push(t.key.clone());
            tkinds.push(t.kind.as_str().to_string());
            sids.push(streams[t.kind.as_str()]);
            depths.push(t.depth);
            waits.push(*w);
            maxes.push(t.max_attempts);
            payloads.push(t.payload.clone());
            works.push(t.work);
        }
        let rows = sqlx::query(
            // the job's due time and priority are copied for the claim's index (migration 0009)
            "INSERT INTO tasks (job_id, key, kind, stream_id, job_seq, depth, state, waiting, \
                                max_attempts, payload, ready_at, work, job_due, job_priority) \
             SELECT $1, k, kd, s, $2, d, CASE WHEN w = 0 THEN 'ready' ELSE 'pending' END, w, m, p, \
                    CASE WHEN w = 0 THEN now() END, wk, \
                    (SELECT due FROM jobs WHERE id = $1), (SELECT priority FROM jobs WHERE id = $1) \
               FROM UNNEST($3::text[], $4::text[], $5::int8[], $6::int4[], $7::int4[], $8::int4[], \
                           $9::jsonb[], $10::int8[]) AS u(k, kd, s, d, w, m, p, wk) \
             RETURNING id, key",
        )
        .bind(job)
        .bind(job_seq)
        .bind(&keys)
        .bind(&tkinds)
        .bind(&sids)
        .bind(&depths)
        .bind(&waits)
        .bind(&maxes)
        .bind(&payloads)
        .bind(&works)
        .fetch_all(&mut **tx)
        .await?;
        let ids: HashMap<String, i64> =
            rows.iter().map(|r| (r.get::<String, _>(1), r.get::<i64, _>(0))).collect();
        let mut pre = Vec::new();
        let mut dep = Vec::new();
        for (t, (_, refs)) in tasks.iter().zip(&plan) {
            let id = ids[&t.key];
            for r in refs {
                pre.push(match *r {
                    PrereqRef::Row(p) => p,
                    PrereqRef::Batch(i) => ids[&tasks[i].key],
                });
                dep.push(id);
            }
        }
        if !pre.is_empty() {
            sqlx::query("INSERT INTO deps (prereq_id, task_id) SELECT * FROM UNNEST($1::int8[], $2::int8[])")
                .bind(&pre)
                .bind(&dep)
                .execute(&mut **tx)
                .await?;
        }
        let mut ready: BTreeMap<&str, u64> = BTreeMap::new();
        for (t, _) in tasks.iter().zip(&plan).filter(|(_, p)| p.0 == 0) {
            *ready.entry(t.kind.as_str()).or_insert(0) += 1;
        }
        if !ready.is_empty() {
            let payload =
                ready.iter().map(|(k, n)| format!("{k}:{n}")).collect::<Vec<_>>().join(",");
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(payload)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

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

/// Refuses a job past the tenant's running limit. A transaction-scoped advisory lock per
/// tenant serialises the creates of one tenant across processes until commit, so the count
/// stays true until the new job is inserted.
async fn check_running_limit(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    limit: i64,
) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tiffin-running:' || $1))")
        .bind(tenant)
        .execute(&mut **tx)
        .await?;
    let running: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE tenant = $1 AND state = 'running'")
            .bind(tenant)
            .fetch_one(&mut **tx)
            .await?;
    if running >= limit {
        return Err(Error::RunningLimit { tenant: tenant.to_string(), running, limit });
    }
    Ok(())
}

/// Creates missing streams (idempotent under concurrency) and returns kind → stream id.
async fn ensure_streams(
    tx: &mut Transaction<'_, Postgres>,
    tenant: &str,
    kinds: &[String],
) -> Result<HashMap<String, i64>> {
    sqlx::query(
        "INSERT INTO streams (tenant, kind) SELECT $1, k FROM UNNEST($2::text[]) AS u(k) \
         ON CONFLICT (tenant, kind) DO NOTHING",
    )
    .bind(tenant)
    .bind(kinds)
    .execute(&mut **tx)
    .await?;
    let rows = sqlx::query("SELECT kind, id FROM streams WHERE tenant = $1 AND kind = ANY($2)")
        .bind(tenant)
        .bind(kinds)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Vacuums the queue tables with this connection's notices off (see `TaskDb::vacuum`).
async fn vacuum_quietly(conn: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query("SET client_min_messages = error").execute(&mut *conn).await?;
    let vacuum = "VACUUM (ANALYZE, SKIP_LOCKED) tasks, deps, jobs, streams, stream_running";
    let vacuumed = sqlx::query(vacuum).execute(&mut *conn).await;
    sqlx::query("RESET client_min_messages").execute(&mut *conn).await?;
    vacuumed?;
    Ok(())
}

/// Retries a write on deadlock / serialization failure (rare: locks are taken in a fixed order,
/// but multi-stream counter updates can still cross).
async fn retrying<T, F, Fut>(mut op: F) -> Result<T>
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

fn kinds_vec(kinds: &[Kind]) -> Vec<String> {
    kinds.iter().map(|k| k.as_str().to_string()).collect()
}

fn job_state(s: &str) -> Result<JobState> {
    JobState::parse(s).ok_or_else(|| Error::Corrupt(format!("unknown job state {s:?}")))
}

fn task_state(s: &str) -> Result<TaskState> {
    TaskState::parse(s).ok_or_else(|| Error::Corrupt(format!("unknown task state {s:?}")))
}

fn summary(r: &PgRow) -> Result<JobSummary> {
    Ok(JobSummary {
        id: r.get("id"),
        tenant: r.get("tenant"),
        state: job_state(r.get::<&str, _>("state"))?,
        meta: r.get("meta"),
        error: r.get("error"),
        created_at: r.get("created_at"),
        finished_at: r.get("finished_at"),
    })
}

#[async_trait]
impl TaskDb for PostgresTaskDb {
    async fn create_job(&self, job: NewJob) -> Result<JobId> {
        if job.tasks.is_empty() {
            return Err(Error::InvalidArgument("a job needs at least one task".into()));
        }
        let id = Uuid::new_v4();
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            // Validate before inserting anything.
            plan_batch(id, &job.tasks, &HashMap::new())?;
            if let Some(limit) = job.running_limit {
                check_running_limit(&mut tx, &job.tenant, limit).await?;
            }
            let seq: i64 = sqlx::query_scalar(
                "INSERT INTO jobs (id, tenant, meta, deadline, due, priority) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
            )
            .bind(id)
            .bind(&job.tenant)
            .bind(&job.meta)
            .bind(job.deadline)
            .bind(job.due)
            .bind(job.priority)
            .fetch_one(&mut *tx)
            .await?;
            self.insert_tasks(&mut tx, id, &job.tenant, seq, &job.tasks, &HashMap::new()).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        debug!(job = %id, tenant = %job.tenant, tasks = job.tasks.len(), "job created");
        Ok(id)
    }

    async fn add_tasks(&self, job: JobId, tasks: Vec<NewTask>) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let row = sqlx::query("SELECT tenant, state, seq FROM jobs WHERE id = $1 FOR UPDATE")
                .bind(job)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(Error::JobNotFound(job))?;
            let tenant: String = row.get(0);
            let state: String = row.get(1);
            if state != "running" {
                return Err(Error::JobNotRunning { job, state });
            }
            let mut keys: Vec<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
            keys.extend(tasks.iter().flat_map(|t| t.prerequisites.iter().map(String::as_str)));
            // Lock the tasks this batch links to: a prerequisite completing meanwhile would not
            // see its new dependent (completions do not lock the job; see migration 0004).
            let rows = sqlx::query(
                "SELECT key, id, state FROM tasks WHERE job_id = $1 AND key = ANY($2) \
                 ORDER BY id FOR KEY SHARE",
            )
            .bind(job)
            .bind(&keys)
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
            self.insert_tasks(&mut tx, job, &tenant, row.get(2), &tasks, &existing).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
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
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{kind}:1"))
            .execute(&mut *tx)
            .await?;
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
        let r = sqlx::query(
            "SELECT id, tenant, state, meta, output, error, created_at, finished_at, deadline, \
                    (SELECT min(started_at) FROM tasks WHERE job_id = $1) AS started_at \
               FROM jobs WHERE id = $1",
        )
        .bind(job)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::JobNotFound(job))?;
        let counts = sqlx::query(
            "SELECT kind, state, count(*) FROM tasks WHERE job_id = $1 GROUP BY kind, state ORDER BY kind, state",
        )
        .bind(job)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|c| {
            Ok(TaskCount { kind: c.get(0), state: task_state(c.get::<&str, _>(1))?, count: c.get(2) })
        })
        .collect::<Result<Vec<_>>>()?;
        let first_failure = sqlx::query(
            "SELECT key, kind, coalesce(error, '') FROM tasks WHERE job_id = $1 AND state = 'failed' \
             ORDER BY finished_at, id LIMIT 1",
        )
        .bind(job)
        .fetch_optional(&self.pool)
        .await?
        .map(|f| TaskFailure { task: f.get(0), kind: f.get(1), error: f.get(2) });
        Ok(JobStatus {
            id: r.get("id"),
            tenant: r.get("tenant"),
            state: job_state(r.get::<&str, _>("state"))?,
            meta: r.get("meta"),
            output: r.get("output"),
            error: r.get("error"),
            first_failure,
            remaining: counts.iter().filter(|c| c.state != TaskState::Done).map(|c| c.count).sum(),
            counts,
            created_at: r.get("created_at"),
            started_at: r.get("started_at"),
            finished_at: r.get("finished_at"),
            deadline: r.get("deadline"),
        })
    }

    async fn tasks(&self, job: JobId) -> Result<Vec<TaskInfo>> {
        let rows = sqlx::query(
            "SELECT key, kind, state, attempt, max_attempts, depth, waiting, payload, output, error, \
                    agent, created_at, finished_at FROM tasks WHERE job_id = $1 ORDER BY id",
        )
        .bind(job)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            sqlx::query("SELECT 1 FROM jobs WHERE id = $1")
                .bind(job)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(Error::JobNotFound(job))?;
        }
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
                    payload: r.get(7),
                    output: r.get(8),
                    error: r.get(9),
                    agent: r.get(10),
                    created_at: r.get(11),
                    finished_at: r.get(12),
                })
            })
            .collect()
    }

    async fn task_output(&self, job: JobId, key: &str) -> Result<Option<Value>> {
        Ok(sqlx::query_scalar(
            "SELECT output FROM tasks WHERE job_id = $1 AND key = $2 AND state = 'done'",
        )
        .bind(job)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn streams(&self) -> Result<Vec<StreamInfo>> {
        let rows = sqlx::query(
            "SELECT s.tenant, s.kind, s.priority_multiplier, s.reserved, \
                    s.running + coalesce((SELECT sum(r.n) FROM stream_running r \
                                           WHERE r.stream_id = s.id), 0)::int8, \
                    (SELECT count(*) FROM tasks t WHERE t.stream_id = s.id AND t.state = 'ready'), \
                    s.reserved_idle \
               FROM streams s ORDER BY s.tenant, s.kind",
        )
        .fetch_all(&self.pool)
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
              WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR state = $2) \
              ORDER BY seq DESC LIMIT $3 OFFSET $4",
        )
        .bind(filter.tenant)
        .bind(filter.state.map(|s| s.as_str()))
        .bind(limit)
        .bind(filter.offset as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(summary).collect()
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
