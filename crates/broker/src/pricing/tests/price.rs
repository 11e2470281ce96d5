//! Table and property tests for [`price`].

use super::*;

/// (name, path, change to the fixture, cycles, journal, expected decision)
type PriceRow = (&'static str, FulfillmentType, Change, u64, &'static [u8], Decision);

fn lock(at: u64, floor: u64) -> Decision {
    Decision::Lock { at: START + at, floor: U256::from(floor), expiry: START + 200 }
}

#[test]
fn price_table() {
    let skip = |code| Decision::Skip(Skip::new(code, ""));
    // 100,000,000 cycles = 100,000 wei at our price, + 300 gas = floor 100,300, which the ramp
    // (10,000 wei/s) reaches at +11 s (110,000).
    let table: Vec<PriceRow> = vec![
        ("waits for the ramp", LockPath, |_| {}, 100_000_000, b"ok", lock(11, 100_300)),
        (
            "locks now once the ramp passed the floor",
            LockPath,
            |c| c.snap.now = START + 50,
            100_000_000,
            b"ok",
            lock(50, 100_300),
        ),
        (
            "locks at the crossing second",
            LockPath,
            |c| c.snap.now = START + 11,
            100_000_000,
            b"ok",
            lock(11, 100_300),
        ),
        (
            "never locks before bidding starts",
            LockPath,
            |c| {
                c.snap.now = START - 30;
                c.request.offer.minPrice = U256::from(200_000u64)
            },
            100_000_000,
            b"ok",
            lock(0, 100_300),
        ),
        ("floor rounds cycles up", LockPath, |c| c.snap.gas_price = 0, 1_001, b"ok", lock(1, 2)),
        (
            "free price waits for the gas only",
            LockPath,
            |c| c.params.min_mcycle_price = U256::ZERO,
            100_000_000,
            b"ok",
            lock(1, 300),
        ),
        (
            "floor above max price",
            LockPath,
            |_| {},
            999_700_001,
            b"ok",
            skip(SkipCode::Unprofitable),
        ),
        ("floor at max price", LockPath, |_| {}, 999_700_000, b"ok", lock(100, 1_000_000)),
        (
            "ramp reaches the floor too late for min_deadline",
            LockPath,
            |c| c.params.min_deadline = 150,
            600_000_000,
            b"ok",
            skip(SkipCode::DeadlineTooClose),
        ),
        (
            "over max_mcycle_limit",
            LockPath,
            |c| c.params.max_mcycle_limit = 99,
            100_000_000,
            b"ok",
            skip(SkipCode::OverCycleLimit),
        ),
        (
            "priority over max_mcycle_limit",
            LockPath,
            |c| {
                c.params.max_mcycle_limit = 99;
                c.params.priority_requestors = vec![requestor()]
            },
            100_000_000,
            b"ok",
            lock(11, 100_300),
        ),
        (
            "under min_mcycle_limit",
            LockPath,
            |c| c.params.min_mcycle_limit = 101,
            100_000_000,
            b"ok",
            skip(SkipCode::UnderMinCycles),
        ),
        (
            "at min_mcycle_limit",
            LockPath,
            |c| c.params.min_mcycle_limit = 100,
            100_000_000,
            b"ok",
            lock(11, 100_300),
        ),
        (
            "journal too large",
            LockPath,
            |c| c.params.max_journal_bytes = 3,
            100_000_000,
            b"okay",
            skip(SkipCode::JournalTooLarge),
        ),
        (
            "journal at the limit",
            LockPath,
            |c| c.params.max_journal_bytes = 4,
            100_000_000,
            b"okay",
            lock(11, 100_300),
        ),
        ("predicate fails", LockPath, |_| {}, 100_000_000, b"no", skip(SkipCode::PredicateFailed)),
        // khz 1,000: 100,000,000 cycles take 100 s; locking at +11 leaves 189 s.
        (
            "fast enough",
            LockPath,
            |c| c.params.peak_prove_khz = Some(1_000),
            100_000_000,
            b"ok",
            lock(11, 100_300),
        ),
        (
            "too slow from the lock time",
            LockPath,
            |c| c.params.peak_prove_khz = Some(1_000),
            190_000_000,
            b"ok",
            skip(SkipCode::ProverTooSlow),
        ),
        (
            "too slow from now",
            LockPath,
            |c| {
                c.params.peak_prove_khz = Some(1_000);
                c.snap.now = START + 150
            },
            100_000_000,
            b"ok",
            skip(SkipCode::ProverTooSlow),
        ),
        // Failed before the fix: without a speed nothing checked the time, so a request that
        // needs hours was locked minutes before its lock deadline.
        (
            "no speed known",
            LockPath,
            |c| c.params.peak_prove_khz = None,
            100_000_000,
            b"ok",
            skip(SkipCode::SpeedUnknown),
        ),
        // 100 s of proving from +11 ends at +111; 89 s more to fulfil is the most that fits.
        (
            "the proof fits but not the fulfilment after it",
            LockPath,
            |c| {
                c.params.peak_prove_khz = Some(1_000);
                c.params.finish_overhead_secs = 90
            },
            100_000_000,
            b"ok",
            skip(SkipCode::ProverTooSlow),
        ),
        (
            "the proof and the fulfilment fit",
            LockPath,
            |c| {
                c.params.peak_prove_khz = Some(1_000);
                c.params.finish_overhead_secs = 89
            },
            100_000_000,
            b"ok",
            lock(11, 100_300),
        ),
        (
            "expired since the screen",
            LockPath,
            |c| c.snap.now = START + 200,
            100_000_000,
            b"ok",
            skip(SkipCode::Expired),
        ),
        (
            "gas rose since the screen",
            LockPath,
            |c| c.snap.native_balance = U256::ZERO,
            100_000_000,
            b"ok",
            skip(SkipCode::InsufficientGasBalance),
        ),
        // Race: expected reward 250,000 at 100/mcycle pays for 2,500,000,000 cycles.
        (
            "race pays",
            Race,
            |_| {},
            2_500_000_000,
            b"ok",
            Decision::ProveAfterLockExpire {
                at: START + 200,
                expiry: START + 400,
                reward: U256::from(500_000u64),
            },
        ),
        (
            "race starts now after the lock deadline",
            Race,
            |c| c.snap.now = START + 250,
            2_500_000_000,
            b"ok",
            Decision::ProveAfterLockExpire {
                at: START + 250,
                expiry: START + 400,
                reward: U256::from(500_000u64),
            },
        ),
        (
            "race unprofitable",
            Race,
            |_| {},
            2_500_000_001,
            b"ok",
            skip(SkipCode::UnprofitableCollateral),
        ),
        (
            "race profitable at full odds",
            Race,
            |c| c.params.expected_probability_win_secondary_fulfillment = 100,
            5_000_000_000,
            b"ok",
            Decision::ProveAfterLockExpire {
                at: START + 200,
                expiry: START + 400,
                reward: U256::from(500_000u64),
            },
        ),
        (
            "race free collateral price",
            Race,
            |c| c.params.min_mcycle_price_collateral_token = U256::ZERO,
            9_000_000_000,
            b"ok",
            Decision::ProveAfterLockExpire {
                at: START + 200,
                expiry: START + 400,
                reward: U256::from(500_000u64),
            },
        ),
        // khz 1,000 from the lock deadline: 200 s for 200,000,000 cycles.
        (
            "race fast enough",
            Race,
            |c| c.params.peak_prove_khz = Some(1_000),
            200_000_000,
            b"ok",
            Decision::ProveAfterLockExpire {
                at: START + 200,
                expiry: START + 400,
                reward: U256::from(500_000u64),
            },
        ),
        (
            "race too slow",
            Race,
            |c| c.params.peak_prove_khz = Some(1_000),
            200_000_001,
            b"ok",
            skip(SkipCode::ProverTooSlow),
        ),
        (
            "race not expired at the lock deadline",
            Race,
            |c| c.snap.now = START + 200,
            1_000,
            b"ok",
            Decision::ProveAfterLockExpire {
                at: START + 200,
                expiry: START + 400,
                reward: U256::from(500_000u64),
            },
        ),
        (
            "race denied",
            Race,
            |c| c.params.deny_requestor_addresses = vec![requestor()],
            1_000,
            b"ok",
            skip(SkipCode::Denied),
        ),
    ];
    for (name, kind, change, cycles, journal, expected) in table {
        let decision = priced(&case(kind, change), cycles, journal);
        match (&decision, &expected) {
            (Decision::Skip(_), Decision::Skip(_)) => {
                assert_eq!(skip_code(&decision), skip_code(&expected), "{name}: {decision:?}")
            }
            _ => assert_eq!(decision, expected, "{name}"),
        }
    }
}

