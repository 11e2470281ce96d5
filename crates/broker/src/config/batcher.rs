//! `[batcher]`: when proven requests are gathered into a batch (one set-builder root) and how
//! the batch is submitted on-chain.

use super::{amounts, check, error::ConfigError};
use alloy::primitives::U256;
use serde::{Deserialize, Serialize};

/// The `[batcher]` section of `broker.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatcherConfig {
    /// Most seconds a batch stays open before it is submitted.
    pub batch_max_time: u64,
    /// Proofs that make a batch full enough to submit.
    pub min_batch_size: u32,
    /// Submit a batch once a request in it is within this many seconds of its deadline.
    pub block_deadline_buffer_secs: u64,
    /// Seconds to wait for a submitted transaction to be mined.
    pub txn_timeout: u64,
    /// Submit the batch root and the fulfilments in one transaction (else two).
    pub single_txn_fulfill: bool,
    /// Withdraw the payments to the broker's wallet when fulfilling.
    pub withdraw: bool,
    /// Milliseconds between checks of the open batch.
    pub batch_poll_time_ms: u64,
    /// Most journal bytes in one batch; a batch that would exceed it is submitted first.
    pub batch_max_journal_bytes: usize,
    /// Fees (wei) in one batch at which it is submitted; `None`: no such limit.
    #[serde(with = "amounts::native_opt", skip_serializing_if = "Option::is_none")]
    pub batch_max_fees: Option<U256>,
    /// Attempts at submitting a batch before its requests count as failed.
    pub max_submission_attempts: u32,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self {
            batch_max_time: 1_000,
            min_batch_size: 1,
            block_deadline_buffer_secs: 165,
            txn_timeout: 45,
            single_txn_fulfill: true,
            withdraw: false,
            batch_poll_time_ms: 1_000,
            batch_max_journal_bytes: 10_000,
            batch_max_fees: None,
            max_submission_attempts: 3,
        }
    }
}

impl BatcherConfig {
    /// Checks the values toml cannot: sizes, intervals and attempts must be positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::at_least("batcher.min_batch_size", self.min_batch_size.into(), 1)?;
        check::at_least("batcher.batch_poll_time_ms", self.batch_poll_time_ms, 1)?;
        check::at_least("batcher.txn_timeout", self.txn_timeout, 1)?;
        check::at_least("batcher.max_submission_attempts", self.max_submission_attempts.into(), 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zeroes_are_not() {
        BatcherConfig::default().validate().unwrap();
        let cases = [
            ("batcher.min_batch_size", BatcherConfig { min_batch_size: 0, ..Default::default() }),
            (
                "batcher.batch_poll_time_ms",
                BatcherConfig { batch_poll_time_ms: 0, ..Default::default() },
            ),
            ("batcher.txn_timeout", BatcherConfig { txn_timeout: 0, ..Default::default() }),
            (
                "batcher.max_submission_attempts",
                BatcherConfig { max_submission_attempts: 0, ..Default::default() },
            ),
        ];
        for (key, batcher) in cases {
            assert_eq!(batcher.validate().unwrap_err().key(), Some(key));
        }
    }
}
