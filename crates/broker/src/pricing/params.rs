//! What pricing reads: the settings, the market as last read, the paths a request pays on, and
//! the deadline and cap arithmetic every check shares.

use alloy::primitives::{Address, U256};
use tiffin_market::Offer;

/// Cycles per mcycle.
pub const MCYCLE: u64 = 1_000_000;
/// The share of a defaulted locker's collateral paid to whoever fulfils after the lock deadline,
/// in basis points (`ProofMarket.SECONDARY_REWARD_BPS`).
pub const SECONDARY_REWARD_BPS: u64 = 5_000;
/// The largest price or collateral the market accepts (`2^128 - 1`).
pub(super) const MAX_AMOUNT: U256 = U256::from_limbs([u64::MAX, u64::MAX, 0, 0]);

/// How the broker would earn from a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FulfillmentType {
    /// Lock it (paying collateral and gas), prove it and fulfil it by its lock deadline for the
    /// ramp's price at the lock time.
    LockAndFulfill,
    /// Someone else locked it and did not fulfil it by the lock deadline: prove it and fulfil it
    /// before the final deadline for a share of the locker's collateral.
    FulfillAfterLockExpire,
}

/// The pricing settings (the lead maps the broker's configuration onto these).
#[derive(Clone, Debug)]
pub struct PricingParams {
    /// The least the broker proves for, in wei per 1,000,000 cycles (0: any price).
    pub min_mcycle_price: U256,
    /// The least collateral reward the broker proves for after a lock expires, in
    /// collateral-token base units per 1,000,000 cycles (0: any reward).
    pub min_mcycle_price_collateral_token: U256,
    /// The most mcycles the broker executes or proves for one request (`u64::MAX`: no cap);
    /// priority requestors bypass it.
    pub max_mcycle_limit: u64,
    /// The fewest mcycles a request must take to be worth proving.
    pub min_mcycle_limit: u64,
    /// Requestors whose requests bypass `max_mcycle_limit` and `max_file_size`.
    pub priority_requestors: Vec<Address>,
    /// When set, only these requestors are served.
    pub allow_client_addresses: Option<Vec<Address>>,
    /// Requestors never served.
    pub deny_requestor_addresses: Vec<Address>,
    /// The largest journal the broker fulfils, in bytes.
    pub max_journal_bytes: usize,
    /// The largest input the broker fetches, in bytes; priority requestors bypass it.
    pub max_file_size: u64,
    /// The fewest seconds that must be left before a request's expiry to take it.
    pub min_deadline: u64,
    /// The most collateral the broker puts up for one lock, in collateral-token base units.
    pub max_collateral: U256,
    /// The cluster's proving speed in kHz (thousands of cycles per second): `peak_prove_khz`,
    /// else the broker's measured one. `None` or 0: unknown, and then nothing is locked or
    /// raced for (S-022), since no deadline can be checked.
    pub peak_prove_khz: Option<u64>,
    /// Seconds needed after the proof to get the fulfilment on chain: aggregation and
    /// submission, plus `block_deadline_buffer_secs`.
    pub finish_overhead_secs: u64,
    /// Gas units a lock transaction uses.
    pub lockin_gas_estimate: u64,
    /// Gas units a fulfilment uses (per request).
    pub fulfill_gas_estimate: u64,
    /// The broker's chance, in percent (0 to 100), of winning the race to fulfil after a lock
    /// expires; it scales the collateral reward the cycle limit is priced from.
    pub expected_probability_win_secondary_fulfillment: u32,
}

/// The market and the prover's account as the caller last read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarketSnapshot {
    /// Seconds since the epoch.
    pub now: u64,
    /// The gas price, in wei per gas unit.
    pub gas_price: u128,
    /// The prover's native balance (wei) for gas.
    pub native_balance: U256,
    /// The prover's collateral deposited in the market, in collateral-token base units.
    pub collateral_balance: U256,
    /// Gas units already reserved for orders the broker has committed to.
    pub reserved_gas: u64,
}

/// The second until which the broker must fulfil to earn on `kind`'s path.
pub(super) fn expiry_of(offer: &Offer, kind: FulfillmentType) -> u64 {
    match kind {
        FulfillmentType::LockAndFulfill => lock_deadline(offer),
        FulfillmentType::FulfillAfterLockExpire => final_deadline(offer),
    }
}

pub(super) fn lock_deadline(offer: &Offer) -> u64 {
    offer.biddingStart.saturating_add(u64::from(offer.lockTimeout))
}

pub(super) fn final_deadline(offer: &Offer) -> u64 {
    offer.biddingStart.saturating_add(u64::from(offer.timeout))
}

pub(super) fn is_priority(params: &PricingParams, requestor: Address) -> bool {
    params.priority_requestors.contains(&requestor)
}

/// Seconds to prove `cycles` at `khz`, rounded up (`None` without a speed).
pub(super) fn proving_secs(khz: Option<u64>, cycles: u64) -> Option<u64> {
    khz.filter(|&k| k > 0).map(|k| cycles.div_ceil(k.saturating_mul(1_000)))
}

/// `max_mcycle_limit` in cycles, or no cap for a priority requestor.
pub(super) fn cycle_cap(params: &PricingParams, priority: bool) -> u64 {
    if priority { u64::MAX } else { params.max_mcycle_limit.saturating_mul(MCYCLE) }
}