/// Every cycle count the screen's prove limit admits is priced as a decision, and every count
/// above it is skipped: the two steps agree on the bounds.
#[test]
fn price_agrees_with_the_screen_limits() {
    let variants: Vec<(FulfillmentType, Change)> = vec![
        (LockPath, |_| {}),
        (LockPath, |c| c.params.max_mcycle_limit = 300),
        (LockPath, |c| c.params.peak_prove_khz = Some(700)),
        (LockPath, |c| {
            c.snap.now = START + 120;
            c.params.peak_prove_khz = Some(3_000)
        }),
        (Race, |_| {}),
        (Race, |c| c.params.peak_prove_khz = Some(900)),
        (Race, |c| c.params.expected_probability_win_secondary_fulfillment = 37),
    ];
    for (i, (kind, change)) in variants.into_iter().enumerate() {
        let case = case(kind, change);
        let limit = screened(&case).expect("screened").prove_cycles;
        // On the lock path the ramp decides when to lock; without khz any affordable count fits.
        let fits = priced(&case, limit, b"ok");
        let over = priced(&case, limit + 1, b"ok");
        if case.params.peak_prove_khz == Some(super::FAST_KHZ) || kind == Race {
            assert!(skip_code(&fits).is_none(), "variant {i}: {fits:?}");
        }
        assert!(skip_code(&over).is_some(), "variant {i}: {over:?}");
    }
}

