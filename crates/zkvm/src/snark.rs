//! The SNARK stage: `identity_p254` (a recursion step into a BN254-friendly hash) followed by
//! risc0's Groth16 "shrink-wrap". The second step runs risc0's gnark prover in Docker (or with
//! CUDA and rzup's artefacts); hosts without either must say so clearly rather than pretend.

use std::process::Command;

use risc0_zkvm::{
    Groth16Receipt, Groth16ReceiptVerifierParameters, ProverOpts, ReceiptClaim, SuccinctReceipt,
    get_prover_server, sha::Digestible,
};

use crate::ZkvmError;

/// Whether this host can run the Groth16 step, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Groth16Availability {
    /// The backend risc0 would use is present.
    Available,
    /// It is not; the string says what is missing.
    Unavailable(String),
}

/// Probes for the Groth16 backend without doing any proving, so a snark task can fail in
/// milliseconds instead of after minutes of `identity_p254`.
pub fn groth16_availability() -> Groth16Availability {
    if cfg!(feature = "cuda") {
        return Groth16Availability::Available;
    }
    match Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output() {
        Err(e) => Groth16Availability::Unavailable(format!("docker is not installed ({e})")),
        Ok(out) if !out.status.success() => Groth16Availability::Unavailable(
            "the docker client is installed but no Docker engine is running".into(),
        ),
        Ok(_) if !cfg!(target_arch = "x86_64") => {
            Groth16Availability::Unavailable("risc0's Groth16 prover image is x86-only".into())
        }
        Ok(_) => Groth16Availability::Available,
    }
}

/// The recursion step that re-proves a succinct receipt with a Poseidon hash over BN254's
/// scalar field; its seal is the input of [`shrink_wrap`].
pub fn identity_p254(
    receipt: &SuccinctReceipt<ReceiptClaim>,
) -> Result<SuccinctReceipt<ReceiptClaim>, ZkvmError> {
    get_prover_server(&ProverOpts::succinct())
        .and_then(|p| p.identity_p254(receipt))
        .map_err(|e| ZkvmError::prover("identity_p254", e))
}

/// Runs the Groth16 prover over an `identity_p254` receipt's seal.
pub fn shrink_wrap(
    claim: ReceiptClaim,
    p254: &SuccinctReceipt<ReceiptClaim>,
) -> Result<Groth16Receipt<ReceiptClaim>, ZkvmError> {
    if let Groth16Availability::Unavailable(why) = groth16_availability() {
        return Err(ZkvmError::SnarkUnavailable(why));
    }
    let seal = risc0_groth16::prove::shrink_wrap(&p254.get_seal_bytes())
        .map_err(|e| ZkvmError::prover("shrink_wrap", e))?;
    Ok(Groth16Receipt::new(
        seal.to_vec(),
        claim.into(),
        Groth16ReceiptVerifierParameters::default().digest(),
    ))
}

/// Converts a succinct receipt into a Groth16 one. Checks for the Groth16 backend first.
pub fn snark(
    receipt: &SuccinctReceipt<ReceiptClaim>,
) -> Result<Groth16Receipt<ReceiptClaim>, ZkvmError> {
    if let Groth16Availability::Unavailable(why) = groth16_availability() {
        return Err(ZkvmError::SnarkUnavailable(why));
    }
    let p254 = identity_p254(receipt)?;
    let claim = receipt
        .claim
        .as_value()
        .map_err(|e| ZkvmError::VerificationFailed(format!("pruned claim: {e}")))?
        .clone();
    shrink_wrap(claim, &p254)
}
