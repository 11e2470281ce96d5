//! The join task: two succinct receipts of adjacent segment ranges → one.

use bytes::Bytes;
use serde_json::json;

use super::context::{Blob, Context, Outcome, Task};
use crate::worker::Work;
use crate::{TaskError, blobs};

pub fn run(ctx: &Context, task: &Task<'_>, left: &str, right: &str) -> Result<Outcome, TaskError> {
    let job = task.lease.job_id;
    let (lk, rk) = (blobs::task_output(job, left), blobs::task_output(job, right));
    let left = ctx.block_on(ctx.stores.hot.get(&lk))?.to_vec();
    let right = ctx.block_on(ctx.stores.hot.get(&rk))?.to_vec();
    let out = task.perform(Work::Join { left, right })?.bytes;
    let size = out.len();
    ctx.block_on(ctx.stores.hot.put(&blobs::task_output(job, &task.lease.key), Bytes::from(out)))?;
    let cleanup = vec![Blob::Hot(lk), Blob::Hot(rk)];
    Ok(Outcome { output: json!({ "bytes": size }), cleanup, proven_cycles: 0 })
}
