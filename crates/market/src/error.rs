//! Errors of the market crate, each with a stable code `TIFFIN-MARKET-0xx`.

use alloy::primitives::TxHash;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong talking to the market contracts or running a dev chain.
#[derive(Debug, thiserror::Error, tiffin_codes::Coded)]
pub enum MarketError {
    #[error("TIFFIN-MARKET-001: anvil not found at {0} (run scripts/setup, or set TIFFIN_ANVIL)")]
    AnvilMissing(PathBuf),
    #[error("TIFFIN-MARKET-002: anvil did not start: {0}")]
    AnvilStart(String),
    #[error("TIFFIN-MARKET-003: RPC error: {0}")]
    Rpc(String),
    /// The contract refused the call; `name` is the Solidity custom error (e.g. `AlreadyLocked`).
    #[error("TIFFIN-MARKET-004: {action} reverted with {name}{detail}")]
    Reverted { action: &'static str, name: String, detail: String },
    #[error("TIFFIN-MARKET-005: {action}: transaction {tx} not mined within {timeout:?}")]
    TxTimeout { action: &'static str, tx: TxHash, timeout: Duration },
    #[error(
        "TIFFIN-MARKET-006: {action}: transaction {tx} was mined but reverted (gas used {gas_used})"
    )]
    TxFailed { action: &'static str, tx: TxHash, gas_used: u64 },
    #[error("TIFFIN-MARKET-007: signing failed: {0}")]
    Signing(String),
    #[error("TIFFIN-MARKET-008: a Merkle tree needs at least one leaf")]
    EmptyTree,
    #[error("TIFFIN-MARKET-009: leaf {index} is out of range for a tree of {leaves} leaves")]
    LeafOutOfRange { index: usize, leaves: usize },
    #[error("TIFFIN-MARKET-010: deployment failed: {0}")]
    Deploy(String),
    #[error("TIFFIN-MARKET-011: the market reported unknown request status {0}")]
    UnknownStatus(u8),
}

impl MarketError {
    /// The Solidity custom error's name when the contract refused the call.
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            Self::Reverted { name, .. } => Some(name),
            _ => None,
        }
    }
}

pub type Result<T, E = MarketError> = std::result::Result<T, E>;
