//! Attestations: the seals `AttestationVerifier` accepts.
//!
//! An attestation is the attestor's ECDSA signature over the EIP-712 hash of
//! `Attestation(bytes32 claimDigest, address prover)` in the domain {name: "TiffinAttestation",
//! version: "1"}: it is made out to the prover who will submit it, and the market checks that
//! prover is the caller, so a seal copied from calldata or events is useless to anyone else.
//! In production the attestor is Tiffin's verifier service, which signs only after verifying the
//! receipt with RISC Zero; [`Attestor`] holds a local key and signs whatever it is asked to, so
//! it is for tests and dev chains.

use crate::bindings::Attestation;
use crate::claim::{claim_digest, journal_digest};
use crate::error::{MarketError, Result};
use alloy::primitives::{Address, B256, Bytes};
use alloy::signers::{SignerSync, local::PrivateKeySigner};
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};

/// The attestation domain: no chain id or contract, a valid receipt is valid everywhere.
pub fn attestation_domain() -> Eip712Domain {
    eip712_domain! { name: "TiffinAttestation", version: "1", }
}

/// The hash the attestor signs for a claim digest proven for `prover`
/// (`AttestationVerifier.attestationHash`).
pub fn attestation_hash(claim: B256, prover: Address) -> B256 {
    Attestation { claimDigest: claim, prover }.eip712_signing_hash(&attestation_domain())
}

/// A local attestor key.
#[derive(Debug, Clone)]
pub struct Attestor {
    signer: PrivateKeySigner,
}

impl Attestor {
    pub fn new(signer: PrivateKeySigner) -> Self {
        Self { signer }
    }

    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// A seal for one claim digest, usable by `prover` only.
    pub fn attest_claim(&self, claim: B256, prover: Address) -> Result<Bytes> {
        let signature = self
            .signer
            .sign_hash_sync(&attestation_hash(claim, prover))
            .map_err(|e| MarketError::Signing(e.to_string()))?;
        Ok(Bytes::from(signature.as_bytes().to_vec()))
    }

    /// A seal for `ProofMarket.fulfill` sent by `prover`: the claim that `image_id` produced
    /// `journal`.
    pub fn attest_journal(&self, image_id: B256, journal: &[u8], prover: Address) -> Result<Bytes> {
        self.attest_claim(claim_digest(image_id, journal_digest(journal)), prover)
    }

    /// A seal for `ProofMarket.submitRoot` sent by `prover`: the claim that the set-builder
    /// guest `set_builder_image_id` committed exactly the 32 bytes of `root` as its journal.
    pub fn attest_root(
        &self,
        set_builder_image_id: B256,
        root: B256,
        prover: Address,
    ) -> Result<Bytes> {
        self.attest_journal(set_builder_image_id, root.as_slice(), prover)
    }
}
