//! Leases: the right of one agent to work on one attempt of one task until an expiry.
//!
//! The attempt number fences late calls: `complete`/`fail`/`heartbeat` from an attempt that is
//! no longer current are rejected with [`crate::Error::LeaseLost`] and change nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::job::{JobId, JobState};
use crate::task::Kind;

/// A claimed task. Keep it to heartbeat, complete or fail the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// Internal row id of the task (what the backends fence on together with `attempt`).
    pub task_id: i64,
    /// The job.
    pub job_id: JobId,
    /// The task key within the job.
    pub key: String,
    /// Worker kind.
    pub kind: Kind,
    /// Owner of the job.
    pub tenant: String,
    /// Attempt number, starting at 1.
    pub attempt: i32,
    /// Attempt budget of the task.
    pub max_attempts: i32,
    /// When the lease runs out unless renewed by a heartbeat.
    pub expires_at: DateTime<Utc>,
    /// The task's input.
    pub payload: serde_json::Value,
}

/// What a heartbeat learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatOutcome {
    /// Keep working; the lease now expires at this time.
    Continue {
        /// New expiry.
        expires_at: DateTime<Utc>,
    },
    /// The job failed or was cancelled: stop working and drop the result.
    Cancelled,
}

/// How bad a task failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// May succeed on retry (I/O, lost connection, out of memory): requeue with backoff until the
    /// attempts run out.
    Transient,
    /// Will fail again (guest panic, cycle limit): fail the job at once.
    Permanent,
}

/// What completing a task caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The job's state afterwards (`Succeeded` when this was its last task).
    pub job_state: JobState,
    /// Tasks that became ready because this one was their last unfinished prerequisite.
    pub became_ready: i64,
}

/// What failing a task caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// The task will be retried (attempt + 1) after this time.
    Retrying {
        /// When it becomes claimable again.
        not_before: DateTime<Utc>,
    },
    /// The task failed for good and its job failed.
    JobFailed,
}

/// Why an action on `lease` changed nothing, from its task's current `(state, attempt)`
/// (`None`: the task is gone): cancelled with its job, else lost.
pub(crate) fn refusal(lease: &Lease, current: Option<(String, i32)>) -> crate::Error {
    match current {
        Some((state, attempt)) if state == "cancelled" && attempt == lease.attempt => {
            cancelled(lease)
        }
        _ => lost(lease),
    }
}

/// The lease no longer holds its task (expired, reclaimed, or the task is gone).
pub(crate) fn lost(lease: &Lease) -> crate::Error {
    crate::Error::LeaseLost { job: lease.job_id, task: lease.key.clone(), attempt: lease.attempt }
}

/// The lease's task was cancelled with its job.
pub(crate) fn cancelled(lease: &Lease) -> crate::Error {
    crate::Error::TaskCancelled { job: lease.job_id, task: lease.key.clone() }
}
