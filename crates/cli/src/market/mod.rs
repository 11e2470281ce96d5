//! `tiffin market …`: the proof market from the command line — deploy a dev market, manage
//! balances and collateral, submit requests (on-chain or signed off-chain), follow them, lock
//! and fulfil them, slash defaulted locks, refund or cancel unlocked requests, and run the verifier service. Like the rest of the
//! ecosystem it reads `RPC_URL` and `PRIVATE_KEY` from the environment (`scripts/chain-up`
//! writes them, with the contract addresses, to `tiffin-chain/env`).

mod account;
mod request;
mod verifier;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use tiffin_market::{Deployment, MarketClient};

#[derive(Args)]
pub struct MarketArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(subcommand)]
    command: MarketCommand,
}

/// Where the chain and the contracts are, and whose key signs.
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
    fn rpc_url(&self) -> Result<&str> {
        self.rpc_url.as_deref().context("no RPC URL: set RPC_URL or --rpc-url")
    }

    fn signer(&self) -> Result<PrivateKeySigner> {
        let key = crate::secret::from_file_or(
            self.private_key_file.as_deref(),
            self.private_key.as_deref(),
        )?
        .context("no key: set --private-key-file, PRIVATE_KEY_FILE or PRIVATE_KEY")?;
        key.trim().parse().context("the private key is not a 32-byte hex key")
    }

    fn deployment(&self) -> Result<Deployment> {
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

    fn has_signer(&self) -> bool {
        self.private_key.is_some() || self.private_key_file.is_some()
    }

    /// A client for PRIVATE_KEY's account.
    pub(crate) async fn client(&self) -> Result<MarketClient> {
        let client =
            MarketClient::connect(self.rpc_url()?, self.signer()?, self.deployment()?).await?;
        Ok(client)
    }

    /// A client for reading: PRIVATE_KEY's account when set, else a throwaway key.
    async fn reader(&self) -> Result<MarketClient> {
        let signer = if self.has_signer() { self.signer()? } else { PrivateKeySigner::random() };
        Ok(MarketClient::connect(self.rpc_url()?, signer, self.deployment()?).await?)
    }
}

#[derive(Subcommand)]
enum MarketCommand {
    /// Deploy the verifier, the collateral token and the market (dev chains); prints the
    /// addresses as `export` lines.
    Deploy(account::DeployArgs),
    /// Deposit native currency into your market balance (e.g. `0.01ether`).
    Deposit { amount: String },
    /// Withdraw native currency from your market balance.
    Withdraw { amount: String },
    /// Show an account's market balance (default: yours).
    Balance { address: Option<Address> },
    /// Move collateral tokens into the market (e.g. `100` tokens).
    DepositCollateral { amount: String },
    /// Move collateral tokens back out of the market.
    WithdrawCollateral { amount: String },
    /// Show an account's collateral in the market (default: yours).
    CollateralBalance { address: Option<Address> },
    /// Submit a proof request (on-chain, or signed off-chain with --offchain FILE).
    Submit(Box<request::SubmitArgs>),
    /// Show a request's status.
    Status { id: String },
    /// Wait until a request is fulfilled; print its journal and the seal the chain verified.
    Wait(request::WaitArgs),
    /// Lock a request as a prover (an on-chain request by id, or an off-chain one from its file).
    Lock(request::LockArgs),
    /// Fulfil a locked request with a receipt, sealed by a verifier service.
    Fulfill(request::FulfillArgs),
    /// Slash the locker of a request that was not fulfilled by its timeout.
    Slash { id: String },
    /// Take back the escrow of an on-chain request nobody locked before its lock deadline.
    Refund { id: String },
    /// Close one of your requests that nobody has locked: an on-chain one (its escrow comes
    /// back) or a signed off-chain one (its signature can no longer be used to lock it).
    Cancel { id: String },
    /// Run the verifier service: verify receipts, sign attestations (holds the attestor key).
    Verifier(verifier::VerifierArgs),
}

pub fn run(args: MarketArgs) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(dispatch(args.chain, args.command))
}

async fn dispatch(chain: ChainArgs, command: MarketCommand) -> Result<()> {
    use MarketCommand::*;
    match command {
        Deploy(args) => account::deploy(&chain, args).await,
        Deposit { amount } => account::deposit(&chain, &amount).await,
        Withdraw { amount } => account::withdraw(&chain, &amount).await,
        Balance { address } => account::balance(&chain, address).await,
        DepositCollateral { amount } => account::deposit_collateral(&chain, &amount).await,
        WithdrawCollateral { amount } => account::withdraw_collateral(&chain, &amount).await,
        CollateralBalance { address } => account::collateral_balance(&chain, address).await,
        Submit(args) => request::submit(&chain, *args).await,
        Status { id } => request::status(&chain, &id).await,
        Wait(args) => request::wait(&chain, args).await,
        Lock(args) => request::lock(&chain, args).await,
        Fulfill(args) => request::fulfill(&chain, args).await,
        Slash { id } => request::slash(&chain, &id).await,
        Refund { id } => request::refund(&chain, &id).await,
        Cancel { id } => request::cancel(&chain, &id).await,
        Verifier(args) => verifier::run(args).await,
    }
}
