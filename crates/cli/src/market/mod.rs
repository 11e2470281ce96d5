//! `tiffin market …`: the proof market from the command line — deploy a dev market, manage
//! balances and collateral, submit requests (on-chain or signed off-chain), follow them, lock
//! and fulfil them, slash defaulted locks, refund or cancel unlocked requests, and run the verifier service. Like the rest of the
//! ecosystem it reads `RPC_URL` and `PRIVATE_KEY` from the environment (`scripts/chain-up`
//! writes them, with the contract addresses, to `tiffin-chain/env`).

mod account;
mod chain;
mod request;
mod verifier;

pub use chain::ChainArgs;

use alloy::primitives::Address;
use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct MarketArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(subcommand)]
    command: MarketCommand,
}

/// Where the chain and the contracts are, and whose key signs.
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
