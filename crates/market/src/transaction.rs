//! Sending transactions safely: preflight, then send, then wait with a timeout.
//!
//! Every state-changing call is first run with `eth_call` on the pending block, so a refusal comes back as the
//! contract's named error and never costs a nonce. Providers use simple nonce management (the
//! nonce is read from the node for each transaction): a failed send leaves no gap that would
//! make the next transaction wait forever. One client per key: parallel sends from one key race.

use crate::error::{MarketError, Result};
use crate::revert::from_contract_error;
use alloy::contract::{CallBuilder, CallDecoder};
use alloy::eips::BlockId;
use alloy::network::EthereumWallet;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use std::time::Duration;

/// How long a transaction may stay pending before the caller is told (dev chains mine at once).
pub const DEFAULT_TX_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP provider that signs with `signer`.
pub fn signing_provider(rpc_url: &str, signer: PrivateKeySigner) -> Result<DynProvider> {
    let url =
        rpc_url.parse().map_err(|e| MarketError::Rpc(format!("bad RPC URL {rpc_url}: {e}")))?;
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::new(signer))
        .connect_http(url);
    Ok(provider.erased())
}

/// The gas limit sent for an estimate: 25 % and 20,000 gas of headroom.
pub fn gas_limit(estimate: u64) -> u64 {
    estimate.saturating_add(estimate / 4).saturating_add(20_000)
}

/// Preflights, sends and waits for `call`; a receipt is returned only for a successful
/// transaction. A timed-out transaction may still be mined later: read chain state to know.
pub async fn send<P, D>(
    action: &'static str,
    call: CallBuilder<P, D>,
    timeout: Duration,
) -> Result<TransactionReceipt>
where
    P: Provider,
    D: CallDecoder,
{
    // The pending block is the one the transaction lands in (its timestamp, on a dev chain).
    call.call().block(BlockId::pending()).await.map_err(|e| from_contract_error(action, e))?;
    // An estimate holds only for the state and timestamp it was run against: a lock estimated
    // before a request's bidding start runs out of gas when mined after it (the ramp costs
    // more). The limit carries headroom; unused gas is not charged.
    let call = call.block(BlockId::pending());
    let estimate = call.estimate_gas().await.map_err(|e| from_contract_error(action, e))?;
    let call = call.gas(gas_limit(estimate));
    let pending = call.send().await.map_err(|e| from_contract_error(action, e))?;
    let tx = *pending.tx_hash();
    tracing::debug!(action, %tx, "sent");
    let receipt = tokio::time::timeout(timeout, pending.get_receipt())
        .await
        .map_err(|_| MarketError::TxTimeout { action, tx, timeout })?
        .map_err(|e| MarketError::Rpc(format!("{action}: waiting for {tx}: {e}")))?;
    if !receipt.status() {
        // Name the refusal when the call also fails against the state the transaction met.
        if let Some(block) = receipt.block_number
            && let Err(e) = call.call().block(BlockId::number(block.saturating_sub(1))).await
        {
            tracing::warn!(action, %tx, gas = receipt.gas_used, "mined but reverted: {e}");
        }
        return Err(MarketError::TxFailed { action, tx, gas_used: receipt.gas_used });
    }
    tracing::debug!(action, %tx, gas = receipt.gas_used, "mined");
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::gas_limit;

    #[test]
    fn the_gas_limit_carries_headroom_and_never_overflows() {
        assert_eq!(gas_limit(100_000), 145_000);
        assert_eq!(gas_limit(u64::MAX), u64::MAX);
    }
}
