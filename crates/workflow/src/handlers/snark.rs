//! The snark task: converts a succeeded session's succinct receipt into a Groth16 receipt
//! (`identity_p254` + shrink-wrap) and stores it as this job's receipt. Hosts without the
//! Groth16 backend fail the task at once with TIFFIN-ZKVM-009 (permanent), never pretend.

use bytes::Bytes;
use serde_json::json;
use tiffin_taskdb::JobId;
use tiffin_zkvm::types::{InnerReceipt, Receipt};
use tiffin_zkvm::{decode, encode};

use super::context::{Context, Outcome, Task};
use crate::{TaskError, blobs};

pub fn run(ctx: &Context, task: &Task<'_>, session: &str) -> Result<Outcome, TaskError> {
    let job = task.lease.job_id;
    let session: JobId = session.parse().map_err(|e| {
        TaskError::permanent(format!("TIFFIN-WORKFLOW-001 bad session id {session:?}: {e}"))
    })?;
    let bytes = ctx.block_on(ctx.stores.cold.get(&blobs::receipt(session)))?;
    let receipt: Receipt = decode("receipt", &bytes)?;
    let succinct = receipt.inner.succinct().map_err(|_| {
        TaskError::permanent(
            "TIFFIN-WORKFLOW-004 only succinct receipts can be converted to Groth16; prove the \
             session with a succinct receipt",
        )
    })?;
    let groth16 = tiffin_zkvm::snark(succinct)?;
    task.check_cancelled()?;
    let out = Receipt::new(InnerReceipt::Groth16(groth16), receipt.journal.bytes.clone());
    let encoded = encode(&out);
    let size = encoded.len();
    ctx.block_on(ctx.stores.cold.put(&blobs::receipt(job), Bytes::from(encoded)))?;
    Ok(Outcome { output: json!({ "receipt_bytes": size }), cleanup: Vec::new(), proven_cycles: 0 })
}
