//! How a task's failure and a job's end are written on SQLite (PostgreSQL does both in `tiffin_fail` and `tiffin_end_job`).

use super::open::SqliteTaskDb;
use super::sql::{now_us, ts};
use crate::error::Result;
use crate::job::JobState;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

impl SqliteTaskDb {
    /// Ends a running job and cancels its unfinished tasks, fixing the stream counters.
    pub(super) async fn end_job(
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
    pub(super) async fn fail_in(
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
}
