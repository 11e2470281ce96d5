//! The resolve task: discharges the assumptions of a composing guest's joined receipt with
//! the receipts of the claims it verified, one `resolve` per assumption, head of the list
//! first, leaving an unconditional succinct receipt for finalize.

use bytes::Bytes;
use serde_json::json;

use super::context::{Blob, Context, Outcome, Task};
use crate::worker::Work;
use crate::{TaskError, blobs};

pub fn run(
    ctx: &Context,
    task: &Task<'_>,
    root: &str,
    assumptions: &[String],
) -> Result<Outcome, TaskError> {
    let job = task.lease.job_id;
    let root_key = blobs::task_output(job, root);
    let root = ctx.block_on(ctx.stores.hot.get(&root_key))?.to_vec();
    let receipts = assumptions
        .iter()
        .map(|key| Ok(ctx.block_on(ctx.stores.cold.get(key))?.to_vec()))
        .collect::<Result<Vec<_>, TaskError>>()?;
    let out = task.perform(Work::Resolve { root, assumptions: receipts })?.bytes;
    let size = out.len();
    ctx.block_on(ctx.stores.hot.put(&blobs::task_output(job, &task.lease.key), Bytes::from(out)))?;
    Ok(Outcome {
        output: json!({ "bytes": size, "resolved": assumptions.len() }),
        cleanup: vec![Blob::Hot(root_key)],
        proven_cycles: 0,
    })
}
