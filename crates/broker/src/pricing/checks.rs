//! The checks [`screen`](super::screen) and [`price`](super::price) run: on the request and
//! the prover's account before executing, and on the execution after it.

use super::params::{
    FulfillmentType, MAX_AMOUNT, MCYCLE, MarketSnapshot, PricingParams, cycle_cap, expiry_of,
    is_priority, proving_secs,
};
use super::ramp::predicate_matches;
use super::skip::{Skip, SkipCode};
use alloy::primitives::{Address, U256};
use tiffin_market::request::{INPUT_INLINE, INPUT_URL, PREDICATE_ANY, PREDICATE_DIGEST_MATCH};
use tiffin_market::{Offer, ProofRequest};

/// The checks that need no execution; returns the gas cost (wei) of `kind`'s path.
pub(super) fn check_request(
    request: &ProofRequest,
    kind: FulfillmentType,
    params: &PricingParams,
    snap: &MarketSnapshot,
) -> Result<U256, Skip> {
    check_valid(request)?;
    check_timing(&request.offer, kind, params.min_deadline, snap.now)?;
    check_requestor(request.requestor(), params)?;
    if kind == FulfillmentType::LockAndFulfill {
        check_collateral(&request.offer, params, snap)?;
    }
    check_gas(&request.offer, kind, params, snap)
}

/// The market's own validation (`ProofMarket._validate`): the market refuses to lock a request
/// that fails it.
pub(super) fn check_valid(request: &ProofRequest) -> Result<(), Skip> {
    let invalid = |what: &str| Err(Skip::new(SkipCode::InvalidRequest, what));
    let predicate = &request.requirements.predicate;
    match predicate.predicateType {
        PREDICATE_DIGEST_MATCH if predicate.data.len() != 32 => {
            return invalid("digest predicate needs 32 bytes");
        }
        PREDICATE_ANY if !predicate.data.is_empty() => {
            return invalid("any predicate takes no data");
        }
        t if t > PREDICATE_ANY => return invalid("unknown predicate type"),
        _ => {}
    }
    if request.input.inputType != INPUT_INLINE && request.input.inputType != INPUT_URL {
        return invalid("unknown input type");
    }
    let offer = &request.offer;
    if offer.minPrice > offer.maxPrice {
        return invalid("minPrice above maxPrice");
    }
    if offer.maxPrice > MAX_AMOUNT || offer.lockCollateral > MAX_AMOUNT {
        return invalid("amount above 2^128");
    }
    if offer.rampUpPeriod > offer.lockTimeout || offer.lockTimeout > offer.timeout {
        return invalid("needs rampUpPeriod <= lockTimeout <= timeout");
    }
    if offer.biddingStart.checked_add(u64::from(offer.timeout)).is_none() {
        return invalid("deadline overflows");
    }
    Ok(())
}

/// Expired at its expiry second; too close with fewer than `min_deadline` seconds left.
pub(super) fn check_timing(
    offer: &Offer,
    kind: FulfillmentType,
    min_deadline: u64,
    now: u64,
) -> Result<(), Skip> {
    let expiry = expiry_of(offer, kind);
    if now >= expiry {
        return Err(Skip::new(SkipCode::Expired, format!("{kind:?} expiry {expiry}, now {now}")));
    }
    let left = expiry - now;
    if left < min_deadline {
        return Err(Skip::new(
            SkipCode::DeadlineTooClose,
            format!("{left} s left before the {kind:?} expiry, min_deadline {min_deadline} s"),
        ));
    }
    Ok(())
}

pub(super) fn check_requestor(requestor: Address, params: &PricingParams) -> Result<(), Skip> {
    if params.deny_requestor_addresses.contains(&requestor) {
        return Err(Skip::new(SkipCode::Denied, format!("requestor {requestor}")));
    }
    match &params.allow_client_addresses {
        Some(allowed) if !allowed.contains(&requestor) => {
            Err(Skip::new(SkipCode::NotAllowed, format!("requestor {requestor}")))
        }
        _ => Ok(()),
    }
}

pub(super) fn check_collateral(
    offer: &Offer,
    params: &PricingParams,
    snap: &MarketSnapshot,
) -> Result<(), Skip> {
    let collateral = offer.lockCollateral;
    if collateral > params.max_collateral {
        return Err(Skip::new(
            SkipCode::CollateralTooHigh,
            format!("lockCollateral {collateral} > max_collateral {}", params.max_collateral),
        ));
    }
    if collateral > snap.collateral_balance {
        return Err(Skip::new(
            SkipCode::InsufficientCollateralBalance,
            format!("lockCollateral {collateral} > deposited {}", snap.collateral_balance),
        ));
    }
    Ok(())
}

