//! Sending transactions safely: preflight, then send, then wait with a timeout.
//!
//! Every state-changing call is first run with `eth_call` on the pending block, so a refusal comes back as the
//! contract's named error and never costs a nonce. Providers use simple nonce management (the
//! nonce is read from the node for each transaction): a failed send leaves no gap that would
//! make the next transaction wait forever. One client per key: parallel sends from one key race.

use crate::error::{MarketError, Result};
use crate::revert::from_contract_error;
use alloy::consensus::Transaction as _;
use alloy::contract::{CallBuilder, CallDecoder};
use alloy::eips::BlockId;
use alloy::network::EthereumWallet;
use alloy::primitives::TxHash;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionReceipt;
use alloy::signers::local::PrivateKeySigner;
use std::time::{Duration, Instant};

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

/// How a transaction is sent and watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxPolicy {
    /// How long the transaction (with its replacements) may stay pending before the caller is
    /// told; it may still be mined later.
    pub timeout: Duration,
    /// Wei per gas added to both the node's estimated priority fee and fee cap (to win a race
    /// for the next block); `None`: the node's estimate as is.
    pub extra_priority_fee: Option<u128>,
    /// Resend with the same nonce and fees raised by [`bump`] each time the transaction stays
    /// pending this long; `None`: never.
    pub bump_every: Option<Duration>,
}

impl TxPolicy {
    /// Sent once at the node's fees, watched for `timeout`.
    pub fn timeout(timeout: Duration) -> Self {
        Self { timeout, extra_priority_fee: None, bump_every: None }
    }
}

/// EIP-1559 fees, in wei per gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    pub max_fee: u128,
    pub priority_fee: u128,
}

/// The fees of a replacement: both raised by an eighth, rounded up, and by at least 1 wei, so
/// nodes that want a 10 % raise take it.
pub fn bump(fees: Fees) -> Fees {
    let raise = |v: u128| v.saturating_add(v.div_ceil(8).max(1));
    Fees { max_fee: raise(fees.max_fee), priority_fee: raise(fees.priority_fee) }
}

/// The fees to start from: the node's estimate, plus `extra` on both fees when set.
pub fn initial_fees(node: Fees, extra: Option<u128>) -> Fees {
    let extra = extra.unwrap_or(0);
    Fees {
        max_fee: node.max_fee.saturating_add(extra),
        priority_fee: node.priority_fee.saturating_add(extra),
    }
}

/// Preflights, sends and waits for `call` once, at the node's fees; a receipt is returned only
/// for a successful transaction. A timed-out transaction may still be mined later: read chain
/// state to know.
pub async fn send<P, D>(
    action: &'static str,
    call: CallBuilder<P, D>,
    timeout: Duration,
) -> Result<TransactionReceipt>
where
    P: Provider + Clone,
    D: CallDecoder + Clone,
{
    send_with(action, call, TxPolicy::timeout(timeout)).await
}

