//! Deployment and the two balances every account has in the market.

use super::chain::ChainArgs;
use alloy::primitives::{Address, B256};
use anyhow::{Context as _, Result};
use clap::Args;
use tiffin_market::Deployment;
use tiffin_market::amount::{collateral, native, show_collateral, show_native};
use tiffin_market::transaction::{DEFAULT_TX_TIMEOUT, signing_provider};

#[derive(Args)]
pub struct DeployArgs {
    /// The address whose attestations the verifier accepts (the verifier service's key).
    #[arg(long, env = "TIFFIN_ATTESTOR_ADDRESS")]
    attestor: Address,
    /// The image whose journal is a batch root (default: the bundled set-builder guest).
    #[arg(long)]
    set_builder_image_id: Option<B256>,
}

pub async fn deploy(chain: &ChainArgs, args: DeployArgs) -> Result<()> {
    let deployer = signing_provider(chain.rpc_url()?, chain.signer()?)?;
    let set_builder = args
        .set_builder_image_id
        .unwrap_or_else(|| B256::from(tiffin_guests::SET_BUILDER.image_id_bytes()));
    let d = Deployment::deploy(&deployer, args.attestor, set_builder, DEFAULT_TX_TIMEOUT).await?;
    println!("export TIFFIN_MARKET_ADDRESS={}", d.market);
    println!("export TIFFIN_COLLATERAL_TOKEN_ADDRESS={}", d.collateral_token);
    println!("export TIFFIN_VERIFIER_ADDRESS={}", d.verifier);
    println!("export TIFFIN_SET_BUILDER_IMAGE_ID={set_builder}");
    Ok(())
}

pub async fn deposit(chain: &ChainArgs, amount: &str) -> Result<()> {
    let client = chain.client().await?;
    client.deposit(native(amount)?).await?;
    balance(chain, None).await
}

pub async fn withdraw(chain: &ChainArgs, amount: &str) -> Result<()> {
    let client = chain.client().await?;
    client.withdraw(native(amount)?).await?;
    balance(chain, None).await
}

pub async fn balance(chain: &ChainArgs, address: Option<Address>) -> Result<()> {
    let client = chain.reader().await?;
    let account = address.unwrap_or(client.address());
    println!("account: {account}");
    println!("balance: {}", show_native(client.balance_of(account).await?));
    Ok(())
}

pub async fn deposit_collateral(chain: &ChainArgs, amount: &str) -> Result<()> {
    let client = chain.client().await?;
    let amount = collateral(amount)?;
    let held = client.token_balance_of(client.address()).await?;
    anyhow::ensure!(
        held >= amount,
        "you hold {} outside the market, less than {}",
        show_collateral(held),
        show_collateral(amount)
    );
    client.deposit_collateral(amount).await.context("depositing collateral")?;
    collateral_balance(chain, None).await
}

pub async fn withdraw_collateral(chain: &ChainArgs, amount: &str) -> Result<()> {
    let client = chain.client().await?;
    client.withdraw_collateral(collateral(amount)?).await?;
    collateral_balance(chain, None).await
}

pub async fn collateral_balance(chain: &ChainArgs, address: Option<Address>) -> Result<()> {
    let client = chain.reader().await?;
    let account = address.unwrap_or(client.address());
    println!("account: {account}");
    println!("collateral: {}", show_collateral(client.collateral_balance_of(account).await?));
    println!(
        "collateral held outside: {}",
        show_collateral(client.token_balance_of(account).await?)
    );
    Ok(())
}
