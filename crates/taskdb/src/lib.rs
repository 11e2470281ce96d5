//! TaskDB: Tiffin's DAG job queue and scheduler.
//!
//! A generic queue that knows jobs, tasks, dependencies, streams and tenants, and nothing about
//! zero-knowledge proofs (docs/architecture.md, "TaskDB"). One trait, [`TaskDb`], two backends:
//! [`PostgresTaskDb`] (distributed, LISTEN/NOTIFY wake-ups) and [`SqliteTaskDb`] (embedded, WAL,
//! in-process wake-ups). Both pass one conformance suite (`tests/`).
//!
//! Key properties:
//! - a task becomes ready in the same transaction that finishes its last prerequisite (per-task
//!   counter of unfinished prerequisites); a job succeeds when its last task completes: on
//!   SQLite in the same transaction, on PostgreSQL in a statement right after it commits, which
//!   locks the job row only when nothing is left (only a task without dependents can be last);
//! - claims and completions can be batched ([`TaskDb::claim_batch`], [`TaskDb::complete_batch`]):
//!   one transaction, and so one flush of the log, for several short tasks;
//! - agents hold **leases** fenced by attempt number; late calls get [`Error::LeaseLost`];
//! - failing or cancelling a job cancels its other tasks at once, and heartbeats report it;
//! - claims follow [`policy`]: agents pinned to reservations first, then weighted fair share by
//!   recent service.

pub mod agent;
pub mod backlog;
mod db;
pub mod error;
mod id;
pub mod job;
pub mod lease;
pub mod notify;
pub mod pin;
pub mod policy;
pub mod postgres;
mod rows;
pub mod sqlite;
pub mod stream;
pub mod task;
#[cfg(feature = "testing")]
pub mod testing;

pub use agent::AgentInfo;
pub use backlog::{Backlog, Served};
pub use db::{Config, TaskDb, shared_migrator};
pub use error::{Error, Result};
pub use job::{JobFilter, JobId, JobState, JobStatus, JobSummary, NewJob, TaskCount, TaskFailure};
pub use lease::{Completion, FailOutcome, FailureKind, HeartbeatOutcome, Lease};
pub use policy::Backoff;
pub use postgres::PostgresTaskDb;
pub use sqlite::SqliteTaskDb;
pub use stream::{ReservationIdle, StreamConfig, StreamInfo};
pub use task::{Kind, NewTask, TaskInfo, TaskState};
