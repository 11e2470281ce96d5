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
mod file;
mod market;
mod prover;
mod watch;

#[cfg(test)]
mod tests;

pub use batcher::BatcherConfig;
pub use error::ConfigError;
pub use file::BrokerConfig;
pub use market::{MarketConfig, OrderCommitmentPriority, OrderPricingPriority};
pub use prover::{ProverConfig, ReceiptKind};
pub use watch::ConfigWatcher;

/// Where `tiffin broker` looks for its configuration unless `--config` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "broker.toml";
