//! The broker's configuration file, `broker.toml` (`tiffin broker --config broker.toml`): three
//! sections, `[market]`, `[prover]` and `[batcher]`, with the Boundless broker's keys and
//! meanings. Every key is optional (a missing one takes its default), unknown keys and bad
//! values are refused naming the key as `section.key`, and [`ConfigWatcher`] re-reads the file
//! when it changes. `deploy/broker-template.toml` lists every key with its default, and the
//! Configuration section of docs/broker.md explains each.
//!
//! Amounts are strings with a unit: native ones `"0.00001 ETH"`, `"10 gwei"`, `"1000 wei"` (a
//! bare number is ETH), collateral ones `"5 TFC"` (a bare number is whole tokens); they are read
//! by [`tiffin_market::amount`] and held in wei or the token's base units.

mod amounts;
mod batcher;
mod check;
mod error;
mod market;
mod prover;
mod watch;

#[cfg(test)]
mod tests;

pub use batcher::BatcherConfig;
pub use error::ConfigError;
pub use market::{MarketConfig, OrderCommitmentPriority, OrderPricingPriority};
pub use prover::{ProverConfig, ReceiptKind};
pub use watch::ConfigWatcher;

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where `tiffin broker` looks for its configuration unless `--config` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "broker.toml";

/// The whole of `broker.toml`; [`Default`] is the documented defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// `[market]`: what to bid on and at what price.
    pub market: MarketConfig,
    /// `[prover]`: talking to the cluster.
    pub prover: ProverConfig,
    /// `[batcher]`: batching and submitting fulfilments.
    pub batcher: BatcherConfig,
}

impl BrokerConfig {
    /// Reads a configuration from TOML text and validates it.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::parse(text, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::from_toml_str(&text)
    }

    /// Checks what toml cannot: ranges and the order of thresholds. The first refusal names its
    /// key as `section.key`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.market.validate()?;
        self.prover.validate()?;
        self.batcher.validate()
    }

    /// The configuration as TOML that [`BrokerConfig::from_toml_str`] reads back to an equal
    /// one (amounts as `"0.00001 ETH"` and `"10 TFC"`; unset options left out).
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        Ok(toml::to_string(self)?)
    }
}
