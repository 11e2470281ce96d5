//! Tiffin's proof market: bindings to the market contracts (`contracts/`), a typed client, the
//! claim digests and Merkle batches that fulfilments are proven with, attestation signing, and a
//! local dev chain (anvil) for tests and `scripts/chain-up`. docs/market.md explains the market.

pub mod amount;
pub mod attestation;
pub mod bindings;
pub mod claim;
pub mod client;
pub mod deployment;
pub mod devchain;
pub mod error;
pub mod merkle;
pub mod request;
mod revert;
pub mod transaction;

pub use attestation::Attestor;
pub use bindings::{Fulfillment, Input, Offer, Predicate, ProofRequest, Requirements};
pub use client::MarketClient;
pub use deployment::Deployment;
pub use devchain::DevChain;
pub use error::{MarketError, Result};
pub use request::RequestStatus;
