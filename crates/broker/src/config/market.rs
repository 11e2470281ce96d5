//! `[market]`: which requests the broker bids on, what it charges, how it watches the chain and
//! how much it commits to at once. The keys and their meanings are the Boundless broker's.

use super::{amounts, check, error::ConfigError};
use alloy::primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tiffin_market::amount::{format_collateral, format_native};

/// Wei in one ETH.
const ETH: u64 = 1_000_000_000_000_000_000;

/// The `[market]` section of `broker.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarketConfig {
    /// Least price per million cycles (wei) at which the broker locks a request.
    #[serde(with = "amounts::native")]
    pub min_mcycle_price: U256,
    /// Least price per million cycles, in collateral base units, at which the broker proves a
    /// request whose locker defaulted (the reward is part of the slashed collateral).
    #[serde(with = "amounts::collateral")]
    pub min_mcycle_price_collateral_token: U256,
    /// Requestors whose requests skip the cycle and input-size limits and are served first.
    pub priority_requestor_addresses: Vec<Address>,
    /// URLs or file paths of requestor lists whose members count as priority requestors.
    pub priority_requestor_lists: Vec<String>,
    /// The cluster's peak proving speed in kHz, to refuse requests that cannot be proven before
    /// their deadline; `None`: no such check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_prove_khz: Option<u64>,
    /// Most million cycles a request may take (priority requestors are exempt).
    pub max_mcycle_limit: u64,
    /// Fewest million cycles a request must take to be worth bidding on.
    pub min_mcycle_limit: u64,
    /// Largest journal, in bytes, the broker will deliver.
    pub max_journal_bytes: usize,
    /// Fewest seconds that must be left before a request's deadline to consider it.
    pub min_deadline: u64,
    /// Blocks searched back for open requests at startup.
    pub lookback_blocks: u64,
    /// Blocks per log query when reading market events (the chunk size).
    pub events_poll_blocks: u64,
    /// Milliseconds between polls for new market events.
    pub events_poll_ms: u64,
    /// Most collateral (base units) the broker locks on one request.
    #[serde(with = "amounts::collateral")]
    pub max_collateral: U256,
    /// Largest image or input, in bytes, the broker downloads.
    pub max_file_size: u64,
    /// Retries of a failed image or input download.
    pub max_fetch_retries: u32,
    /// Seconds one image or input download may take, retries included.
    pub fetch_timeout_secs: u64,
    /// URL prefixes the operator trusts beyond public http(s) addresses (a local mirror,
    /// `file:///srv/inputs/`); every other `file://` or internal URL in a request is refused.
    pub allowed_url_prefixes: Vec<String>,
    /// Where to fetch the assessor guest when it is not found locally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessor_default_image_url: Option<String>,
    /// Where to fetch the set-builder guest when it is not found locally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_builder_default_image_url: Option<String>,
    /// Most requests locked and being proven at once.
    pub max_concurrent_proofs: u32,
    /// Most requests being preflighted (executed to count cycles) at once.
    pub max_concurrent_preflights: u32,
    /// The order in which new requests are preflighted and priced.
    pub order_pricing_priority: OrderPricingPriority,
    /// The order in which priced requests are locked and proven.
    pub order_commitment_priority: OrderCommitmentPriority,
    /// Restarts of a failing critical broker task before the broker gives up.
    pub max_critical_task_retries: u32,
    /// When set, only these requestors' requests are considered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_client_addresses: Option<Vec<Address>>,
    /// These requestors' requests are ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_requestor_addresses: Option<Vec<Address>>,
    /// Wei per gas added to the estimated fees of lock transactions, to win lock races.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lockin_priority_gas: Option<u64>,
    /// Native balance (wei) below which the broker logs a warning.
    #[serde(with = "amounts::native_opt", skip_serializing_if = "Option::is_none")]
    pub balance_warn_threshold: Option<U256>,
    /// Native balance (wei) below which the broker logs an error.
    #[serde(with = "amounts::native_opt", skip_serializing_if = "Option::is_none")]
    pub balance_error_threshold: Option<U256>,
    /// Collateral balance (base units) below which the broker logs a warning.
    #[serde(with = "amounts::collateral_opt", skip_serializing_if = "Option::is_none")]
    pub collateral_balance_warn_threshold: Option<U256>,
    /// Collateral balance (base units) below which the broker logs an error.
    #[serde(with = "amounts::collateral_opt", skip_serializing_if = "Option::is_none")]
    pub collateral_balance_error_threshold: Option<U256>,
    /// Directory for downloaded images and inputs; `None`: no cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    /// Gas a lock transaction is priced at.
    pub lockin_gas_estimate: u64,
    /// Gas a fulfilment is priced at.
    pub fulfill_gas_estimate: u64,
    /// Gas a Groth16 verification is priced at, for requests that need one.
    pub groth16_verify_gas_estimate: u64,
    /// Chance, in percent, of winning the race to prove a request whose locker defaulted.
    pub expected_probability_win_secondary_fulfillment: u32,
}

/// The order in which new requests are preflighted and priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderPricingPriority {
    /// A random order.
    Random,
    /// First seen, first priced.
    ObservationTime,
    /// The request that expires soonest first.
    ShortestExpiry,
    /// The highest offered price first.
    Price,
    /// The highest price per cycle first (before the preflight: the highest offered price).
    #[default]
    CyclePrice,
}

