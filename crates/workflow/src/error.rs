//! How a task failed, in the two classes the scheduler acts on.

use tiffin_taskdb::FailureKind;

/// A task's failure: permanent ones fail the job at once, transient ones are retried.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    /// Whether a retry could help.
    pub kind: FailureKind,
    /// What went wrong, with the underlying stable code.
    pub message: String,
}

impl TaskError {
    /// A failure no retry can fix (bad program, guest panic, corrupt input …).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { kind: FailureKind::Permanent, message: message.into() }
    }

    /// A failure a retry may fix (I/O, a lost store connection …).
    pub fn transient(message: impl Into<String>) -> Self {
        Self { kind: FailureKind::Transient, message: message.into() }
    }
}

impl From<tiffin_zkvm::ZkvmError> for TaskError {
    fn from(e: tiffin_zkvm::ZkvmError) -> Self {
        match e.is_permanent() {
            true => Self::permanent(e.to_string()),
            false => Self::transient(e.to_string()),
        }
    }
}

impl From<tiffin_storage::Error> for TaskError {
    fn from(e: tiffin_storage::Error) -> Self {
        // A missing blob is not fixed by waiting: its producer is done (its task finished), so
        // the blob was lost. Still transient: the attempt budget bounds it, and operators see it.
        match e.is_permanent() {
            true => Self::permanent(e.to_string()),
            false => Self::transient(e.to_string()),
        }
    }
}

impl From<tiffin_taskdb::Error> for TaskError {
    fn from(e: tiffin_taskdb::Error) -> Self {
        Self::transient(e.to_string())
    }
}
