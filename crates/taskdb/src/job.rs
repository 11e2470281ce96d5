//! Jobs: a DAG of tasks owned by one tenant, with a lifecycle and an opaque caller-set `meta`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::task::{NewTask, TaskState};

pub use crate::id::JobId;

/// Lifecycle of a job: `running → succeeded | failed | cancelled | timed_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Tasks remain to be done.
    Running,
    /// Every task is done.
    Succeeded,
    /// A task failed permanently (or ran out of attempts); the other tasks were cancelled.
    Failed,
    /// Cancelled by a caller; the tasks were cancelled.
    Cancelled,
    /// The job passed its deadline; the tasks were cancelled.
    TimedOut,
}

impl JobState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::TimedOut => "timed_out",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            "timed_out" => JobState::TimedOut,
            _ => return None,
        })
    }

    /// Whether the job reached an end state (it will never change again).
    pub fn is_finished(self) -> bool {
        self != JobState::Running
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to create, with its first tasks (created in the same transaction, so a job is never
/// visible without work).
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The tenant that owns the job; its tasks go to the tenant's streams.
    pub tenant: String,
    /// Opaque caller data (e.g. image id, input id, session options).
    pub meta: serde_json::Value,
    /// Optional deadline; past it, [`crate::TaskDb::expire_jobs`] marks the job `timed_out`.
    pub deadline: Option<DateTime<Utc>>,
    /// When the submitter needs the job done (the API's session deadline): inside the
    /// tenant's streams, the job due first is claimed first, and a job without one comes
    /// after every job with one. Orders claims only; unlike `deadline`, it never ends the job.
    pub due: Option<DateTime<Utc>>,
    /// Priority among the tenant's jobs due at the same time (higher first; default 0). Like
    /// `due`, it orders the tenant's own tasks and never takes another tenant's share.
    pub priority: i32,
    /// The first tasks. Must not be empty.
    pub tasks: Vec<NewTask>,
    /// At most this many running jobs of the tenant, this one included: checked and the job
    /// inserted in one transaction, so API processes sharing the database cannot both slip
    /// under a quota ([`crate::Error::RunningLimit`] otherwise).
    pub running_limit: Option<i64>,
}

impl NewJob {
    /// A job of `tenant` with empty meta, no deadline, no due time, priority 0 and the given
    /// tasks.
    pub fn new(tenant: impl Into<String>, tasks: Vec<NewTask>) -> Self {
        NewJob {
            tenant: tenant.into(),
            meta: serde_json::Value::Null,
            deadline: None,
            due: None,
            priority: 0,
            tasks,
            running_limit: None,
        }
    }

    /// Sets the opaque meta.
    pub fn meta(mut self, meta: serde_json::Value) -> Self {
        self.meta = meta;
        self
    }

    /// Limits the tenant's running jobs (see [`NewJob::running_limit`]).
    pub fn running_limit(mut self, limit: i64) -> Self {
        self.running_limit = Some(limit);
        self
    }

    /// Sets a deadline.
    pub fn deadline(mut self, deadline: DateTime<Utc>) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets when the job is due (see [`NewJob::due`]).
    pub fn due(mut self, due: DateTime<Utc>) -> Self {
        self.due = Some(due);
        self
    }

    /// Sets the job's priority among its tenant's jobs (see [`NewJob::priority`]).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
}

/// Number of tasks of one kind in one state (for status pages and progress like `ProveSegments: N/M`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCount {
    /// Task kind.
    pub kind: String,
    /// Task state.
    pub state: TaskState,
    /// How many.
    pub count: i64,
}

/// The first failed task of a job: what the API shows as the job's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFailure {
    /// Task key.
    pub task: String,
    /// Task kind.
    pub kind: String,
    /// The error the agent reported.
    pub error: String,
}

/// Everything the API and operators need to know about one job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job.
    pub id: JobId,
    /// Owner.
    pub tenant: String,
    /// Lifecycle state.
    pub state: JobState,
    /// Caller's opaque data.
    pub meta: serde_json::Value,
    /// Output set by [`crate::TaskDb::set_job_output`].
    pub output: Option<serde_json::Value>,
    /// Why the job failed/was cancelled/timed out.
    pub error: Option<String>,
    /// The first task that failed, if any.
    pub first_failure: Option<TaskFailure>,
    /// Tasks not yet done (0 once succeeded).
    pub remaining: i64,
    /// Task counts per (kind, state).
    pub counts: Vec<TaskCount>,
    /// When the job was created.
    pub created_at: DateTime<Utc>,
    /// When its first task was claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached an end state.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its deadline, if any.
    pub deadline: Option<DateTime<Utc>>,
}

impl JobStatus {
    /// A status with a state and task counts (`(kind, state, count)`) and nothing else set:
    /// what pure functions over statuses (progress, charging, repair) read, for their tests
    /// and tools. Created now, never started.
    pub fn of_counts(state: JobState, counts: &[(&str, TaskState, i64)]) -> Self {
        JobStatus {
            id: Uuid::nil(),
            tenant: String::new(),
            state,
            meta: serde_json::Value::Null,
            output: None,
            error: None,
            first_failure: None,
            remaining: 0,
            counts: counts
                .iter()
                .map(|(kind, state, count)| TaskCount {
                    kind: (*kind).to_string(),
                    state: *state,
                    count: *count,
                })
                .collect(),
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            deadline: None,
        }
    }

    /// Number of tasks of `kind` in `state`.
    pub fn count(&self, kind: &str, state: TaskState) -> i64 {
        self.counts.iter().filter(|c| c.kind == kind && c.state == state).map(|c| c.count).sum()
    }

    /// Number of tasks in `state`, all kinds.
    pub fn count_state(&self, state: TaskState) -> i64 {
        self.counts.iter().filter(|c| c.state == state).map(|c| c.count).sum()
    }
}

/// One line of a job listing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSummary {
    /// The job.
    pub id: JobId,
    /// Owner.
    pub tenant: String,
    /// Lifecycle state.
    pub state: JobState,
    /// Caller's opaque data.
    pub meta: serde_json::Value,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Filter and page for [`crate::TaskDb::list_jobs`]; newest jobs first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only this tenant's jobs.
    pub tenant: Option<String>,
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Page size (0 means 100).
    pub limit: u32,
    /// Jobs to skip.
    pub offset: u32,
}

/// Refuses the states a job cannot be ended in by [`crate::TaskDb::end_job`].
pub(crate) fn check_end_state(state: JobState) -> crate::Result<()> {
    match state {
        JobState::Cancelled | JobState::Failed | JobState::TimedOut => Ok(()),
        s => Err(crate::Error::InvalidArgument(format!("a job cannot be ended as {s:?}"))),
    }
}

/// `now - retention`, saturating at the earliest representable time.
pub(crate) fn cutoff(retention: std::time::Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(retention)
        .ok()
        .and_then(|d| Utc::now().checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}
