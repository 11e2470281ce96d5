//! Read-only views of jobs, tasks and streams on PostgreSQL (the `TaskDb` methods that only read).

use super::open::PostgresTaskDb;
use super::sql::{job_state, task_state};
use crate::error::{Error, Result};
use crate::job::{JobFilter, JobId, JobStatus, JobSummary};
use crate::rows::{StreamRow, page, stream_info, task_counts, task_failure};
use crate::stream::StreamInfo;
use crate::task::{TaskInfo, TaskState};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;

pub(super) fn summary(r: &PgRow) -> Result<JobSummary> {
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

impl PostgresTaskDb {
    pub(super) async fn job_view(&self, job: JobId) -> Result<JobStatus> {
        let r = sqlx::query(
            "SELECT id, tenant, state, meta, output, error, created_at, finished_at, deadline, \
                    (SELECT min(started_at) FROM tasks WHERE job_id = $1) AS started_at \
               FROM jobs WHERE id = $1",
        )
        .bind(job)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(Error::JobNotFound(job))?;
        let counts = task_counts(
            sqlx::query_as(
                "SELECT kind, state, count(*) FROM tasks WHERE job_id = $1 \
                  GROUP BY kind, state ORDER BY kind, state",
            )
            .bind(job)
            .fetch_all(&self.pool)
            .await?,
        )?;
        let first_failure = sqlx::query_as(
            "SELECT key, kind, coalesce(error, '') FROM tasks WHERE job_id = $1 AND state = 'failed' \
             ORDER BY finished_at, id LIMIT 1",
        )
        .bind(job)
        .fetch_optional(&self.pool)
        .await?
        .map(task_failure);
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

    pub(super) async fn tasks_view(&self, job: JobId) -> Result<Vec<TaskInfo>> {
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

    pub(super) async fn task_output_view(&self, job: JobId, key: &str) -> Result<Option<Value>> {
        Ok(sqlx::query_scalar(
            "SELECT output FROM tasks WHERE job_id = $1 AND key = $2 AND state = 'done'",
        )
        .bind(job)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub(super) async fn streams_view(&self) -> Result<Vec<StreamInfo>> {
        let rows: Vec<StreamRow> = sqlx::query_as(
            "SELECT s.tenant, s.kind, s.priority_multiplier, s.reserved, \
                    s.running + coalesce((SELECT sum(r.n) FROM stream_running r \
                                           WHERE r.stream_id = s.id), 0)::int8, \
                    (SELECT count(*) FROM tasks t WHERE t.stream_id = s.id AND t.state = 'ready'), \
                    s.reserved_idle \
               FROM streams s ORDER BY s.tenant, s.kind",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(stream_info).collect())
    }

    pub(super) async fn list_jobs_view(&self, filter: JobFilter) -> Result<Vec<JobSummary>> {
        let (limit, offset) = page(&filter);
        let rows = sqlx::query(
            "SELECT id, tenant, state, meta, error, created_at, finished_at FROM jobs \
              WHERE ($1::text IS NULL OR tenant = $1) AND ($2::text IS NULL OR state = $2) \
              ORDER BY seq DESC LIMIT $3 OFFSET $4",
        )
        .bind(filter.tenant)
        .bind(filter.state.map(|s| s.as_str()))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(summary).collect()
    }
}
