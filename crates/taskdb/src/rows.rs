//! Decoding what both backends read alike: states, stream rows, task counts and failures, and
//! the page of a job listing. The backends keep only their dialect's SQL and column types.

use crate::error::{Error, Result};
use crate::job::{JobFilter, JobState, TaskCount, TaskFailure};
use crate::stream::{ReservationIdle, StreamConfig, StreamInfo};
use crate::task::TaskState;

/// A job state column.
pub(crate) fn job_state(s: &str) -> Result<JobState> {
    JobState::parse(s).ok_or_else(|| Error::Corrupt(format!("unknown job state {s:?}")))
}

/// A task state column.
pub(crate) fn task_state(s: &str) -> Result<TaskState> {
    TaskState::parse(s).ok_or_else(|| Error::Corrupt(format!("unknown task state {s:?}")))
}

/// A stream row: tenant, kind, multiplier, reserved, running, ready, reservation idle.
pub(crate) type StreamRow = (String, String, f64, i32, i64, i64, String);

/// A stream row as [`StreamInfo`].
pub(crate) fn stream_info(row: StreamRow) -> StreamInfo {
    let (tenant, kind, priority_multiplier, reserved, running, ready, idle) = row;
    let idle = ReservationIdle::parse(&idle);
    StreamInfo {
        tenant,
        kind,
        config: StreamConfig { priority_multiplier, reserved, idle },
        running,
        ready,
    }
}

/// A count of a job's tasks: kind, state, count.
pub(crate) type CountRow = (String, String, i64);

/// Count rows as [`TaskCount`]s.
pub(crate) fn task_counts(rows: Vec<CountRow>) -> Result<Vec<TaskCount>> {
    rows.into_iter()
        .map(|(kind, state, count)| Ok(TaskCount { kind, state: task_state(&state)?, count }))
        .collect()
}

/// A job's first failed task: key, kind, error.
pub(crate) type FailureRow = (String, String, String);

/// A failure row as [`TaskFailure`].
pub(crate) fn task_failure((task, kind, error): FailureRow) -> TaskFailure {
    TaskFailure { task, kind, error }
}

/// The page of a job listing: (limit, offset), a limit of 0 meaning 100.
pub(crate) fn page(filter: &JobFilter) -> (i64, i64) {
    let limit = if filter.limit == 0 { 100 } else { filter.limit };
    (i64::from(limit), i64::from(filter.offset))
}