/// Preflights, sends and waits for `call` under `policy`: with a priority fee or bumps the
/// fees are set here, and each bump resends the same transaction (same nonce) at higher fees;
/// whichever version is mined first ends the wait.
pub async fn send_with<P, D>(
    action: &'static str,
    call: CallBuilder<P, D>,
    policy: TxPolicy,
) -> Result<TransactionReceipt>
where
    P: Provider + Clone,
    D: CallDecoder + Clone,
{
    // The pending block is the one the transaction lands in (its timestamp, on a dev chain).
    call.call().block(BlockId::pending()).await.map_err(|e| from_contract_error(action, e))?;
    // An estimate holds only for the state and timestamp it was run against: a lock estimated
    // before a request's bidding start runs out of gas when mined after it (the ramp costs
    // more). The limit carries headroom; unused gas is not charged.
    let call = call.block(BlockId::pending());
    let estimate = call.estimate_gas().await.map_err(|e| from_contract_error(action, e))?;
    let mut call = call.gas(gas_limit(estimate));
    let mut fees = None;
    if policy.extra_priority_fee.is_some() || policy.bump_every.is_some() {
        let node = call.provider.estimate_eip1559_fees().await.map_err(rpc(action))?;
        let node =
            Fees { max_fee: node.max_fee_per_gas, priority_fee: node.max_priority_fee_per_gas };
        let chosen = initial_fees(node, policy.extra_priority_fee);
        call = with_fees(call, chosen);
        fees = Some(chosen);
    }
    let pending = call.send().await.map_err(|e| from_contract_error(action, e))?;
    let first = *pending.tx_hash();
    tracing::debug!(action, tx = %first, ?fees, "sent");
    let receipt = watch(action, &call, first, fees, policy).await?;
    let tx = receipt.transaction_hash;
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

/// How often a pending transaction's receipt is asked for: first after 25 ms (a dev chain mines
/// at once), then twice as long each time, up to this.
const RECEIPT_POLL: Duration = Duration::from_millis(250);

/// Waits for the receipt of `first` or of any replacement, resending at bumped fees every
/// `policy.bump_every` while none is mined.
async fn watch<P, D>(
    action: &'static str,
    call: &CallBuilder<P, D>,
    first: TxHash,
    mut fees: Option<Fees>,
    policy: TxPolicy,
) -> Result<TransactionReceipt>
where
    P: Provider + Clone,
    D: CallDecoder + Clone,
{
    let started = Instant::now();
    let (mut sent, mut last_sent, mut nonce) = (vec![first], started, None);
    let mut pause = Duration::from_millis(25);
    loop {
        for tx in &sent {
            if let Some(r) =
                call.provider.get_transaction_receipt(*tx).await.map_err(rpc(action))?
            {
                return Ok(r);
            }
        }
        let latest = *sent.last().expect("one sent");
        if started.elapsed() >= policy.timeout {
            return Err(MarketError::TxTimeout { action, tx: latest, timeout: policy.timeout });
        }
        if let (Some(every), Some(current)) = (policy.bump_every, fees)
            && last_sent.elapsed() >= every
        {
            last_sent = Instant::now();
            if nonce.is_none() {
                let tx = call.provider.get_transaction_by_hash(first).await.map_err(rpc(action))?;
                nonce = tx.map(|t| t.nonce());
            }
            if let Some(n) = nonce {
                let next = bump(current);
                match with_fees(call.clone(), next).nonce(n).send().await {
                    Ok(p) => {
                        tracing::info!(action, tx = %p.tx_hash(), replaces = %latest, ?next, "fees bumped");
                        sent.push(*p.tx_hash());
                        fees = Some(next);
                    }
                    // Most often an earlier version was mined meanwhile ("nonce too low").
                    Err(e) => tracing::warn!(action, %latest, "resending at higher fees: {e}"),
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(RECEIPT_POLL);
    }
}

fn rpc(action: &'static str) -> impl Fn(alloy::transports::TransportError) -> MarketError {
    move |e| MarketError::Rpc(format!("{action}: {e}"))
}

fn with_fees<P: Provider, D: CallDecoder>(
    call: CallBuilder<P, D>,
    fees: Fees,
) -> CallBuilder<P, D> {
    call.max_fee_per_gas(fees.max_fee).max_priority_fee_per_gas(fees.priority_fee)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gas_limit_carries_headroom_and_never_overflows() {
        assert_eq!(gas_limit(100_000), 145_000);
        assert_eq!(gas_limit(u64::MAX), u64::MAX);
    }

    #[test]
    fn a_bump_raises_both_fees_by_an_eighth_and_at_least_a_wei() {
        let f = |max_fee, priority_fee| Fees { max_fee, priority_fee };
        assert_eq!(bump(f(800, 80)), f(900, 90));
        assert_eq!(bump(f(801, 0)), f(902, 1), "rounded up; a zero tip becomes 1 wei");
        assert_eq!(bump(f(u128::MAX, 1)), f(u128::MAX, 2));
        let mut fees = f(1_000_000_000, 1);
        for _ in 0..5 {
            let next = bump(fees);
            assert!(
                next.max_fee * 10 >= fees.max_fee * 11,
                "nodes want +10 %: {fees:?} -> {next:?}"
            );
            assert!(next.priority_fee > fees.priority_fee);
            fees = next;
        }
    }

    #[test]
    fn an_extra_priority_fee_is_added_to_both_estimated_fees() {
        let node = Fees { max_fee: 2_000_001_000, priority_fee: 1_000 };
        assert_eq!(initial_fees(node, None), node);
        assert_eq!(
            initial_fees(node, Some(5_000_000)),
            Fees { max_fee: 2_005_001_000, priority_fee: 5_001_000 }
        );
        let top = Fees { max_fee: u128::MAX, priority_fee: 1 };
        assert_eq!(initial_fees(top, Some(7)).max_fee, u128::MAX);
    }
}
