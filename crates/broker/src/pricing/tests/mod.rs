//! Tests for [`screen`](super::screen) and [`price`](super::price): a shared fixture, then
//! table tests per step.

mod price;
mod screen;

use super::*;
use alloy::primitives::{Address, B256};
use tiffin_market::request::request_id;
use tiffin_market::{Input, Predicate};

use FulfillmentType::{FulfillAfterLockExpire as Race, LockAndFulfill as LockPath};

const START: u64 = 1_000_000;

fn requestor() -> Address {
    Address::repeat_byte(0x11)
}

fn other() -> Address {
    Address::repeat_byte(0x22)
}

/// A request with a ramp from 0 to 1,000,000 wei over 100 s, a lock deadline at +200 s, a final
/// deadline at +400 s and 1,000,000 collateral (500,000 to a racer).
fn request() -> ProofRequest {
    let offer = Offer {
        minPrice: U256::ZERO,
        maxPrice: U256::from(1_000_000u64),
        biddingStart: START,
        rampUpPeriod: 100,
        lockTimeout: 200,
        timeout: 400,
        lockCollateral: U256::from(1_000_000u64),
    };
    let id = request_id(requestor(), 1);
    let input = Input::inline(vec![7u8; 100]);
    ProofRequest::new(id, B256::ZERO, Predicate::prefix_match(&b"ok"[..]), "", input, offer)
}

/// A speed at which time never binds (10^12 cycles a second), for cases about other limits.
const FAST_KHZ: u64 = 1_000_000_000;

/// 1 wei per 1,000 cycles; 100 collateral units per mcycle; gas: 100 to lock, 200 to fulfil.
fn params() -> PricingParams {
    PricingParams {
        min_mcycle_price: U256::from(1_000u64),
        min_mcycle_price_collateral_token: U256::from(100u64),
        max_mcycle_limit: 10_000,
        min_mcycle_limit: 0,
        priority_requestors: vec![],
        allow_client_addresses: None,
        deny_requestor_addresses: vec![],
        max_journal_bytes: 1_000,
        max_file_size: 1_000,
        min_deadline: 10,
        max_collateral: U256::from(10_000_000u64),
        peak_prove_khz: Some(FAST_KHZ),
        finish_overhead_secs: 0,
        lockin_gas_estimate: 100,
        fulfill_gas_estimate: 200,
        expected_probability_win_secondary_fulfillment: 50,
    }
}

fn snap() -> MarketSnapshot {
    MarketSnapshot {
        now: START,
        gas_price: 1,
        native_balance: U256::from(1_000_000_000u64),
        collateral_balance: U256::from(1_000_000_000u64),
        reserved_gas: 0,
    }
}

/// A change to the fixture, one per table row.
type Change = fn(&mut Case);

/// One screened or priced case.
struct Case {
    request: ProofRequest,
    kind: FulfillmentType,
    params: PricingParams,
    snap: MarketSnapshot,
    input_bytes: Option<u64>,
}

fn case(kind: FulfillmentType, change: impl FnOnce(&mut Case)) -> Case {
    let mut case =
        Case { request: request(), kind, params: params(), snap: snap(), input_bytes: None };
    change(&mut case);
    case
}

fn screened(case: &Case) -> Result<ExecLimits, SkipCode> {
    screen(&case.request, case.kind, &case.params, &case.snap, case.input_bytes).map_err(|s| s.code)
}

fn limits(preflight_cycles: u64, prove_cycles: u64) -> Result<ExecLimits, SkipCode> {
    Ok(ExecLimits { preflight_cycles, prove_cycles })
}

// Lock path at START: (1,000,000 - 300 gas) wei at 1,000 wei/mcycle = 999,700,000 cycles; the
// race reward 500,000 at 100/mcycle = 5,000,000,000 cycles.
const LOCK: u64 = 999_700_000;
const RACE_FULL: u64 = 5_000_000_000;
const RACE_HALF: u64 = 2_500_000_000;

fn priced(case: &Case, cycles: u64, journal: &[u8]) -> Decision {
    price(&case.request, case.kind, &case.params, &case.snap, cycles, journal)
}

fn skip_code(decision: &Decision) -> Option<SkipCode> {
    match decision {
        Decision::Skip(skip) => Some(skip.code),
        _ => None,
    }
}
