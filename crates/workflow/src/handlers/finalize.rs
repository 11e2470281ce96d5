//! The finalize task: builds the final receipt with the journal, verifies it against the
//! image id, and writes it to the cold store. The job succeeds when this task is done.

use bytes::Bytes;
use serde_json::json;
use tiffin_zkvm::{
    ImageId, Receipt, ReceiptKind, SegmentReceipt, SuccinctReceipt, decode, encode, finalize,
    finalize_composite, types::ReceiptClaim,
};

use super::context::{Blob, Context, Outcome, Task};
use crate::spec::{EXECUTE_KEY, ExecuteOutput};
use crate::{TaskError, blobs};

pub fn run(
    ctx: &Context,
    task: &Task<'_>,
    parts: &[String],
    image_id: &str,
    kind: ReceiptKind,
    assumptions: &[String],
) -> Result<Outcome, TaskError> {
    let job = task.lease.job_id;
    let exec = ctx.block_on(ctx.db.task_output(job, EXECUTE_KEY))?.ok_or_else(|| {
        TaskError::transient("TIFFIN-WORKFLOW-002 execute output not recorded yet")
    })?;
    let exec: ExecuteOutput = serde_json::from_value(exec).map_err(|e| {
        TaskError::permanent(format!("TIFFIN-WORKFLOW-001 bad execute output: {e}"))
    })?;
    let journal = if exec.journal_hex.is_empty() {
        ctx.block_on(ctx.stores.cold.get(&blobs::journal(job)))?.to_vec()
    } else {
        // A job executed by an earlier version, which kept the journal in the output.
        hex::decode(&exec.journal_hex)
            .map_err(|e| TaskError::permanent(format!("TIFFIN-WORKFLOW-001 bad journal: {e}")))?
    };
    let image_id: ImageId = image_id.parse()?;
    let keys: Vec<String> = parts.iter().map(|p| blobs::task_output(job, p)).collect();
    let mut blobs_in = Vec::with_capacity(keys.len());
    for k in &keys {
        blobs_in.push(match kind {
            ReceiptKind::Succinct => ctx.block_on(ctx.stores.hot.get(k))?,
            ReceiptKind::Composite => ctx.block_on(ctx.stores.cold.get(k))?,
        });
    }
    let receipt = match kind {
        ReceiptKind::Succinct => {
            let [root] = blobs_in.as_slice() else {
                return Err(TaskError::permanent(
                    "TIFFIN-WORKFLOW-003 succinct finalize needs one root",
                ));
            };
            let root: SuccinctReceipt<ReceiptClaim> = decode("succinct receipt", root)?;
            finalize(root, journal, image_id)?
        }
        ReceiptKind::Composite => {
            let segs = blobs_in
                .iter()
                .map(|b| decode::<SegmentReceipt>("segment receipt", b))
                .collect::<Result<Vec<_>, _>>()?;
            let mut carried = Vec::with_capacity(assumptions.len());
            for key in assumptions {
                carried.push(decode::<Receipt>(
                    "assumption receipt",
                    &ctx.block_on(ctx.stores.cold.get(key))?,
                )?);
            }
            finalize_composite(segs, carried, journal, image_id)?
        }
    };
    let bytes = encode(&receipt);
    let size = bytes.len();
    ctx.block_on(ctx.stores.cold.put(&blobs::receipt(job), Bytes::from(bytes)))?;
    let cleanup = keys
        .into_iter()
        .map(|k| match kind {
            ReceiptKind::Succinct => Blob::Hot(k),
            ReceiptKind::Composite => Blob::Cold(k),
        })
        .collect();
    Ok(Outcome { output: json!({ "receipt_bytes": size }), cleanup, proven_cycles: 0 })
}
