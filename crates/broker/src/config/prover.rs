//! `[prover]`: how the broker talks to the Tiffin cluster (through the Bonsai API), retries,
//! which guests it builds batches with, and which receipts it asks for.

use super::{check, error::ConfigError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The `[prover]` section of `broker.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProverConfig {
    /// Retries of a failed proof-status poll before the proof counts as failed.
    pub status_poll_retry_count: u32,
    /// Milliseconds between proof-status polls.
    pub status_poll_ms: u64,
    /// Retries of a failed request to the cluster's API.
    pub req_retry_count: u32,
    /// Milliseconds between retries of a failed API request.
    pub req_retry_sleep_ms: u64,
    /// Retries of a whole proof that failed.
    pub proof_retry_count: u32,
    /// Milliseconds between retries of a failed proof.
    pub proof_retry_sleep_ms: u64,
    /// The set-builder guest's ELF; `None`: the bundled one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_builder_guest_path: Option<PathBuf>,
    /// The assessor guest's ELF; `None`: the bundled one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessor_set_guest_path: Option<PathBuf>,
    /// Seconds between sweeps for locked requests whose deadline has passed.
    pub reaper_interval_secs: u64,
    /// Seconds past a request's deadline before the reaper marks it failed.
    pub reaper_grace_period_secs: u64,
    /// The receipts the cluster is asked for.
    pub receipt_kind: ReceiptKind,
    /// Proofs failing in a row before the broker stops locking (0: failures never stop it).
    /// A Tiffin extension, like the next key.
    pub breaker_max_consecutive_failures: u32,
    /// Seconds the broker stops locking after the last failure before one probe lock.
    pub breaker_cool_down_secs: u64,
}

/// The receipts the cluster is asked for (a Tiffin extension: the attestation verifier accepts
/// both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// One small receipt per proof: segments lifted and joined.
    #[default]
    Succinct,
    /// The segment receipts as proven: skips the lift/join recursion, larger to upload.
    Composite,
}

impl Default for ProverConfig {
    fn default() -> Self {
        Self {
            status_poll_retry_count: 3,
            status_poll_ms: 1_000,
            req_retry_count: 3,
            req_retry_sleep_ms: 500,
            proof_retry_count: 1,
            proof_retry_sleep_ms: 500,
            set_builder_guest_path: None,
            assessor_set_guest_path: None,
            reaper_interval_secs: 60,
            reaper_grace_period_secs: 10_800,
            receipt_kind: ReceiptKind::default(),
            breaker_max_consecutive_failures: 3,
            breaker_cool_down_secs: 120,
        }
    }
}

impl ProverConfig {
    /// Checks the values toml cannot: the poll interval must be positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::at_least("prover.status_poll_ms", self.status_poll_ms, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ask_for_succinct_receipts() {
        let prover = ProverConfig::default();
        assert_eq!(prover.receipt_kind, ReceiptKind::Succinct);
        prover.validate().unwrap();
        let zero = ProverConfig { status_poll_ms: 0, ..prover };
        assert_eq!(zero.validate().unwrap_err().key(), Some("prover.status_poll_ms"));
    }
}
