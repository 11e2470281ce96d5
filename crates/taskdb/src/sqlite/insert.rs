//! Inserting jobs and tasks on SQLite: `create_job`, `add_tasks` and the batch insert they share.

use super::open::SqliteTaskDb;
use super::sql::now_us;
use crate::error::{Error, Result};
use crate::job::{JobId, NewJob};
use crate::task::{ExistingTask, NewTask, PrereqRef, existing_tasks, plan_batch};
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;
use std::collections::{BTreeSet, HashMap};
use tracing::debug;
use uuid::Uuid;

impl SqliteTaskDb {
    /// Inserts a validated batch; returns the kind of every task that became ready.
    pub(super) async fn insert_tasks(
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

    pub(super) async fn create_job_in(&self, job: NewJob) -> Result<JobId> {
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

    pub(super) async fn add_tasks_in(&self, job: JobId, tasks: Vec<NewTask>) -> Result<()> {
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
        let rows = sqlx::query_as(
            "SELECT key, id, state FROM tasks WHERE job_seq = ?1 AND key IN (SELECT value FROM json_each(?2))",
        )
        .bind(seq)
        .bind(keys_json)
        .fetch_all(&mut *tx)
        .await?;
        let existing = existing_tasks(rows);
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
}
