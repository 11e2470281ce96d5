//! What every handler works with: the [`Context`] (queue, stores, runtime), the claimed
//! [`Task`], and the [`Outcome`] of a successful attempt with the [`Blob`]s it consumed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tiffin_storage::Stores;
use tiffin_taskdb::{Lease, TaskDb};

use crate::TaskError;
use crate::worker::{Done, Isolation, Work};

/// What handlers share: the queue, the stores and the runtime to drive them from.
#[derive(Clone)]
pub struct Context {
    /// The task database.
    pub db: Arc<dyn TaskDb>,
    /// Hot and cold stores.
    pub stores: Stores,
    /// Runtime that owns the database and store clients.
    pub rt: tokio::runtime::Handle,
    /// How long the executor waits for hot-store room before giving up (transiently).
    pub room_timeout: Duration,
}

/// How long an executor waits for hot-store room by default before giving up (transiently).
pub const DEFAULT_ROOM_TIMEOUT: Duration = Duration::from_secs(3600);

impl Context {
    /// The context of agents in this process: the queue, the stores and the current runtime
    /// (call it from inside that runtime), waiting [`DEFAULT_ROOM_TIMEOUT`] for room.
    pub fn new(db: Arc<dyn TaskDb>, stores: Stores) -> Self {
        Self {
            db,
            stores,
            rt: tokio::runtime::Handle::current(),
            room_timeout: DEFAULT_ROOM_TIMEOUT,
        }
    }

    /// Runs a future to completion from a handler's blocking thread.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// A task being worked on.
pub struct Task<'a> {
    /// The lease (job, key, attempt, payload).
    pub lease: &'a Lease,
    /// Set by the agent when a heartbeat reports the job cancelled or failed.
    pub cancelled: &'a AtomicBool,
    /// Where heavy proving work runs.
    pub isolation: &'a Isolation,
}

impl Task<'_> {
    /// Does heavy proving work where the agent can stop it (see [`crate::worker`]).
    pub fn perform(&self, work: Work) -> Result<Done, TaskError> {
        self.check_cancelled()?;
        work.perform(self.isolation, self.cancelled)
    }

    /// Fails fast once the job is gone, so no work is wasted on it.
    pub fn check_cancelled(&self) -> Result<(), TaskError> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(TaskError::transient("task cancelled: its job was cancelled or failed"));
        }
        Ok(())
    }
}

/// A blob in one of the two stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blob {
    /// In the hot store (segments, succinct receipts).
    Hot(String),
    /// In the cold store (composite jobs' segment receipts, which wait for finalize and so
    /// must not count against the hot budget the executor's backpressure watches).
    Cold(String),
}

/// A successful attempt: the task's output and the blobs to delete once it is recorded.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Stored as the task's output in TaskDB.
    pub output: serde_json::Value,
    /// Inputs only this task consumed.
    pub cleanup: Vec<Blob>,
    /// Cycles this task proved (2^po2 per segment proof; 0 for other tasks), for the agent's
    /// throughput metric.
    pub proven_cycles: u64,
}
