//! Table tests for [`screen`].

use super::*;

#[test]
fn screen_table() {
    let table: Vec<(&str, FulfillmentType, Change, Result<ExecLimits, SkipCode>)> = vec![
        // Failed before the fix: the lock path's preflight ran what the collateral (which a
        // requestor offers for free) would pay for, not only what the price pays for.
        ("lock path limits", LockPath, |_| {}, limits(LOCK, LOCK)),
        ("race path limits", Race, |_| {}, limits(RACE_HALF, RACE_HALF)),
        (
            "race at full odds",
            Race,
            |c| c.params.expected_probability_win_secondary_fulfillment = 100,
            limits(RACE_FULL, RACE_FULL),
        ),
        (
            "odds above 100 are 100",
            Race,
            |c| c.params.expected_probability_win_secondary_fulfillment = 250,
            limits(RACE_FULL, RACE_FULL),
        ),
        (
            "free eth price is unbounded",
            LockPath,
            |c| {
                c.params.min_mcycle_price = U256::ZERO;
                c.params.max_mcycle_limit = u64::MAX;
                c.params.peak_prove_khz = None
            },
            limits(u64::MAX, u64::MAX),
        ),
        (
            "free collateral price is unbounded",
            Race,
            |c| {
                c.params.min_mcycle_price_collateral_token = U256::ZERO;
                c.params.max_mcycle_limit = u64::MAX;
                c.params.peak_prove_khz = None
            },
            limits(u64::MAX, u64::MAX),
        ),
        (
            "max_mcycle_limit caps both",
            LockPath,
            |c| c.params.max_mcycle_limit = 100,
            limits(100_000_000, 100_000_000),
        ),
        (
            "priority bypasses max_mcycle_limit",
            LockPath,
            |c| {
                c.params.max_mcycle_limit = 100;
                c.params.priority_requestors = vec![requestor()]
            },
            limits(LOCK, LOCK),
        ),
        (
            "other priority requestors do not count",
            LockPath,
            |c| {
                c.params.max_mcycle_limit = 100;
                c.params.priority_requestors = vec![other()]
            },
            limits(100_000_000, 100_000_000),
        ),
        // khz 1,000 = 1e6 cycles/s: 200 s to the lock deadline, 200 s lock deadline to final.
        (
            "khz caps by time left",
            LockPath,
            |c| c.params.peak_prove_khz = Some(1_000),
            limits(200_000_000, 200_000_000),
        ),
        (
            "khz time counts from now",
            LockPath,
            |c| {
                c.params.peak_prove_khz = Some(1_000);
                c.snap.now = START + 150
            },
            limits(50_000_000, 50_000_000),
        ),
        (
            "race time counts from the lock deadline",
            Race,
            |c| {
                c.params.peak_prove_khz = Some(1_000);
                c.snap.now = START + 50
            },
            limits(200_000_000, 200_000_000),
        ),
        (
            "race time counts from now after it",
            Race,
            |c| {
                c.params.peak_prove_khz = Some(1_000);
                c.snap.now = START + 300
            },
            limits(100_000_000, 100_000_000),
        ),
        ("khz 0 is no speed", LockPath, |c| c.params.peak_prove_khz = Some(0), limits(LOCK, LOCK)),
        (
            "lock path expired at the lock deadline",
            LockPath,
            |c| c.snap.now = START + 200,
            Err(SkipCode::Expired),
        ),
        (
            "race not expired at the lock deadline",
            Race,
            |c| c.snap.now = START + 200,
            limits(RACE_HALF, RACE_HALF),
        ),
        (
            "race expired at the deadline",
            Race,
            |c| c.snap.now = START + 400,
            Err(SkipCode::Expired),
        ),
        (
            "deadline too close",
            LockPath,
            |c| c.snap.now = START + 191,
            Err(SkipCode::DeadlineTooClose),
        ),
        (
            "deadline exactly min_deadline away",
            LockPath,
            |c| c.snap.now = START + 190,
            limits(LOCK, LOCK),
        ),
        (
            "race deadline too close",
            Race,
            |c| c.snap.now = START + 395,
            Err(SkipCode::DeadlineTooClose),
        ),
        (
            "denied",
            LockPath,
            |c| c.params.deny_requestor_addresses = vec![requestor()],
            Err(SkipCode::Denied),
        ),
        (
            "deny wins over allow",
            Race,
            |c| {
                c.params.deny_requestor_addresses = vec![requestor()];
                c.params.allow_client_addresses = Some(vec![requestor()])
            },
            Err(SkipCode::Denied),
        ),
        (
            "not allowed",
            LockPath,
            |c| c.params.allow_client_addresses = Some(vec![other()]),
            Err(SkipCode::NotAllowed),
        ),
        (
            "empty allow list allows none",
            Race,
            |c| c.params.allow_client_addresses = Some(vec![]),
            Err(SkipCode::NotAllowed),
        ),
        (
            "allowed",
            LockPath,
            |c| c.params.allow_client_addresses = Some(vec![other(), requestor()]),
            limits(LOCK, LOCK),
        ),
        (
            "collateral above max_collateral",
            LockPath,
            |c| c.params.max_collateral = U256::from(999_999u64),
            Err(SkipCode::CollateralTooHigh),
        ),
        (
            "collateral at max_collateral",
            LockPath,
            |c| c.params.max_collateral = U256::from(1_000_000u64),
            limits(LOCK, LOCK),
        ),
        (
            "collateral above the balance",
            LockPath,
            |c| c.snap.collateral_balance = U256::from(999_999u64),
            Err(SkipCode::InsufficientCollateralBalance),
        ),
        (
            "race puts up no collateral",
            Race,
            |c| {
                c.params.max_collateral = U256::ZERO;
                c.snap.collateral_balance = U256::ZERO
            },
            limits(RACE_HALF, RACE_HALF),
        ),
        (
            "gas above max price",
            LockPath,
            |c| c.snap.gas_price = 3_334,
            Err(SkipCode::GasCostAboveMaxPrice),
        ),
        (
            "gas just below max price",
            LockPath,
            |c| c.snap.gas_price = 3_333,
            limits(100_000, 100_000),
        ),
        (
            "gas eats the whole price",
            LockPath,
            |c| c.request.offer.maxPrice = U256::from(300u64),
            Err(SkipCode::CycleLimitTooLow),
        ),
        (
            "race pays no lock gas and ignores max price",
            Race,
            |c| {
                c.snap.gas_price = 1_000_000;
                c.snap.native_balance = U256::from(200_000_000u64)
            },
            limits(RACE_HALF, RACE_HALF),
        ),
        (
            "gas above the balance",
            LockPath,
            |c| c.snap.native_balance = U256::from(299u64),
            Err(SkipCode::InsufficientGasBalance),
        ),
        (
            "reserved gas leaves too little",
            LockPath,
            |c| {
                c.snap.native_balance = U256::from(1_000u64);
                c.snap.reserved_gas = 701
            },
            Err(SkipCode::InsufficientGasBalance),
        ),
        (
            "reserved gas leaves just enough",
            LockPath,
            |c| {
                c.snap.native_balance = U256::from(1_000u64);
                c.snap.reserved_gas = 700
            },
            limits(LOCK, LOCK),
        ),
        (
            "reserved gas above the balance",
            Race,
            |c| {
                c.snap.native_balance = U256::from(1_000u64);
                c.snap.reserved_gas = 5_000
            },
            Err(SkipCode::InsufficientGasBalance),
        ),
        (
            "inline input too large",
            LockPath,
            |c| c.request.input = Input::inline(vec![0u8; 1_001]),
            Err(SkipCode::InputTooLarge),
        ),
        (
            "known input size too large",
            Race,
            |c| c.input_bytes = Some(1_001),
            Err(SkipCode::InputTooLarge),
        ),
        (
            "url input unchecked without a size",
            LockPath,
            |c| c.request.input = Input::url("http://x/y"),
            limits(LOCK, LOCK),
        ),
        (
            "priority bypasses max_file_size",
            LockPath,
            |c| {
                c.input_bytes = Some(1 << 40);
                c.params.priority_requestors = vec![requestor()]
            },
            limits(LOCK, LOCK),
        ),
        (
            "tiny price",
            LockPath,
            |c| {
                c.request.offer.maxPrice = U256::from(301u64);
                c.params.min_mcycle_price = U256::from(1_000_000u64)
            },
            Err(SkipCode::CycleLimitTooLow),
        ),
        (
            "price for exactly 2 cycles",
            LockPath,
            |c| {
                c.request.offer.maxPrice = U256::from(1u64);
                c.params.min_mcycle_price = U256::from(500_000u64);
                c.snap.gas_price = 0
            },
            limits(2, 2),
        ),
        (
            "no odds",
            Race,
            |c| c.params.expected_probability_win_secondary_fulfillment = 0,
            Err(SkipCode::CycleLimitTooLow),
        ),
        (
            "max_mcycle_limit zero",
            LockPath,
            |c| c.params.max_mcycle_limit = 0,
            Err(SkipCode::CycleLimitTooLow),
        ),
        (
            "no time at khz",
            LockPath,
            |c| {
                c.params.peak_prove_khz = Some(1);
                c.snap.now = START + 199;
                c.params.min_deadline = 0
            },
            limits(1_000, 1_000),
        ),
        (
            "min above max price",
            LockPath,
            |c| c.request.offer.minPrice = U256::from(2_000_000u64),
            Err(SkipCode::InvalidRequest),
        ),
        (
            "ramp past the lock deadline",
            LockPath,
            |c| c.request.offer.rampUpPeriod = 201,
            Err(SkipCode::InvalidRequest),
        ),
        (
            "amount above 2^128",
            Race,
            |c| c.request.offer.lockCollateral = U256::MAX,
            Err(SkipCode::InvalidRequest),
        ),
        (
            "deadline overflows",
            LockPath,
            |c| c.request.offer.biddingStart = u64::MAX - 100,
            Err(SkipCode::InvalidRequest),
        ),
        (
            "bad digest predicate",
            LockPath,
            |c| c.request.requirements.predicate.predicateType = 0,
            Err(SkipCode::InvalidRequest),
        ),
        (
            "unknown input type",
            LockPath,
            |c| c.request.input.inputType = 5,
            Err(SkipCode::InvalidRequest),
        ),
    ];
    for (name, kind, change, expected) in table {
        assert_eq!(screened(&case(kind, change)), expected, "{name}");
    }
}