/// The gas cost (wei) of `kind`'s path: the lock (lock path only) and the fulfilment.
pub fn gas_cost(kind: FulfillmentType, params: &PricingParams, gas_price: u128) -> U256 {
    let lock = match kind {
        FulfillmentType::LockAndFulfill => params.lockin_gas_estimate,
        FulfillmentType::FulfillAfterLockExpire => 0,
    };
    let units = lock.saturating_add(params.fulfill_gas_estimate);
    U256::from(gas_price) * U256::from(units)
}

pub(super) fn check_gas(
    offer: &Offer,
    kind: FulfillmentType,
    params: &PricingParams,
    snap: &MarketSnapshot,
) -> Result<U256, Skip> {
    let cost = gas_cost(kind, params, snap.gas_price);
    if kind == FulfillmentType::LockAndFulfill && cost > offer.maxPrice {
        return Err(Skip::new(
            SkipCode::GasCostAboveMaxPrice,
            format!("gas {cost} wei > maxPrice {}", offer.maxPrice),
        ));
    }
    let reserved = U256::from(snap.gas_price) * U256::from(snap.reserved_gas);
    let available = snap.native_balance.saturating_sub(reserved);
    if cost > available {
        return Err(Skip::new(
            SkipCode::InsufficientGasBalance,
            format!(
                "gas {cost} wei > balance {} wei less {reserved} wei reserved",
                snap.native_balance
            ),
        ));
    }
    Ok(cost)
}

pub(super) fn check_input_size(
    request: &ProofRequest,
    params: &PricingParams,
    input_bytes: Option<u64>,
) -> Result<(), Skip> {
    let inline = (request.input.inputType == INPUT_INLINE).then(|| request.input.data.len() as u64);
    let Some(size) = input_bytes.or(inline) else { return Ok(()) };
    if size > params.max_file_size && !is_priority(params, request.requestor()) {
        return Err(Skip::new(
            SkipCode::InputTooLarge,
            format!("input {size} bytes > max_file_size {}", params.max_file_size),
        ));
    }
    Ok(())
}

/// The checks on an execution that hold on both paths.
pub(super) fn check_execution(
    request: &ProofRequest,
    params: &PricingParams,
    cycles: u64,
    journal: &[u8],
) -> Result<(), Skip> {
    let cap = cycle_cap(params, is_priority(params, request.requestor()));
    if cycles > cap {
        return Err(Skip::new(SkipCode::OverCycleLimit, format!("{cycles} cycles > {cap}")));
    }
    let min = params.min_mcycle_limit.saturating_mul(MCYCLE);
    if cycles < min {
        return Err(Skip::new(SkipCode::UnderMinCycles, format!("{cycles} cycles < {min}")));
    }
    if journal.len() > params.max_journal_bytes {
        return Err(Skip::new(
            SkipCode::JournalTooLarge,
            format!("journal {} bytes > {}", journal.len(), params.max_journal_bytes),
        ));
    }
    if !predicate_matches(&request.requirements.predicate, journal) {
        return Err(Skip::new(
            SkipCode::PredicateFailed,
            format!("predicate type {}", request.requirements.predicate.predicateType),
        ));
    }
    Ok(())
}

/// SpeedUnknown without a speed; ProverTooSlow unless `cycles` proven from `start` at the
/// speed, plus the time to fulfil after the proof, finish by `expiry`.
pub(super) fn check_prove_time(
    params: &PricingParams,
    cycles: u64,
    start: u64,
    expiry: u64,
) -> Result<(), Skip> {
    let Some(secs) = proving_secs(params.peak_prove_khz, cycles) else {
        return Err(Skip::new(SkipCode::SpeedUnknown, format!("{cycles} cycles")));
    };
    let done = start.saturating_add(secs).saturating_add(params.finish_overhead_secs);
    if done > expiry {
        return Err(Skip::new(
            SkipCode::ProverTooSlow,
            format!(
                "{cycles} cycles take {secs} s from {start} plus {} s to fulfil, expiry {expiry}",
                params.finish_overhead_secs
            ),
        ));
    }
    Ok(())
}
