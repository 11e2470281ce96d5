//! Deploying the market: verifier, collateral token, market.

use crate::bindings::{AttestationVerifier, CollateralToken, ProofMarket};
use crate::error::{MarketError, Result};
use crate::transaction::send;
use alloy::primitives::{Address, B256};
use alloy::providers::DynProvider;
use std::time::Duration;

/// Where the market's contracts live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    pub market: Address,
    pub collateral_token: Address,
    pub verifier: Address,
}

impl Deployment {
    /// Deploys an `AttestationVerifier` trusting `attestor`, a `CollateralToken` minted by the
    /// deployer, and a `ProofMarket` using both, with `set_builder_image_id` for batch roots.
    pub async fn deploy(
        deployer: &DynProvider,
        attestor: Address,
        set_builder_image_id: B256,
        timeout: Duration,
    ) -> Result<Self> {
        let verifier = AttestationVerifier::deploy_builder(deployer, attestor);
        let verifier =
            created("deploy verifier", send("deploy verifier", verifier, timeout).await?)?;
        let token = CollateralToken::deploy_builder(
            deployer,
            "Tiffin Collateral".to_string(),
            "TFC".to_string(),
        );
        let token = created("deploy token", send("deploy token", token, timeout).await?)?;
        let market = ProofMarket::deploy_builder(deployer, verifier, token, set_builder_image_id);
        let market = created("deploy market", send("deploy market", market, timeout).await?)?;
        tracing::info!(%market, %token, %verifier, "market deployed");
        Ok(Self { market, collateral_token: token, verifier })
    }
}

fn created(what: &str, receipt: alloy::rpc::types::TransactionReceipt) -> Result<Address> {
    receipt
        .contract_address
        .ok_or_else(|| MarketError::Deploy(format!("{what}: no contract address")))
}
