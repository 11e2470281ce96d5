//! Errors of the task database.
//!
//! Every variant carries a stable code (`TIFFIN-TASKDB-0xx`) so operators can search logs and docs
//! for it, and its message says what to do about it.

use uuid::Uuid;

/// Everything that can go wrong in a [`crate::TaskDb`] call.
#[derive(Debug, thiserror::Error, tiffin_codes::Coded)]
pub enum Error {
    /// The database could not be reached or a statement failed.
    #[error(
        "TIFFIN-TASKDB-001: database error: {0}; check that the database is reachable and not \
         overloaded, then retry"
    )]
    Database(#[from] sqlx::Error),

    /// Schema migrations could not be applied.
    #[error(
        "TIFFIN-TASKDB-002: could not migrate the task database schema: {0}; check the database \
         permissions, or that no newer Tiffin version already migrated it"
    )]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// No job with this id exists (never created, or garbage-collected).
    #[error(
        "TIFFIN-TASKDB-010: job {0} not found; it may never have existed or was garbage-collected"
    )]
    JobNotFound(Uuid),

    /// Tasks were added to a job that already finished (succeeded, failed, cancelled, timed out).
    #[error(
        "TIFFIN-TASKDB-011: job {job} is {state}, not running, so no tasks can be added; stop \
         working on it"
    )]
    JobNotRunning {
        /// The job.
        job: Uuid,
        /// Its current state.
        state: String,
    },

    /// A task names a prerequisite that does not exist in the job (nor earlier in the batch).
    #[error(
        "TIFFIN-TASKDB-012: task {task:?} of job {job} depends on unknown task {prerequisite:?}; \
         add prerequisites before (or earlier in the same batch than) the tasks that need them"
    )]
    UnknownPrerequisite {
        /// The job.
        job: Uuid,
        /// The task being added.
        task: String,
        /// The missing prerequisite key.
        prerequisite: String,
    },

    /// A task key was used twice in one job.
    #[error(
        "TIFFIN-TASKDB-013: job {job} already has a task {task:?}; task keys must be unique \
         within a job"
    )]
    DuplicateTask {
        /// The job.
        job: Uuid,
        /// The duplicated key.
        task: String,
    },

    /// An argument is out of range (e.g. a non-positive priority multiplier).
    #[error("TIFFIN-TASKDB-014: invalid argument: {0}; fix the call")]
    InvalidArgument(String),

    /// The lease is no longer the current one: it expired, was requeued and maybe re-claimed by
    /// another agent. Nothing was changed.
    #[error(
        "TIFFIN-TASKDB-020: lease on task {task:?} of job {job} (attempt {attempt}) was lost \
         (expired or superseded); stop working on it and discard the result, another attempt owns \
         the task"
    )]
    LeaseLost {
        /// The job.
        job: Uuid,
        /// The task key.
        task: String,
        /// The attempt that lost its lease.
        attempt: i32,
    },

    /// The task was cancelled because its job failed or was cancelled. Nothing was changed.
    #[error(
        "TIFFIN-TASKDB-021: task {task:?} of job {job} was cancelled (its job failed or was \
         cancelled); stop working on it and discard the result"
    )]
    TaskCancelled {
        /// The job.
        job: Uuid,
        /// The task key.
        task: String,
    },

    /// Stored data could not be decoded (corrupt row or an incompatible schema).
    /// The tenant already has as many running jobs as the caller allows.
    #[error(
        "TIFFIN-TASKDB-015: tenant {tenant:?} already has {running} running jobs (limit {limit}); \
         wait for one to end"
    )]
    RunningLimit {
        /// The tenant.
        tenant: String,
        /// Its running jobs when the job was refused.
        running: i64,
        /// The limit asked for.
        limit: i64,
    },

    #[error(
        "TIFFIN-TASKDB-030: stored data could not be decoded: {0}; the database may have been \
         written by an incompatible Tiffin version"
    )]
    Corrupt(String),
}

impl Error {
    /// Whether retrying the same call later may succeed (database hiccups), as opposed to errors
    /// that will repeat (a lost lease, a cancelled task, a bad argument).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Database(_))
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_starts_with_code() {
        let e = Error::InvalidArgument("x".into());
        assert!(e.to_string().starts_with(e.code()));
        let e = Error::LeaseLost { job: Uuid::nil(), task: "t".into(), attempt: 1 };
        assert!(e.to_string().starts_with(e.code()));
    }
}
