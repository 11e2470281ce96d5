//! Turning the root of the recursion tree (or the list of segment receipts) into the final,
//! verified [`Receipt`] users download.

use risc0_zkvm::{
    CompositeReceipt, CompositeReceiptVerifierParameters, Digest, InnerAssumptionReceipt,
    InnerReceipt, MaybePruned, Receipt, ReceiptClaim, SegmentReceipt, SuccinctReceipt,
    VerifierContext, sha::Digestible,
};
use serde::{Deserialize, Serialize};

use crate::{ImageId, ZkvmError};

/// Which proof a session asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// One constant-size receipt: every segment lifted and joined (the Bonsai default).
    #[default]
    Succinct,
    /// The verified segment receipts themselves, no recursion: a fraction of the work on CPU
    /// clusters, at the price of a receipt that grows with the segment count.
    Composite,
}

/// Wraps the joined root receipt with the journal and verifies it against `image_id`.
pub fn finalize(
    root: SuccinctReceipt<ReceiptClaim>,
    journal: Vec<u8>,
    image_id: ImageId,
) -> Result<Receipt, ZkvmError> {
    let receipt = Receipt::new(InnerReceipt::Succinct(root), journal);
    verify(&receipt, image_id)?;
    Ok(receipt)
}

/// Assembles segment receipts (in segment order) into a composite receipt and verifies it.
/// `assumptions` are the receipts of the claims the guest verified, in the order of
/// [`crate::Execution::assumptions_used`]; a composite receipt carries them along.
pub fn finalize_composite(
    segments: Vec<SegmentReceipt>,
    assumptions: Vec<Receipt>,
    journal: Vec<u8>,
    image_id: ImageId,
) -> Result<Receipt, ZkvmError> {
    let inner = composite(segments, assumptions.into_iter().map(|r| r.inner.into()).collect())?;
    let receipt = Receipt::new(InnerReceipt::Composite(inner), journal);
    verify(&receipt, image_id)?;
    Ok(receipt)
}

/// risc0 marks `CompositeReceipt` non-exhaustive and offers no constructor outside its own
/// prover, so we build it through its serde form (same fields, same order).
fn composite(
    segments: Vec<SegmentReceipt>,
    assumption_receipts: Vec<InnerAssumptionReceipt>,
) -> Result<CompositeReceipt, ZkvmError> {
    #[derive(Serialize)]
    struct Parts {
        segments: Vec<SegmentReceipt>,
        assumption_receipts: Vec<InnerAssumptionReceipt>,
        verifier_parameters: Digest,
    }
    let parts = Parts {
        segments,
        assumption_receipts,
        verifier_parameters: CompositeReceiptVerifierParameters::default().digest(),
    };
    crate::decode("composite receipt", &crate::encode(&parts))
}

/// The context every verification here runs with: risc0's defaults with dev mode off, so a
/// fake receipt is refused whatever the process's environment. risc0's own default turns dev
/// mode on when `RISC0_DEV_MODE` is set, and a fake receipt then passes for any claim: an
/// operator who exported it for fast tests would have a verifier service sign anything
/// (finding 8 of the market security review).
fn context() -> VerifierContext {
    VerifierContext::default().with_dev_mode(false)
}

/// Verifies that a receipt's seal proves its claim and that its journal is the claim's,
/// whatever the program (composition checks the program when the guest names it). Fake
/// (dev-mode) receipts are refused whatever `RISC0_DEV_MODE` says.
pub fn verify_integrity(receipt: &Receipt) -> Result<(), ZkvmError> {
    receipt
        .verify_integrity_with_context(&context())
        .map_err(|e| ZkvmError::VerificationFailed(e.to_string()))
}

/// Verifies a receipt against an image id, telling a wrong program apart from a bad proof.
/// Fake (dev-mode) receipts are refused whatever `RISC0_DEV_MODE` says.
pub fn verify(receipt: &Receipt, image_id: ImageId) -> Result<(), ZkvmError> {
    if let Ok(claim) = receipt.claim()
        && let MaybePruned::Value(claim) = claim
        && claim.pre.digest() != image_id.0
    {
        return Err(ZkvmError::ImageIdMismatch {
            expected: image_id.to_hex(),
            actual: hex::encode(claim.pre.digest().as_bytes()),
        });
    }
    receipt
        .verify_with_context(&context(), image_id.0)
        .map_err(|e| ZkvmError::VerificationFailed(e.to_string()))
}
