//! The chain flags every `tiffin market` command shares: RPC URL, deployment, key.

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context as _, Result};
use clap::Args;
use tiffin_market::{Deployment, MarketClient};

#[derive(Args, Clone)]
pub struct ChainArgs {
    /// The chain's JSON-RPC endpoint.
    #[arg(long, env = "RPC_URL", global = true)]
    rpc_url: Option<String>,
    /// The key that signs transactions (hex). Prefer --private-key-file: a flag shows in
    /// `ps`, and the environment is readable by anything the process runs.
    #[arg(long, env = "PRIVATE_KEY", global = true, hide_env_values = true)]
    private_key: Option<String>,
    /// A file holding the signing key (mode 0600; wins over --private-key / PRIVATE_KEY).
    #[arg(long, env = "PRIVATE_KEY_FILE", global = true)]
    private_key_file: Option<std::path::PathBuf>,
    /// The ProofMarket contract.
    #[arg(long, env = "TIFFIN_MARKET_ADDRESS", global = true)]
    market: Option<Address>,
    /// The collateral token.
    #[arg(long, env = "TIFFIN_COLLATERAL_TOKEN_ADDRESS", global = true)]
    collateral_token: Option<Address>,
    /// The market's verifier contract.
    #[arg(long, env = "TIFFIN_VERIFIER_ADDRESS", global = true)]
    verifier_address: Option<Address>,
}

impl ChainArgs {
    pub(super) fn rpc_url(&self) -> Result<&str> {
        self.rpc_url.as_deref().context("no RPC URL: set RPC_URL or --rpc-url")
    }

    pub(super) fn signer(&self) -> Result<PrivateKeySigner> {
        let key = crate::secret::from_file_or(
            self.private_key_file.as_deref(),
            self.private_key.as_deref(),
        )?
        .context("no key: set --private-key-file, PRIVATE_KEY_FILE or PRIVATE_KEY")?;
        key.trim().parse().context("the private key is not a 32-byte hex key")
    }

    pub(super) fn deployment(&self) -> Result<Deployment> {
        let need = |a: Option<Address>, name: &str| {
            a.with_context(|| format!("no {name} address: source tiffin-chain/env or pass it"))
        };
        Ok(Deployment {
            market: need(self.market, "market (TIFFIN_MARKET_ADDRESS)")?,
            collateral_token: need(
                self.collateral_token,
                "token (TIFFIN_COLLATERAL_TOKEN_ADDRESS)",
            )?,
            verifier: need(self.verifier_address, "verifier (TIFFIN_VERIFIER_ADDRESS)")?,
        })
    }

    /// Whether a chain and a key are given (a command may then show on-chain state).
    pub(crate) fn has_key(&self) -> bool {
        self.rpc_url.is_some() && self.has_signer() && self.market.is_some()
    }

    pub(super) fn has_signer(&self) -> bool {
        self.private_key.is_some() || self.private_key_file.is_some()
    }

    /// A client for PRIVATE_KEY's account.
    pub(crate) async fn client(&self) -> Result<MarketClient> {
        let client =
            MarketClient::connect(self.rpc_url()?, self.signer()?, self.deployment()?).await?;
        Ok(client)
    }

    /// A client for reading: PRIVATE_KEY's account when set, else a throwaway key.
    pub(super) async fn reader(&self) -> Result<MarketClient> {
        let signer = if self.has_signer() { self.signer()? } else { PrivateKeySigner::random() };
        Ok(MarketClient::connect(self.rpc_url()?, signer, self.deployment()?).await?)
    }
}
