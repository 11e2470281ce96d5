//! [`BrokerConfig`]: the whole file, read, validated and written back.

use serde::{Deserialize, Serialize};
use std::path::Path;

use super::batcher::BatcherConfig;
use super::error::ConfigError;
use super::market::MarketConfig;
use super::prover::ProverConfig;

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
