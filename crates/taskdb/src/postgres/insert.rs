//! Inserting jobs and tasks on PostgreSQL: `create_job`, `add_tasks` and the batch insert they share.

use super::open::PostgresTaskDb;
use super::sql::{notify, retrying};
use crate::error::{Error, Result};
use crate::job::{JobId, NewJob};
use crate::task::{ExistingTask, NewTask, PrereqRef, existing_tasks, plan_batch};
use sqlx::{Postgres, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tracing::debug;
use uuid::Uuid;

/// Creates missing streams (idempotent under concurrency) and returns kind → stream id.
pub(super) async fn ensure_streams(
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

/// Refuses a job past the tenant's running limit. A transaction-scoped advisory lock per
/// tenant serialises the creates of one tenant across processes until commit, so the count
/// stays true until the new job is inserted.
pub(super) async fn check_running_limit(
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

/// Each task's count of unfinished prerequisites and its prerequisites ([`plan_batch`]).
type Plan = [(i32, Vec<PrereqRef>)];

/// A batch's tasks as the columns `UNNEST` reads, in batch order.
struct TaskColumns {
    keys: Vec<String>,
    kinds: Vec<String>,
    streams: Vec<i64>,
    depths: Vec<i32>,
    waits: Vec<i32>,
    maxes: Vec<i32>,
    payloads: Vec<serde_json::Value>,
    works: Vec<Option<i64>>,
}

impl TaskColumns {
    fn of(tasks: &[NewTask], plan: &Plan, streams: &HashMap<String, i64>) -> Self {
        let n = tasks.len();
        let mut c = TaskColumns {
            keys: Vec::with_capacity(n),
            kinds: Vec::with_capacity(n),
            streams: Vec::with_capacity(n),
            depths: Vec::with_capacity(n),
            waits: Vec::with_capacity(n),
            maxes: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            works: Vec::with_capacity(n),
        };
        for (t, (w, _)) in tasks.iter().zip(plan) {
            c.keys.push(t.key.clone());
            c.kinds.push(t.kind.as_str().to_string());
            c.streams.push(streams[t.kind.as_str()]);
            c.depths.push(t.depth);
            c.waits.push(*w);
            c.maxes.push(t.max_attempts);
            c.payloads.push(t.payload.clone());
            c.works.push(t.work);
        }
        c
    }
}

/// Links each inserted task to its prerequisites, earlier rows or rows of this batch (`ids`).
async fn insert_deps(
    tx: &mut Transaction<'_, Postgres>,
    tasks: &[NewTask],
    plan: &Plan,
    ids: &HashMap<String, i64>,
) -> Result<()> {
    let mut pre = Vec::new();
    let mut dep = Vec::new();
    for (t, (_, refs)) in tasks.iter().zip(plan) {
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
        sqlx::query(
            "INSERT INTO deps (prereq_id, task_id) SELECT * FROM UNNEST($1::int8[], $2::int8[])",
        )
        .bind(&pre)
        .bind(&dep)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Tells the workers (at commit) how many tasks of each kind the batch made ready.
async fn notify_ready(
    tx: &mut Transaction<'_, Postgres>,
    tasks: &[NewTask],
    plan: &Plan,
) -> Result<()> {
    let mut ready: BTreeMap<&str, u64> = BTreeMap::new();
    for (t, _) in tasks.iter().zip(plan).filter(|(_, p)| p.0 == 0) {
        *ready.entry(t.kind.as_str()).or_insert(0) += 1;
    }
    if !ready.is_empty() {
        let payload = ready.iter().map(|(k, n)| format!("{k}:{n}")).collect::<Vec<_>>().join(",");
        notify(tx, &payload).await?;
    }
    Ok(())
}

impl PostgresTaskDb {
    pub(super) async fn insert_tasks(
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
        let c = TaskColumns::of(tasks, &plan, &streams);
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
        .bind(&c.keys)
        .bind(&c.kinds)
        .bind(&c.streams)
        .bind(&c.depths)
        .bind(&c.waits)
        .bind(&c.maxes)
        .bind(&c.payloads)
        .bind(&c.works)
        .fetch_all(&mut **tx)
        .await?;
        let ids: HashMap<String, i64> =
            rows.iter().map(|r| (r.get::<String, _>(1), r.get::<i64, _>(0))).collect();
        insert_deps(tx, tasks, &plan, &ids).await?;
        notify_ready(tx, tasks, &plan).await
    }

    pub(super) async fn create_job_in(&self, job: NewJob) -> Result<JobId> {
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

    pub(super) async fn add_tasks_in(&self, job: JobId, tasks: Vec<NewTask>) -> Result<()> {
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
            let rows = sqlx::query_as(
                "SELECT key, id, state FROM tasks WHERE job_id = $1 AND key = ANY($2) \
                 ORDER BY id FOR KEY SHARE",
            )
            .bind(job)
            .bind(&keys)
            .fetch_all(&mut *tx)
            .await?;
            let existing = existing_tasks(rows);
            self.insert_tasks(&mut tx, job, &tenant, row.get(2), &tasks, &existing).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}
