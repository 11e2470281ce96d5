//! The configuration file mapped onto the pure policies' parameters: one place that knows
//! both, so the policies never depend on the file's format.

use crate::batching::BatchParams;
use crate::breaker::BreakerParams;
use crate::capacity::{CapacityParams, CommitmentPriority, PricingPriority};
use crate::cluster::ReceiptKind;
use crate::config::{
    BrokerConfig, OrderCommitmentPriority, OrderPricingPriority, ReceiptKind as ConfiguredKind,
};
use crate::pricing::PricingParams;

pub fn pricing(cfg: &BrokerConfig) -> PricingParams {
    let m = &cfg.market;
    PricingParams {
        min_mcycle_price: m.min_mcycle_price,
        min_mcycle_price_collateral_token: m.min_mcycle_price_collateral_token,
        max_mcycle_limit: m.max_mcycle_limit,
        min_mcycle_limit: m.min_mcycle_limit,
        priority_requestors: m.priority_requestor_addresses.clone(),
        allow_client_addresses: m.allow_client_addresses.clone(),
        deny_requestor_addresses: m.deny_requestor_addresses.clone().unwrap_or_default(),
        max_journal_bytes: m.max_journal_bytes,
        max_file_size: m.max_file_size,
        min_deadline: m.min_deadline,
        max_collateral: m.max_collateral,
        peak_prove_khz: m.peak_prove_khz,
        finish_overhead_secs: finish_overhead_secs(cfg),
        lockin_gas_estimate: m.lockin_gas_estimate,
        fulfill_gas_estimate: m.fulfill_gas_estimate,
        expected_probability_win_secondary_fulfillment: m
            .expected_probability_win_secondary_fulfillment,
    }
}

pub fn capacity(cfg: &BrokerConfig) -> CapacityParams {
    CapacityParams {
        max_concurrent_proofs: cfg.market.max_concurrent_proofs,
        peak_prove_khz: cfg.market.peak_prove_khz,
        block_deadline_buffer_secs: finish_overhead_secs(cfg),
    }
}

/// Seconds kept free after a proof for the fulfilment to land: `block_deadline_buffer_secs`
/// plus one `txn_timeout` for the transaction (an aggregation that would eat into the buffer
/// is stopped and the batch fulfilled order by order).
pub fn finish_overhead_secs(cfg: &BrokerConfig) -> u64 {
    cfg.batcher.block_deadline_buffer_secs.saturating_add(cfg.batcher.txn_timeout)
}

/// Cycles a set-builder proof is planned as: the guest's execution for a small batch (the
/// broker e2e's batch of two: 11 po2-14 segments, ~180 k cycles), rounded up to 2^18.
pub const AGGREGATION_CYCLES: u64 = 1 << 18;

/// Seconds an aggregation may add after an order's proof: a set-builder proof of
/// [`AGGREGATION_CYCLES`] at `khz`, when batches of two or more can form
/// (`max_concurrent_proofs` ≥ 2); 0 otherwise or without a speed.
pub fn aggregation_secs(cfg: &BrokerConfig, khz: Option<u64>) -> u64 {
    if cfg.market.max_concurrent_proofs < 2 {
        return 0;
    }
    crate::capacity::proving_secs(AGGREGATION_CYCLES, khz).unwrap_or(0)
}

/// The deadline an order's proving session carries (unix seconds): its expiry (the lock
/// deadline of a locked order) less `block_deadline_buffer_secs`, one `txn_timeout` and the
/// aggregation time ([`aggregation_secs`]). The cluster claims the session's tasks by it.
pub fn proof_due(cfg: &BrokerConfig, expiry: u64, khz: Option<u64>) -> u64 {
    expiry.saturating_sub(finish_overhead_secs(cfg)).saturating_sub(aggregation_secs(cfg, khz))
}

pub fn batch(cfg: &BrokerConfig) -> BatchParams {
    let b = &cfg.batcher;
    BatchParams {
        min_batch_size: b.min_batch_size,
        batch_max_time: b.batch_max_time,
        batch_max_journal_bytes: b.batch_max_journal_bytes,
        batch_max_fees: b.batch_max_fees,
        block_deadline_buffer_secs: b.block_deadline_buffer_secs,
        max_concurrent_proofs: cfg.market.max_concurrent_proofs,
    }
}

