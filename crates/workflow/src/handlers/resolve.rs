//! The resolve task: discharges the assumptions of a composing guest's joined receipt with
//! the receipts of the claims it verified, one `resolve` per assumption, head of the list
//! first, leaving an unconditional succinct receipt for finalize.

use bytes::Bytes;
use serde_json::json;
use tiffin_zkvm::{
    Receipt, SuccinctReceipt, assumption_of, decode, encode, resolve, types::ReceiptClaim,
};

use super::{Blob, Context, Outcome, Task};
use crate::{TaskError, blobs};

pub fn run(
    ctx: &Context,
    task: &Task<'_>,
    root: &str,
    assumptions: &[String],
) -> Result<Outcome, TaskError> {
    let job = task.lease.job_id;
    let root_key = blobs::task_output(job, root);
    let mut receipt: SuccinctReceipt<ReceiptClaim> =
        decode("succinct receipt", &ctx.block_on(ctx.stores.hot.get(&root_key))?)?;
    for key in assumptions {
        task.check_cancelled()?;
        let assumption: Receipt =
            decode("assumption receipt", &ctx.block_on(ctx.stores.cold.get(key))?)?;
        receipt = resolve(&receipt, &assumption_of(&assumption)?)?;
    }
    let out = encode(&receipt);
    let size = out.len();
    ctx.block_on(ctx.stores.hot.put(&blobs::task_output(job, &task.lease.key), Bytes::from(out)))?;
    Ok(Outcome {
        output: json!({ "bytes": size, "resolved": assumptions.len() }),
        cleanup: vec![Blob::Hot(root_key)],
        proven_cycles: 0,
    })
}
