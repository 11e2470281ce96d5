//! Pricing: which market requests the broker takes, and when it locks them.
//!
//! Pure policy: no I/O and no clock; every function takes the time (`now`, seconds since the
//! epoch) in a [`MarketSnapshot`]. A request goes through two steps:
//!
//! 1. [`screen`], before executing it: the checks that need no execution (deadlines, requestor
//!    lists, collateral, gas, input size) and the cycle limits ([`ExecLimits`]) the preflight
//!    execution runs under.
//! 2. [`price`], after the preflight: the checks on its cycle count and journal, and the
//!    [`Decision`]: lock it (and from when), prove it after its lock expires, or skip it.
//!
//! Prices are in wei; an "mcycle price" is wei (or collateral-token base units) per 1,000,000
//! cycles. On the lock path ([`FulfillmentType::LockAndFulfill`]) the broker is paid the ramp's
//! price at its lock time if it fulfils by the lock deadline, and pays the gas to lock and
//! fulfil. After the lock deadline ([`FulfillmentType::FulfillAfterLockExpire`]) anyone may
//! fulfil before the final deadline and earns [`SECONDARY_REWARD_BPS`] of the defaulted
//! locker's collateral, but no price.
//!
//! Every skip carries a stable code, listed once in [`SkipCode`] (skip.rs).
//!
//! A request whose executed cycles exceed [`ExecLimits::prove_cycles`] is skipped by [`price`]
//! with the code of the bound it crossed: S-011 for `max_mcycle_limit`, S-015 for the price,
//! S-016 for the collateral reward, S-017 for the time left at `peak_prove_khz`.

mod checks;
mod params;
mod ramp;
mod skip;
#[cfg(test)]
mod tests;

pub use checks::gas_cost;
pub use ramp::{predicate_matches, time_at_price};
pub use skip::{Skip, SkipCode};

use alloy::primitives::U256;
use checks::{check_execution, check_input_size, check_prove_time, check_request};
pub use params::{FulfillmentType, MCYCLE, MarketSnapshot, PricingParams, SECONDARY_REWARD_BPS};
use params::{cycle_cap, final_deadline, is_priority, lock_deadline};
use tiffin_market::{Offer, ProofRequest};

/// The cycle limits a request's execution runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecLimits {
    /// The limit for the preflight execution: what the path pays for.
    pub preflight_cycles: u64,
    /// The most cycles the broker proves the request for on this path.
    pub prove_cycles: u64,
}

/// What to do with a request after its preflight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Lock the request, no earlier than `at`.
    Lock {
        /// The earliest second to send the lock: now if the price already covers `floor`,
        /// else the second the ramp reaches it (never before `biddingStart`).
        at: u64,
        /// The least price (wei) worth locking for: the cycles at `min_mcycle_price` plus gas.
        floor: U256,
        /// The lock deadline: the proof must be fulfilled by then to be paid.
        expiry: u64,
    },
    /// Prove the request after its lock expires and fulfil it for part of the collateral.
    ProveAfterLockExpire {
        /// When to start proving: the lock deadline, or now if it has passed.
        at: u64,
        /// The final deadline.
        expiry: u64,
        /// The collateral reward (collateral-token base units) the fulfilment earns.
        reward: U256,
    },
    /// Leave the request alone.
    Skip(Skip),
}

/// The checks before executing a request, and the cycle limits to execute it under.
///
/// `input_bytes` is the input's size if known; `None` checks an inline input's data and leaves
/// a URL input unchecked.
pub fn screen(
    request: &ProofRequest,
    kind: FulfillmentType,
    params: &PricingParams,
    snap: &MarketSnapshot,
    input_bytes: Option<u64>,
) -> Result<ExecLimits, Skip> {
    let gas_cost = check_request(request, kind, params, snap)?;
    check_input_size(request, params, input_bytes)?;
    let priority = is_priority(params, request.requestor());
    let limits = exec_limits(&bounds(&request.offer, kind, params, priority, gas_cost, snap.now));
    if limits.prove_cycles < 2 {
        return Err(Skip::new(
            SkipCode::CycleLimitTooLow,
            format!("{kind:?} affords {} cycles (gas {gas_cost} wei)", limits.prove_cycles),
        ));
    }
    Ok(limits)
}