/// Lock only when the ramp reaches our floor, never earlier: over many offers and cycle counts
/// the decision's `at` is the true crossing second, found by scanning the ramp.
#[test]
fn lock_time_is_never_before_the_ramp_reaches_the_floor() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..500 {
        let mut c = case(LockPath, |_| {});
        let offer = &mut c.request.offer;
        offer.minPrice = U256::from(next() % 50_000);
        offer.maxPrice = offer.minPrice + U256::from(next() % 2_000_000);
        offer.rampUpPeriod = (next() % 150) as u32;
        c.snap.now = START - 20 + next() % 120;
        c.snap.gas_price = u128::from(next() % 3);
        c.params.min_deadline = 0;
        let cycles = next() % 1_500_000_000;
        let decision = priced(&c, cycles, b"ok");
        let offer = &c.request.offer;
        let floor = lock_floor(
            c.params.min_mcycle_price,
            cycles,
            gas_cost(LockPath, &c.params, c.snap.gas_price),
        );
        let earliest = (c.snap.now.max(START)..=START + 200).find(|&t| offer.price_at(t) >= floor);
        match (decision, earliest) {
            (Decision::Lock { at, floor: f, .. }, Some(t)) => {
                assert_eq!(f, floor);
                assert_eq!(at, t, "{offer:?} floor {floor} now {}", c.snap.now);
                assert!(offer.price_at(at) >= floor);
            }
            (Decision::Skip(skip), None) => assert_eq!(skip.code, SkipCode::Unprofitable),
            (Decision::Skip(skip), Some(_)) => {
                assert_eq!(skip.code, SkipCode::GasCostAboveMaxPrice, "{skip}")
            }
            (decision, earliest) => {
                panic!("{decision:?} but the ramp reaches the floor at {earliest:?}")
            }
        }
    }
}

/// A locked order that missed its lock deadline is proven late only while it pays: the half of
/// the collateral it recovers (500,000 units) against its cycles at 100 units per mcycle, and
/// only before the final deadline (+400 s).
#[test]
fn late_proofs_are_made_only_when_the_recovered_collateral_pays() {
    let table = [
        ("pays, before the final deadline", 5_000_000_000, START + 300, true),
        ("exactly pays", 5_000_000_000, START + 399, true),
        ("one cycle too many", 5_000_000_001, START + 300, false),
        ("at the final deadline", 1_000, START + 400, false),
    ];
    let request = request();
    for (name, cycles, now, want) in table {
        assert_eq!(late_proof_pays(&request.offer, cycles, &params(), now), want, "{name}");
    }
}

/// A preflight that runs past its limit is skipped with the code of the bound the limit came
/// from (before: always S-011, naming max_mcycle_limit even when time was short).
#[test]
fn a_preflight_past_its_limit_names_the_tightest_bound() {
    let cases: Vec<(&str, FulfillmentType, Change, SkipCode)> = vec![
        ("max_mcycle_limit", LockPath, |c| c.params.max_mcycle_limit = 1, SkipCode::OverCycleLimit),
        ("the price", LockPath, |_| {}, SkipCode::Unprofitable),
        ("the time", LockPath, |c| c.params.peak_prove_khz = Some(1), SkipCode::ProverTooSlow),
        ("the reward", Race, |_| {}, SkipCode::UnprofitableCollateral),
    ];
    for (name, kind, change, want) in cases {
        let c = case(kind, change);
        let skip = over_limit(&c.request, c.kind, &c.params, &c.snap, "ran past");
        assert_eq!(skip.code, want, "{name}");
    }
}
