//! The prove task: one segment → a segment receipt, lifted to a succinct receipt for
//! succinct jobs.

use bytes::Bytes;
use serde_json::json;
use tiffin_zkvm::{Segment, decode, encode, lift, prove_segment};

use super::{Blob, Context, Outcome, Task};
use crate::{TaskError, blobs};

pub fn run(
    ctx: &Context,
    task: &Task<'_>,
    segment: u32,
    do_lift: bool,
) -> Result<Outcome, TaskError> {
    let job = task.lease.job_id;
    let input_key = blobs::segment(job, segment);
    let bytes = ctx.block_on(ctx.stores.hot.get(&input_key))?;
    let seg: Segment = decode("segment", &bytes)?;
    drop(bytes);
    let receipt = prove_segment(&seg)?;
    let proven_cycles = 1u64 << seg.po2();
    drop(seg);
    let out_key = blobs::task_output(job, &task.lease.key);
    let size = if do_lift {
        task.check_cancelled()?;
        let out = encode(&lift(&receipt)?);
        let size = out.len();
        ctx.block_on(ctx.stores.hot.put(&out_key, Bytes::from(out)))?;
        size
    } else {
        // Composite parts wait for finalize: keep them out of the budgeted hot store.
        let out = encode(&receipt);
        let size = out.len();
        ctx.block_on(ctx.stores.cold.put(&out_key, Bytes::from(out)))?;
        size
    };
    let cleanup = vec![Blob::Hot(input_key)];
    Ok(Outcome { output: json!({ "bytes": size }), cleanup, proven_cycles })
}