/// The circuit breaker's thresholds (read once, when the broker starts).
pub fn breaker(cfg: &BrokerConfig) -> BreakerParams {
    BreakerParams {
        max_consecutive_failures: cfg.prover.breaker_max_consecutive_failures,
        cool_down_secs: cfg.prover.breaker_cool_down_secs,
    }
}

pub fn commitment_priority(cfg: &BrokerConfig) -> CommitmentPriority {
    match cfg.market.order_commitment_priority {
        OrderCommitmentPriority::Random => CommitmentPriority::Random,
        OrderCommitmentPriority::ShortestExpiry => CommitmentPriority::ShortestExpiry,
        OrderCommitmentPriority::Price => CommitmentPriority::Price,
        OrderCommitmentPriority::CyclePrice => CommitmentPriority::CyclePrice,
        OrderCommitmentPriority::TightestDeadline => CommitmentPriority::TightestDeadline,
    }
}

pub fn pricing_priority(cfg: &BrokerConfig) -> PricingPriority {
    match cfg.market.order_pricing_priority {
        OrderPricingPriority::Random => PricingPriority::Random,
        OrderPricingPriority::ObservationTime => PricingPriority::ObservationTime,
        OrderPricingPriority::ShortestExpiry => PricingPriority::ShortestExpiry,
        OrderPricingPriority::Price => PricingPriority::Price,
        OrderPricingPriority::CyclePrice => PricingPriority::CyclePrice,
    }
}

pub fn receipt_kind(cfg: &BrokerConfig) -> ReceiptKind {
    match cfg.prover.receipt_kind {
        ConfiguredKind::Succinct => ReceiptKind::Succinct,
        ConfiguredKind::Composite => ReceiptKind::Composite,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_maps_onto_the_policies() {
        let cfg = BrokerConfig::from_toml_str(
            "[market]\nmax_concurrent_proofs = 3\ndeny_requestor_addresses = \
             [\"0x0000000000000000000000000000000000000001\"]\n\
             order_commitment_priority = \"tightest_deadline\"\n\
             order_pricing_priority = \"observation_time\"\n\
             [prover]\nreceipt_kind = \"composite\"\nbreaker_cool_down_secs = 30\n\
             [batcher]\nmin_batch_size = 2\n",
        )
        .unwrap();
        assert_eq!(pricing(&cfg).deny_requestor_addresses.len(), 1);
        assert_eq!(capacity(&cfg).max_concurrent_proofs, 3);
        assert_eq!(batch(&cfg).min_batch_size, 2);
        assert_eq!(batch(&cfg).max_concurrent_proofs, 3);
        assert_eq!(commitment_priority(&cfg), CommitmentPriority::TightestDeadline);
        assert_eq!(pricing_priority(&cfg), PricingPriority::ObservationTime);
        assert_eq!(receipt_kind(&cfg), ReceiptKind::Composite);
        assert_eq!(
            breaker(&cfg),
            BreakerParams { max_consecutive_failures: 3, cool_down_secs: 30 }
        );
        assert!(pricing(&BrokerConfig::default()).deny_requestor_addresses.is_empty());
    }

    #[test]
    fn a_proof_is_due_before_the_buffer_the_transaction_and_the_aggregation() {
        let cfg = |concurrent: u32| {
            let mut c = BrokerConfig::default();
            c.market.max_concurrent_proofs = concurrent;
            c.batcher.block_deadline_buffer_secs = 120;
            c.batcher.txn_timeout = 45;
            c
        };
        // 2^18 cycles at 100 kHz: 3 s (rounded up).
        let table = [
            ("one proof at a time: never aggregated", cfg(1), Some(100), 10_000 - 165),
            ("batches possible", cfg(4), Some(100), 10_000 - 165 - 3),
            ("no speed: no aggregation time known", cfg(4), None, 10_000 - 165),
            ("slow cluster", cfg(2), Some(10), 10_000 - 165 - 27),
        ];
        for (name, c, khz, want) in table {
            assert_eq!(proof_due(&c, 10_000, khz), want, "{name}");
        }
        assert_eq!(proof_due(&cfg(4), 100, Some(1)), 0, "never before the epoch");
    }
}
