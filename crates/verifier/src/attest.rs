//! Verifying receipts and signing what they prove (pure: no I/O, callers run it off the async
//! threads since verification takes CPU time).

use crate::error::VerifierError;
use alloy::primitives::{Address, B256, Bytes};
use tiffin_market::Attestor;
use tiffin_market::claim::{claim_digest, journal_digest};
use tiffin_zkvm::{ImageId, Receipt};

/// A verified claim and its seal for `ProofMarket.fulfill`, sent by `prover` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedClaim {
    pub image_id: B256,
    pub journal: Vec<u8>,
    pub claim_digest: B256,
    pub prover: Address,
    pub seal: Bytes,
}

/// A verified set-builder receipt's root and its seal for `ProofMarket.submitRoot`, sent by
/// `prover` only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedRoot {
    pub root: B256,
    pub claim_digest: B256,
    pub prover: Address,
    pub seal: Bytes,
}

/// Holds the attestor key and the set-builder image whose journals are batch roots.
#[derive(Debug, Clone)]
pub struct Verifier {
    attestor: Attestor,
    set_builder: ImageId,
}

impl Verifier {
    pub fn new(attestor: Attestor, set_builder: ImageId) -> Self {
        Self { attestor, set_builder }
    }

    pub fn attestor_address(&self) -> alloy::primitives::Address {
        self.attestor.address()
    }

    pub fn set_builder(&self) -> ImageId {
        self.set_builder
    }

    /// Verifies `receipt` (bincode, as the Bonsai API serves it; succinct or composite) as a
    /// successful, unconditional run of `image_id` and signs its claim for `prover`.
    pub fn attest_receipt(
        &self,
        receipt: &[u8],
        image_id: ImageId,
        prover: Address,
    ) -> Result<AttestedClaim, VerifierError> {
        let receipt = verified(receipt, image_id)?;
        let image = B256::from_slice(image_id.0.as_bytes());
        let claim = claim_digest(image, journal_digest(&receipt.journal.bytes));
        let seal = self.attestor.attest_claim(claim, prover).map_err(signing)?;
        Ok(AttestedClaim {
            image_id: image,
            journal: receipt.journal.bytes,
            claim_digest: claim,
            prover,
            seal,
        })
    }

    /// Verifies a receipt of the set-builder guest and signs, for `prover`, the claim that it
    /// committed its root: every leaf under that root was verified inside the guest, by
    /// composition.
    pub fn attest_root(
        &self,
        receipt: &[u8],
        prover: Address,
    ) -> Result<AttestedRoot, VerifierError> {
        let receipt = verified(receipt, self.set_builder)?;
        let journal = &receipt.journal.bytes;
        if journal.len() != 32 {
            return Err(VerifierError::NotARoot(journal.len()));
        }
        let image = B256::from_slice(self.set_builder.0.as_bytes());
        let claim = claim_digest(image, journal_digest(journal));
        let seal = self.attestor.attest_claim(claim, prover).map_err(signing)?;
        Ok(AttestedRoot { root: B256::from_slice(journal), claim_digest: claim, prover, seal })
    }
}

fn verified(bytes: &[u8], image_id: ImageId) -> Result<Receipt, VerifierError> {
    let receipt: Receipt = tiffin_zkvm::decode("receipt", bytes)
        .map_err(|e| VerifierError::NotAReceipt(e.to_string()))?;
    tiffin_zkvm::verify(&receipt, image_id).map_err(|e| VerifierError::Rejected(e.to_string()))?;
    Ok(receipt)
}

fn signing(e: tiffin_market::MarketError) -> VerifierError {
    VerifierError::Signing(e.to_string())
}
