//! The prove task: one segment → a segment receipt, lifted to a succinct receipt for
//! succinct jobs. The proof runs as a [`Work`] (in a killable child process when isolated).

use bytes::Bytes;
use serde_json::json;

use super::context::{Blob, Context, Outcome, Task};
use crate::worker::Work;
use crate::{TaskError, blobs};

pub fn run(ctx: &Context, task: &Task<'_>, segment: u32, lift: bool) -> Result<Outcome, TaskError> {
    let job = task.lease.job_id;
    let input_key = blobs::segment(job, segment);
    let segment = ctx.block_on(ctx.stores.hot.get(&input_key))?.to_vec();
    let done = task.perform(Work::Prove { segment, lift })?;
    let out_key = blobs::task_output(job, &task.lease.key);
    let size = done.bytes.len();
    if lift {
        ctx.block_on(ctx.stores.hot.put(&out_key, Bytes::from(done.bytes)))?;
    } else {
        // Composite parts wait for finalize: keep them out of the budgeted hot store.
        ctx.block_on(ctx.stores.cold.put(&out_key, Bytes::from(done.bytes)))?;
    }
    let cleanup = vec![Blob::Hot(input_key)];
    Ok(Outcome { output: json!({ "bytes": size }), cleanup, proven_cycles: done.proven_cycles })
}
