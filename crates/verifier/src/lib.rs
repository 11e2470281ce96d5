//! The verifier service: the only holder of the attestor key. It signs the claim of a receipt
//! (for `ProofMarket.fulfill`) or the root a set-builder receipt commits (for
//! `ProofMarket.submitRoot`) only after verifying the receipt with RISC Zero's verifier, so the
//! chain's `AttestationVerifier` accepts exactly what this service has checked. docs/market.md
//! says what that trusts.

pub mod attest;
pub mod error;
pub mod secret;
pub mod service;

pub use attest::{AttestedClaim, AttestedRoot, Verifier};
pub use error::VerifierError;
pub use secret::{BearerToken, read_secret_file};
pub use service::{ServiceConfig, router, serve};