/// What to do with a request whose preflight took `cycles` cycles and committed `journal`.
///
/// Repeats [`screen`]'s request checks against `snap` (time has passed since), then checks the
/// execution and decides when (and whether) the request pays.
pub fn price(
    request: &ProofRequest,
    kind: FulfillmentType,
    params: &PricingParams,
    snap: &MarketSnapshot,
    cycles: u64,
    journal: &[u8],
) -> Decision {
    let decided = check_request(request, kind, params, snap).and_then(|gas_cost| {
        check_execution(request, params, cycles, journal)?;
        match kind {
            FulfillmentType::LockAndFulfill => {
                price_lock(&request.offer, params, snap.now, gas_cost, cycles)
            }
            FulfillmentType::FulfillAfterLockExpire => {
                price_race(&request.offer, params, snap.now, cycles)
            }
        }
    });
    decided.unwrap_or_else(Decision::Skip)
}

/// Whether a locked order whose lock deadline passed before its proof started is still worth
/// proving before the final deadline: fulfilling then recovers [`SECONDARY_REWARD_BPS`] of the
/// collateral, which must cover its cycles at `min_mcycle_price_collateral_token`.
pub fn late_proof_pays(offer: &Offer, cycles: u64, params: &PricingParams, now: u64) -> bool {
    let reward = secondary_reward(offer).saturating_mul(U256::from(MCYCLE));
    let cost = params.min_mcycle_price_collateral_token.saturating_mul(U256::from(cycles));
    now < final_deadline(offer) && reward >= cost
}

/// The collateral reward for fulfilling after the lock deadline, rounded down like the market.
pub fn secondary_reward(offer: &Offer) -> U256 {
    offer.lockCollateral.saturating_mul(U256::from(SECONDARY_REWARD_BPS)) / U256::from(10_000u64)
}

/// The secondary reward weighted by the chance of winning the race.
fn expected_secondary_reward(offer: &Offer, params: &PricingParams) -> U256 {
    let percent = params.expected_probability_win_secondary_fulfillment.min(100);
    secondary_reward(offer) * U256::from(percent) / U256::from(100u64)
}

/// How many cycles `budget` pays for at `mcycle_price` per mcycle (unbounded at price 0).
fn affordable_cycles(budget: U256, mcycle_price: U256) -> u64 {
    if mcycle_price.is_zero() {
        return u64::MAX;
    }
    (budget.saturating_mul(U256::from(MCYCLE)) / mcycle_price).saturating_to()
}

/// The cycles a cluster at `khz` proves between `start` and `end` (unbounded without a speed).
fn cycles_in_time(khz: Option<u64>, start: u64, end: u64) -> u64 {
    match khz.filter(|&k| k > 0) {
        Some(k) => k.saturating_mul(1_000).saturating_mul(end.saturating_sub(start)),
        None => u64::MAX,
    }
}

/// The three bounds on `kind`'s cycles, each with the skip code of crossing it: what the path
/// pays for (the price on the lock path, never the collateral: offering collateral costs a
/// requestor nothing, so it must not buy execution; the expected reward on the race path), the
/// time from when its proof may start (`biddingStart` or now; the lock deadline or now after
/// it) until its expiry at the speed, and `max_mcycle_limit`.
fn bounds(
    offer: &Offer,
    kind: FulfillmentType,
    params: &PricingParams,
    priority: bool,
    gas_cost: U256,
    now: u64,
) -> [(u64, SkipCode); 3] {
    let khz = params.peak_prove_khz;
    let (paid, time) = match kind {
        FulfillmentType::LockAndFulfill => {
            let budget = offer.maxPrice.saturating_sub(gas_cost);
            (
                (affordable_cycles(budget, params.min_mcycle_price), SkipCode::Unprofitable),
                cycles_in_time(khz, now.max(offer.biddingStart), lock_deadline(offer)),
            )
        }
        FulfillmentType::FulfillAfterLockExpire => {
            let reward = expected_secondary_reward(offer, params);
            let paid = affordable_cycles(reward, params.min_mcycle_price_collateral_token);
            (
                (paid, SkipCode::UnprofitableCollateral),
                cycles_in_time(khz, now.max(lock_deadline(offer)), final_deadline(offer)),
            )
        }
    };
    let cap = (cycle_cap(params, priority), SkipCode::OverCycleLimit);
    [cap, paid, (time, SkipCode::ProverTooSlow)]
}

