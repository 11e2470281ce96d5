//! The proving steps of one job: prove+lift each segment, join pairs, resolve assumptions.
//!
//! Each function builds its own prover handle: risc0's `ProverServer` is `!Send` (an `Rc`),
//! while agents run tasks on arbitrary threads; constructing one is cheap next to proving.

use risc0_zkvm::{
    ProverOpts, ProverServer, ReceiptClaim, Segment, SegmentReceipt, SuccinctReceipt, Unknown,
    VerifierContext, get_prover_server,
};
use std::rc::Rc;

use crate::ZkvmError;

fn server(stage: &'static str) -> Result<Rc<dyn ProverServer>, ZkvmError> {
    get_prover_server(&ProverOpts::succinct()).map_err(|e| ZkvmError::prover(stage, e))
}

/// Proves one segment (the STARK over its execution trace). This alone is the *composite*
/// path; succinct receipts additionally [`lift`] it.
pub fn prove_segment(segment: &Segment) -> Result<SegmentReceipt, ZkvmError> {
    let receipt = server("prove_segment")?
        .prove_segment(&VerifierContext::default(), segment)
        .map_err(|e| ZkvmError::prover("prove_segment", e))?;
    Ok(receipt)
}

/// Lifts a segment receipt into a succinct receipt (the recursion leaf).
pub fn lift(receipt: &SegmentReceipt) -> Result<SuccinctReceipt<ReceiptClaim>, ZkvmError> {
    server("lift")?.lift(receipt).map_err(|e| ZkvmError::prover("lift", e))
}

/// [`prove_segment`] then [`lift`]: the prove task of a succinct job.
pub fn prove_and_lift(segment: &Segment) -> Result<SuccinctReceipt<ReceiptClaim>, ZkvmError> {
    lift(&prove_segment(segment)?)
}

/// Joins two succinct receipts of consecutive parts of one execution (`a` before `b`).
pub fn join(
    a: &SuccinctReceipt<ReceiptClaim>,
    b: &SuccinctReceipt<ReceiptClaim>,
) -> Result<SuccinctReceipt<ReceiptClaim>, ZkvmError> {
    server("join")?.join(a, b).map_err(|e| ZkvmError::prover("join", e))
}

/// The succinct form of a receipt given as an assumption, which [`resolve`] consumes.
pub fn assumption_of(receipt: &risc0_zkvm::Receipt) -> Result<SuccinctReceipt<Unknown>, ZkvmError> {
    let succinct = receipt.inner.succinct().map_err(|_| {
        ZkvmError::UnusableAssumption(
            "only succinct receipts can be resolved into a succinct proof; prove the assumption \
             with a succinct receipt (or ask for a composite one)"
                .into(),
        )
    })?;
    Ok(succinct.clone().into_unknown())
}

/// Removes one assumption from a conditional receipt by proving it with `assumption`.
pub fn resolve(
    conditional: &SuccinctReceipt<ReceiptClaim>,
    assumption: &SuccinctReceipt<Unknown>,
) -> Result<SuccinctReceipt<ReceiptClaim>, ZkvmError> {
    server("resolve")?.resolve(conditional, assumption).map_err(|e| ZkvmError::prover("resolve", e))
}
