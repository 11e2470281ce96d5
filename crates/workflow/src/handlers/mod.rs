//! One module per task kind. Handlers are synchronous (proving is CPU-bound and risc0 is
//! blocking); the agent runs them on blocking threads and they reach the async stores and
//! TaskDB through [`Context::block_on`].
//!
//! Every handler is idempotent: outputs go to keys derived from (job, task key), so a retried
//! or duplicated attempt overwrites the same blob; inputs are deleted only after the consuming
//! task is done (the agent runs [`Outcome::cleanup`] after a successful `complete`).

mod context;
mod execute;
mod finalize;
mod join;
mod prove;
mod resolve;
mod snark;

use crate::TaskError;
use crate::spec::TaskPayload;

pub use context::{Blob, Context, DEFAULT_ROOM_TIMEOUT, Outcome, Task};

/// Runs the handler for a claimed task.
pub fn run(ctx: &Context, task: &Task<'_>) -> Result<Outcome, TaskError> {
    let payload: TaskPayload = serde_json::from_value(task.lease.payload.clone())
        .map_err(|e| TaskError::permanent(format!("TIFFIN-WORKFLOW-001 bad task payload: {e}")))?;
    task.check_cancelled()?;
    match payload {
        TaskPayload::Execute(spec) => execute::run(ctx, task, &spec),
        TaskPayload::Prove { segment, lift } => prove::run(ctx, task, segment, lift),
        TaskPayload::Join { left, right } => join::run(ctx, task, &left, &right),
        TaskPayload::Resolve { root, assumptions } => resolve::run(ctx, task, &root, &assumptions),
        TaskPayload::Finalize { parts, image_id, receipt_kind, assumptions } => {
            finalize::run(ctx, task, &parts, &image_id, receipt_kind, &assumptions)
        }
        TaskPayload::Snark { session } => snark::run(ctx, task, &session),
    }
}