/// The cycle limits of a path: the tightest of its [`bounds`].
fn exec_limits(bounds: &[(u64, SkipCode); 3]) -> ExecLimits {
    let cycles = bounds.iter().map(|(c, _)| *c).min().unwrap_or(0);
    ExecLimits { preflight_cycles: cycles, prove_cycles: cycles }
}

/// The skip for a request whose preflight ran past its limit: the code of the bound the limit
/// came from (the tightest; `max_mcycle_limit` first on a tie), as [`price`] would answer.
pub fn over_limit(
    request: &ProofRequest,
    kind: FulfillmentType,
    params: &PricingParams,
    snap: &MarketSnapshot,
    detail: impl Into<String>,
) -> Skip {
    let gas_cost = gas_cost(kind, params, snap.gas_price);
    let priority = is_priority(params, request.requestor());
    let bounds = bounds(&request.offer, kind, params, priority, gas_cost, snap.now);
    let tightest = bounds.iter().min_by_key(|(c, _)| *c).map_or(SkipCode::OverCycleLimit, |b| b.1);
    Skip::new(tightest, detail)
}

/// The least price worth locking for: `cycles` at `mcycle_price` (rounded up) plus gas.
pub fn lock_floor(mcycle_price: U256, cycles: u64, gas_cost: U256) -> U256 {
    let (whole, part) = mcycle_price.saturating_mul(U256::from(cycles)).div_rem(U256::from(MCYCLE));
    let proving = whole + U256::from(u8::from(!part.is_zero()));
    proving.saturating_add(gas_cost)
}

/// The earliest second from `now` on at which the request can be locked for at least `floor`.
fn lock_time(offer: &Offer, floor: U256, now: u64) -> Option<u64> {
    let start = now.max(offer.biddingStart);
    if offer.price_at(start) >= floor { Some(start) } else { time_at_price(offer, floor) }
}

fn price_lock(
    offer: &Offer,
    params: &PricingParams,
    now: u64,
    gas_cost: U256,
    cycles: u64,
) -> Result<Decision, Skip> {
    let floor = lock_floor(params.min_mcycle_price, cycles, gas_cost);
    let expiry = lock_deadline(offer);
    let at = match lock_time(offer, floor, now) {
        Some(at) if at <= expiry => at,
        reached => {
            return Err(Skip::new(
                SkipCode::Unprofitable,
                format!(
                    "floor {floor} wei ({cycles} cycles + gas {gas_cost}); maxPrice {}, reached \
                     at {reached:?}, lock deadline {expiry}",
                    offer.maxPrice
                ),
            ));
        }
    };
    if expiry - at < params.min_deadline {
        return Err(Skip::new(
            SkipCode::DeadlineTooClose,
            format!(
                "the ramp reaches floor {floor} wei at {at}, {} s before the lock deadline",
                expiry - at
            ),
        ));
    }
    check_prove_time(params, cycles, at, expiry)?;
    Ok(Decision::Lock { at, floor, expiry })
}

fn price_race(
    offer: &Offer,
    params: &PricingParams,
    now: u64,
    cycles: u64,
) -> Result<Decision, Skip> {
    let expected = expected_secondary_reward(offer, params);
    let min_price = params.min_mcycle_price_collateral_token;
    if expected.saturating_mul(U256::from(MCYCLE)) < min_price.saturating_mul(U256::from(cycles)) {
        return Err(Skip::new(
            SkipCode::UnprofitableCollateral,
            format!("expected reward {expected} for {cycles} cycles at {min_price} per mcycle"),
        ));
    }
    let at = now.max(lock_deadline(offer));
    let expiry = final_deadline(offer);
    check_prove_time(params, cycles, at, expiry)?;
    Ok(Decision::ProveAfterLockExpire { at, expiry, reward: secondary_reward(offer) })
}