/// The order in which priced requests are locked and proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderCommitmentPriority {
    /// A random order.
    #[default]
    Random,
    /// The request that expires soonest first.
    ShortestExpiry,
    /// The highest price first.
    Price,
    /// The highest price per cycle first.
    CyclePrice,
    /// The request with the least time to spare before its deadline first.
    TightestDeadline,
}

impl Default for MarketConfig {
    fn default() -> Self {
        Self {
            min_mcycle_price: U256::from(ETH / 100_000),
            min_mcycle_price_collateral_token: U256::from(ETH / 1_000),
            priority_requestor_addresses: Vec::new(),
            priority_requestor_lists: Vec::new(),
            peak_prove_khz: None,
            max_mcycle_limit: 8_000,
            min_mcycle_limit: 0,
            max_journal_bytes: 10_000,
            min_deadline: 195,
            lookback_blocks: 300,
            events_poll_blocks: 150,
            events_poll_ms: 3_000,
            max_collateral: U256::from(10 * ETH),
            max_file_size: 50_000_000,
            max_fetch_retries: 2,
            fetch_timeout_secs: 30,
            allowed_url_prefixes: Vec::new(),
            assessor_default_image_url: None,
            set_builder_default_image_url: None,
            max_concurrent_proofs: 1,
            max_concurrent_preflights: 8,
            order_pricing_priority: OrderPricingPriority::default(),
            order_commitment_priority: OrderCommitmentPriority::default(),
            max_critical_task_retries: 10,
            allow_client_addresses: None,
            deny_requestor_addresses: None,
            lockin_priority_gas: None,
            balance_warn_threshold: None,
            balance_error_threshold: None,
            collateral_balance_warn_threshold: None,
            collateral_balance_error_threshold: None,
            cache_dir: None,
            lockin_gas_estimate: 200_000,
            fulfill_gas_estimate: 420_000,
            groth16_verify_gas_estimate: 250_000,
            expected_probability_win_secondary_fulfillment: 50,
        }
    }
}

impl MarketConfig {
    /// Checks the values toml cannot: counts that must be positive, the percentage, the cycle
    /// range and the balance thresholds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::at_least("market.max_concurrent_proofs", self.max_concurrent_proofs.into(), 1)?;
        check::at_least(
            "market.max_concurrent_preflights",
            self.max_concurrent_preflights.into(),
            1,
        )?;
        check::at_least("market.events_poll_ms", self.events_poll_ms, 1)?;
        check::at_least("market.fetch_timeout_secs", self.fetch_timeout_secs, 1)?;
        check::at_least("market.events_poll_blocks", self.events_poll_blocks, 1)?;
        check::at_most(
            "market.expected_probability_win_secondary_fulfillment",
            self.expected_probability_win_secondary_fulfillment.into(),
            100,
        )?;
        if let Some(khz) = self.peak_prove_khz {
            check::at_least("market.peak_prove_khz", khz, 1)?;
        }
        if self.min_mcycle_limit > self.max_mcycle_limit {
            let reason = format!(
                "must not exceed market.max_mcycle_limit ({}), got {}",
                self.max_mcycle_limit, self.min_mcycle_limit
            );
            return Err(ConfigError::invalid("market.min_mcycle_limit", reason));
        }
        self.validate_thresholds()
    }

    /// A warning threshold must not be below its error threshold.
    fn validate_thresholds(&self) -> Result<(), ConfigError> {
        check::warn_not_below_error(
            ("market.balance_warn_threshold", self.balance_warn_threshold),
            ("market.balance_error_threshold", self.balance_error_threshold),
            format_native,
        )?;
        check::warn_not_below_error(
            ("market.collateral_balance_warn_threshold", self.collateral_balance_warn_threshold),
            ("market.collateral_balance_error_threshold", self.collateral_balance_error_threshold),
            format_collateral,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let market = MarketConfig::default();
        assert_eq!(format_native(market.min_mcycle_price), "0.00001 ETH");
        assert_eq!(format_collateral(market.min_mcycle_price_collateral_token), "0.001 TFC");
        assert_eq!(format_collateral(market.max_collateral), "10 TFC");
        // The seed's defaults.
        assert_eq!(market.order_pricing_priority, OrderPricingPriority::CyclePrice);
        assert_eq!(market.order_commitment_priority, OrderCommitmentPriority::Random);
        market.validate().unwrap();
    }

    #[test]
    fn thresholds_must_be_ordered() {
        let market = MarketConfig {
            balance_warn_threshold: Some(U256::from(1)),
            balance_error_threshold: Some(U256::from(2)),
            ..MarketConfig::default()
        };
        let err = market.validate().unwrap_err();
        assert_eq!(err.key(), Some("market.balance_warn_threshold"));
        assert!(err.to_string().contains("market.balance_error_threshold"), "{err}");

        let market = MarketConfig {
            collateral_balance_warn_threshold: Some(U256::from(1)),
            collateral_balance_error_threshold: Some(U256::from(2)),
            ..MarketConfig::default()
        };
        let err = market.validate().unwrap_err();
        assert_eq!(err.key(), Some("market.collateral_balance_warn_threshold"));

        let market = MarketConfig {
            balance_warn_threshold: Some(U256::from(2)),
            balance_error_threshold: Some(U256::from(2)),
            collateral_balance_error_threshold: Some(U256::from(5)),
            ..MarketConfig::default()
        };
        market.validate().unwrap();
    }
}
