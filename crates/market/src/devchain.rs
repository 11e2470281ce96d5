//! A throwaway local chain: anvil (from the pinned npm package) with the market deployed.
//!
//! Each [`DevChain`] runs its own anvil on a free loopback port and stops it when dropped. Dev
//! keys come from anvil's standard test mnemonic: key 0 deploys (and mints collateral), key 1 is
//! the attestor, keys 2.. are free for requestors and provers.

use crate::attestation::Attestor;
use crate::client::MarketClient;
use crate::deployment::Deployment;
use crate::error::{MarketError, Result};
use crate::transaction::{DEFAULT_TX_TIMEOUT, signing_provider};
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use std::path::{Path, PathBuf};

pub const DEPLOYER_KEY: usize = 0;
pub const ATTESTOR_KEY: usize = 1;

/// Where `scripts/setup` (npm ci) puts anvil, unless `TIFFIN_ANVIL` names another binary: under
/// `TIFFIN_ROOT` (set by `scripts/env.sh`), else under the checkout this was compiled in (a
/// build shared by two checkouts through one target dir may name the other one).
pub fn anvil_path() -> Result<PathBuf> {
    let root = std::env::var_os("TIFFIN_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    let path = match std::env::var_os("TIFFIN_ANVIL") {
        Some(path) => PathBuf::from(path),
        None => root.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"),
    };
    if path.is_file() { Ok(path) } else { Err(MarketError::AnvilMissing(path)) }
}

/// A running anvil with the market deployed.
#[derive(Debug)]
pub struct DevChain {
    anvil: AnvilInstance,
    deployment: Deployment,
    rpc: DynProvider,
}

impl DevChain {
    /// Starts anvil and deploys the market; `set_builder_image_id` is the image whose journal is
    /// a batch root.
    pub async fn start(set_builder_image_id: B256) -> Result<Self> {
        let anvil = Anvil::at(anvil_path()?)
            .host("127.0.0.1")
            .try_spawn()
            .map_err(|e| MarketError::AnvilStart(e.to_string()))?;
        let url = anvil.endpoint();
        let rpc = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url.parse().map_err(|e| MarketError::Rpc(format!("{url}: {e}")))?)
            .erased();
        let deployer = signing_provider(&url, signer(&anvil, DEPLOYER_KEY)?)?;
        let attestor = signer(&anvil, ATTESTOR_KEY)?.address();
        let deployment =
            Deployment::deploy(&deployer, attestor, set_builder_image_id, DEFAULT_TX_TIMEOUT)
                .await?;
        tracing::info!(%url, "dev chain up");
        Ok(Self { anvil, deployment, rpc })
    }

    /// The anvil process's id (for tests that take the chain away).
    pub fn node_pid(&self) -> u32 {
        self.anvil.child().id()
    }

    pub fn rpc_url(&self) -> String {
        self.anvil.endpoint()
    }

    pub fn deployment(&self) -> Deployment {
        self.deployment
    }

    pub fn signer(&self, index: usize) -> Result<PrivateKeySigner> {
        signer(&self.anvil, index)
    }

    pub fn address(&self, index: usize) -> Address {
        self.anvil.addresses()[index]
    }

    pub fn attestor(&self) -> Result<Attestor> {
        Ok(Attestor::new(self.signer(ATTESTOR_KEY)?))
    }

    /// A client for dev key `index` (one per key: see [`MarketClient`]).
    pub async fn client(&self, index: usize) -> Result<MarketClient> {
        MarketClient::connect(&self.rpc_url(), self.signer(index)?, self.deployment).await
    }

    /// An unsigned provider for reads and anvil's own methods.
    pub fn rpc(&self) -> &DynProvider {
        &self.rpc
    }

    /// The timestamp of the latest block.
    pub async fn now(&self) -> Result<u64> {
        let block = self.rpc.get_block_number().await.map_err(rpc_error)?;
        let block = self.rpc.get_block_by_number(block.into()).await.map_err(rpc_error)?;
        Ok(block.ok_or_else(|| MarketError::Rpc("latest block missing".into()))?.header.timestamp)
    }

    /// Makes the next block (the next transaction, with automine) carry timestamp `t`.
    pub async fn set_next_block_timestamp(&self, t: u64) -> Result<()> {
        self.rpc
            .raw_request::<_, ()>("evm_setNextBlockTimestamp".into(), (t,))
            .await
            .map_err(rpc_error)
    }

    /// Mines an empty block at timestamp `t`.
    pub async fn mine_at(&self, t: u64) -> Result<()> {
        self.rpc
            .raw_request::<_, String>("evm_mine".into(), (t,))
            .await
            .map_err(rpc_error)
            .map(drop)
    }

    /// Mines an empty block at the chain's own clock and returns its timestamp: the latest
    /// block's timestamp lags the clock when nothing was mined for a while.
    pub async fn mine(&self) -> Result<u64> {
        self.rpc.raw_request::<_, String>("evm_mine".into(), ()).await.map_err(rpc_error)?;
        self.now().await
    }

    /// Turns mining of each transaction as it arrives on or off (off: transactions wait in the
    /// mempool until [`DevChain::mine_at`]).
    pub async fn set_automine(&self, on: bool) -> Result<()> {
        self.rpc.raw_request::<_, ()>("evm_setAutomine".into(), (on,)).await.map_err(rpc_error)
    }

    /// The chain's native balance of `account` (outside the market).
    pub async fn native_balance(&self, account: Address) -> Result<alloy::primitives::U256> {
        self.rpc.get_balance(account).await.map_err(rpc_error)
    }
}

fn signer(anvil: &AnvilInstance, index: usize) -> Result<PrivateKeySigner> {
    let key = anvil
        .keys()
        .get(index)
        .ok_or_else(|| MarketError::AnvilStart(format!("anvil has no dev key {index}")))?;
    Ok(PrivateKeySigner::from(key.clone()))
}

fn rpc_error(e: impl std::fmt::Display) -> MarketError {
    MarketError::Rpc(e.to_string())
}
