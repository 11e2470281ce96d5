//! Read-only views of jobs, tasks and streams on SQLite (the `TaskDb` methods that only read).

use super::open::SqliteTaskDb;
use super::sql::{job_state, json, ojson, ots, task_state, ts, uuid};
use crate::error::{Error, Result};
use crate::job::{JobFilter, JobId, JobStatus, JobSummary};
use crate::rows::{StreamRow, page, stream_info, task_counts, task_failure};
use crate::stream::StreamInfo;
use crate::task::TaskInfo;
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

pub(super) fn summary(r: &SqliteRow) -> Result<JobSummary> {
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

impl SqliteTaskDb {
    pub(super) async fn job_view(&self, job: JobId) -> Result<JobStatus> {
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
        let counts = task_counts(
            sqlx::query_as(
                "SELECT kind, state, count(*) FROM tasks WHERE job_seq = ?1 \
                  GROUP BY kind, state ORDER BY kind, state",
            )
            .bind(seq)
            .fetch_all(&self.reader)
            .await?,
        )?;
        let first_failure = sqlx::query_as(
            "SELECT key, kind, coalesce(error, '') FROM tasks WHERE job_seq = ?1 AND state = 'failed' \
             ORDER BY finished_at, id LIMIT 1",
        )
        .bind(seq)
        .fetch_optional(&self.reader)
        .await?
        .map(task_failure);
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

    pub(super) async fn tasks_view(&self, job: JobId) -> Result<Vec<TaskInfo>> {
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

    pub(super) async fn task_output_view(&self, job: JobId, key: &str) -> Result<Option<Value>> {
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

    pub(super) async fn streams_view(&self) -> Result<Vec<StreamInfo>> {
        let rows: Vec<StreamRow> = sqlx::query_as(
            "SELECT s.tenant, s.kind, s.priority_multiplier, s.reserved, s.running, \
                    (SELECT count(*) FROM tasks t WHERE t.stream_id = s.id AND t.state = 'ready'), \
                    s.reserved_idle \
               FROM streams s ORDER BY s.tenant, s.kind",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.into_iter().map(stream_info).collect())
    }

    pub(super) async fn list_jobs_view(&self, filter: JobFilter) -> Result<Vec<JobSummary>> {
        let (limit, offset) = page(&filter);
        let rows = sqlx::query(
            "SELECT id, tenant, state, meta, error, created_at, finished_at FROM jobs \
              WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR state = ?2) \
              ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
        )
        .bind(filter.tenant)
        .bind(filter.state.map(|s| s.as_str()))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(summary).collect()
    }
}
