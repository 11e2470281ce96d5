//! Capacity: how much locked work the cluster can still take, and in which order to commit to
//! (and price) candidate orders.
//!
//! Pure policy: no I/O and no clock; `now` is seconds since the epoch. The broker must never
//! lock more than it can prove before the deadlines, so [`admit`] counts the work it has locked
//! but not finished. With a known peak speed (`peak_prove_khz`) the cluster is modelled as a
//! serial prover: each order's proof takes `ceil(cycles / 1000 / khz)` seconds, one after the
//! other.
//!
//! | Code  | Outcome                    | Meaning                                       |
//! |-------|----------------------------|-----------------------------------------------|
//! | C-001 | `Wait(AtConcurrencyLimit)` | `max_concurrent_proofs` orders are committed  |
//! | C-002 | `Wait(Backlog)`            | the committed work would make this order late |
//! | C-003 | `Drop(CannotFinish)`       | even an idle cluster cannot prove it in time  |
//! | C-004 | `Wait(SpeedUnknown)`       | no proving speed is known: nothing is locked  |

use alloy::primitives::{U256, U512};
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The capacity settings (the lead maps the configuration onto these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapacityParams {
    /// The most orders committed (locked or being proven) at once.
    pub max_concurrent_proofs: u32,
    /// The cluster's proving speed in kHz (configured or measured); `None` or 0: unknown, and
    /// then nothing is admitted.
    pub peak_prove_khz: Option<u64>,
    /// Seconds kept free before an expiry for the fulfilment to land (buffer and submission).
    pub block_deadline_buffer_secs: u64,
}

/// An order the broker has committed to and not finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedWork {
    /// Its cycle count.
    pub cycles: u64,
    /// When its proof started, if it has.
    pub started_at: Option<u64>,
    /// When it must be fulfilled by.
    pub expiry: u64,
}

/// Why an order must wait for capacity (it may fit later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitReason {
    /// C-001: `max_concurrent_proofs` orders are already committed.
    AtConcurrencyLimit,
    /// C-002: behind the committed work the order would finish after its expiry (less the
    /// buffer); it would fit on an idle cluster.
    Backlog,
    /// C-004: no proving speed is known yet, so no deadline can be checked.
    SpeedUnknown,
}

/// Why an order can never be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// C-003: even started now on an idle cluster, its proof would finish after its expiry
    /// (less the buffer).
    CannotFinish,
}

impl WaitReason {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::AtConcurrencyLimit => "C-001",
            Self::Backlog => "C-002",
            Self::SpeedUnknown => "C-004",
        }
    }
}

impl DropReason {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::CannotFinish => "C-003",
        }
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = match self {
            Self::AtConcurrencyLimit => "max_concurrent_proofs orders are already committed",
            Self::Backlog => "the committed work would finish this order too late",
            Self::SpeedUnknown => "no proving speed is known yet (peak_prove_khz or measured)",
        };
        write!(f, "{}: {message}", self.code())
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = match self {
            Self::CannotFinish => {
                "it cannot be proven before its expiry at peak_prove_khz, even on an idle cluster"
            }
        };
        write!(f, "{}: {message}", self.code())
    }
}

/// Whether to commit to an order now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Commit to it.
    Admit,
    /// Not now; ask again when committed work finishes.
    Wait(WaitReason),
    /// Never: forget it.
    Drop(DropReason),
}

/// Seconds to prove `cycles` at `khz`, rounded up; `None` without a (non-zero) speed.
pub fn proving_secs(cycles: u64, khz: Option<u64>) -> Option<u64> {
    khz.filter(|&k| k > 0).map(|k| cycles.div_ceil(k.saturating_mul(1_000)))
}

/// When a serial cluster at `khz` finishes the committed work: from the earliest start (or now
/// if none started) plus every order's proving time, and never before now.
pub fn busy_until(committed: &[CommittedWork], khz: u64, now: u64) -> u64 {
    let start = committed.iter().filter_map(|w| w.started_at).min().unwrap_or(now);
    let work = committed
        .iter()
        .map(|w| proving_secs(w.cycles, Some(khz)).unwrap_or(0))
        .fold(0u64, u64::saturating_add);
    now.max(start.saturating_add(work))
}

/// Whether to commit to an order of `cycles` cycles that must be fulfilled by `expiry`, given
/// the work already committed.
///
/// Drop first if the order can never fit (now + its proving time + buffer > expiry; without a
/// speed, now + buffer > expiry), then Wait at the concurrency limit, without a speed, or while
/// the backlog would make it late, else Admit.
pub fn admit(
    committed: &[CommittedWork],
    cycles: u64,
    expiry: u64,
    params: &CapacityParams,
    now: u64,
) -> Admission {
    let khz = params.peak_prove_khz.filter(|&k| k > 0);
    let buffer = params.block_deadline_buffer_secs;
    let own = proving_secs(cycles, khz).unwrap_or(0);
    if now.saturating_add(own).saturating_add(buffer) > expiry {
        return Admission::Drop(DropReason::CannotFinish);
    }
    if committed.len() >= params.max_concurrent_proofs as usize {
        return Admission::Wait(WaitReason::AtConcurrencyLimit);
    }
    let Some(khz) = khz else {
        return Admission::Wait(WaitReason::SpeedUnknown);
    };
    let done = busy_until(committed, khz, now).saturating_add(own);
    if done.saturating_add(buffer) > expiry {
        return Admission::Wait(WaitReason::Backlog);
    }
    Admission::Admit
}

/// An order waiting to be priced or committed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The request id (ties are broken by it, ascending).
    pub id: U256,
    /// When it must be fulfilled by.
    pub expiry: u64,
    /// Its current price (wei), or its reward on the secondary path.
    pub price: U256,
    /// Its cycle count (0 if not yet executed).
    pub cycles: u64,
    /// Whether its requestor is a priority requestor.
    pub priority: bool,
    /// When the broker first saw it.
    pub observed_at: u64,
}

/// An unknown priority mode name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority mode {0:?}; expected one of: {1}")]
pub struct UnknownMode(pub String, pub &'static str);

/// The order in which priced orders are committed to (locked or raced).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitmentPriority {
    /// A random order (deterministic from a seed).
    Random,
    /// The earliest expiry first.
    ShortestExpiry,
    /// The highest current price first.
    Price,
    /// The highest price per cycle first.
    CyclePrice,
    /// The least slack (expiry − now − proving time) first; shortest expiry without a speed.
    TightestDeadline,
}

/// The order in which new orders are priced (preflighted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PricingPriority {
    /// A random order (deterministic from a seed).
    Random,
    /// The first observed first.
    ObservationTime,
    /// The earliest expiry first.
    ShortestExpiry,
    /// The highest offered price first.
    Price,
    /// The highest price per cycle first; before a preflight the cycles are unknown, so the
    /// offered price ranks.
    CyclePrice,
}

impl FromStr for CommitmentPriority {
    type Err = UnknownMode;

    /// Parses the configuration's snake_case names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "random" => Ok(Self::Random),
            "shortest_expiry" => Ok(Self::ShortestExpiry),
            "price" => Ok(Self::Price),
            "cycle_price" => Ok(Self::CyclePrice),
            "tightest_deadline" => Ok(Self::TightestDeadline),
            _ => Err(UnknownMode(
                s.to_string(),
                "random, shortest_expiry, price, cycle_price, tightest_deadline",
            )),
        }
    }
}

impl FromStr for PricingPriority {
    type Err = UnknownMode;

    /// Parses the configuration's snake_case names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "random" => Ok(Self::Random),
            "observation_time" => Ok(Self::ObservationTime),
            "shortest_expiry" => Ok(Self::ShortestExpiry),
            "price" => Ok(Self::Price),
            "cycle_price" => Ok(Self::CyclePrice),
            _ => Err(UnknownMode(
                s.to_string(),
                "random, observation_time, shortest_expiry, price, cycle_price",
            )),
        }
    }
}

/// A deterministic shuffle key for `id` under `seed` (splitmix64 over the id's limbs).
fn shuffle_key(id: &U256, seed: u64) -> u64 {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    id.as_limbs().iter().fold(mix(seed), |acc, &limb| mix(acc ^ limb))
}

/// Price per cycle, descending, compared exactly (`a.price / a.cycles` vs `b.price /
/// b.cycles`, with 0 cycles counted as 1).
fn by_cycle_price(a: &Candidate, b: &Candidate) -> Ordering {
    // a ranks first when a.price / a.cycles > b.price / b.cycles, i.e. when
    // a.price * b.cycles > b.price * a.cycles (exact in 512 bits).
    let a_rate = U512::from(a.price) * U512::from(b.cycles.max(1));
    let b_rate = U512::from(b.price) * U512::from(a.cycles.max(1));
    b_rate.cmp(&a_rate)
}

/// Seconds left after proving `c` before its expiry (negative when late); expiry − now without
/// a speed.
fn slack(c: &Candidate, now: u64, khz: Option<u64>) -> i128 {
    let proving = proving_secs(c.cycles, khz).unwrap_or(0);
    i128::from(c.expiry) - i128::from(now) - i128::from(proving)
}

/// Sorts `candidates` in the order to commit to them: priority requestors first, then by
/// `mode`, ties by id. `seed` drives [`CommitmentPriority::Random`]; `khz` the slack of
/// [`CommitmentPriority::TightestDeadline`].
pub fn order_for_commitment(
    candidates: &mut [Candidate],
    mode: CommitmentPriority,
    now: u64,
    khz: Option<u64>,
    seed: u64,
) {
    let khz = khz.filter(|&k| k > 0);
    candidates.sort_by(|a, b| {
        let by_mode = match mode {
            CommitmentPriority::Random => shuffle_key(&a.id, seed).cmp(&shuffle_key(&b.id, seed)),
            CommitmentPriority::ShortestExpiry => a.expiry.cmp(&b.expiry),
            CommitmentPriority::Price => b.price.cmp(&a.price),
            CommitmentPriority::CyclePrice => by_cycle_price(a, b),
            CommitmentPriority::TightestDeadline => {
                slack(a, now, khz).cmp(&slack(b, now, khz)).then(a.expiry.cmp(&b.expiry))
            }
        };
        b.priority.cmp(&a.priority).then(by_mode).then(a.id.cmp(&b.id))
    });
}

/// Sorts `candidates` in the order to price them: priority requestors first, then by `mode`,
/// ties by id. `seed` drives [`PricingPriority::Random`].
pub fn order_for_pricing(candidates: &mut [Candidate], mode: PricingPriority, seed: u64) {
    candidates.sort_by(|a, b| {
        let by_mode = match mode {
            PricingPriority::Random => shuffle_key(&a.id, seed).cmp(&shuffle_key(&b.id, seed)),
            PricingPriority::ObservationTime => a.observed_at.cmp(&b.observed_at),
            PricingPriority::ShortestExpiry => a.expiry.cmp(&b.expiry),
            PricingPriority::Price | PricingPriority::CyclePrice => b.price.cmp(&a.price),
        };
        b.priority.cmp(&a.priority).then(by_mode).then(a.id.cmp(&b.id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 10_000;

    fn params(max: u32, khz: Option<u64>) -> CapacityParams {
        CapacityParams {
            max_concurrent_proofs: max,
            peak_prove_khz: khz,
            block_deadline_buffer_secs: 20,
        }
    }

    fn work(cycles: u64, started_at: Option<u64>) -> CommittedWork {
        CommittedWork { cycles, started_at, expiry: NOW + 10_000 }
    }

    #[test]
    fn proving_time_rounds_up() {
        assert_eq!(proving_secs(1, Some(1)), Some(1));
        assert_eq!(proving_secs(1_000, Some(1)), Some(1));
        assert_eq!(proving_secs(1_001, Some(1)), Some(2));
        assert_eq!(proving_secs(0, Some(5)), Some(0));
        assert_eq!(proving_secs(1_000, Some(0)), None);
        assert_eq!(proving_secs(1_000, None), None);
    }

    #[test]
    fn busy_until_is_serial_from_the_earliest_start() {
        // 1 kHz: 100,000 cycles take 100 s.
        let started = [work(100_000, Some(NOW - 30)), work(100_000, None)];
        assert_eq!(busy_until(&started, 1, NOW), NOW - 30 + 200);
        assert_eq!(busy_until(&[work(100_000, None)], 1, NOW), NOW + 100);
        assert_eq!(busy_until(&[], 1, NOW), NOW);
        // Work that should have finished long ago does not make the cluster free in the past.
        assert_eq!(busy_until(&[work(100_000, Some(NOW - 500))], 1, NOW), NOW);
    }

    #[test]
    fn admission_table() {
        use Admission::*;
        // 1 kHz; buffer 20 s; the new order takes 100 s.
        let one_running = vec![work(100_000, Some(NOW - 30))];
        let table: Vec<(&str, Vec<CommittedWork>, CapacityParams, u64, Admission)> = vec![
            // Failed before the fix: without a speed everything was admitted, even past the
            // buffer (a requestor then slashed the broker).
            (
                "idle, no speed",
                vec![],
                params(2, None),
                NOW + 1_000,
                Wait(WaitReason::SpeedUnknown),
            ),
            (
                "no speed, inside the buffer",
                vec![],
                params(2, None),
                NOW + 19,
                Drop(DropReason::CannotFinish),
            ),
            ("idle, fits", vec![], params(2, Some(1)), NOW + 120, Admit),
            (
                "idle, one second short",
                vec![],
                params(2, Some(1)),
                NOW + 119,
                Drop(DropReason::CannotFinish),
            ),
            (
                "at the limit",
                vec![work(1, None), work(1, None)],
                params(2, None),
                NOW + 1_000,
                Wait(WaitReason::AtConcurrencyLimit),
            ),
            (
                "limit zero",
                vec![],
                params(0, None),
                NOW + 1_000,
                Wait(WaitReason::AtConcurrencyLimit),
            ),
            (
                "drop beats the limit",
                vec![work(1, None), work(1, None)],
                params(2, Some(1)),
                NOW + 50,
                Drop(DropReason::CannotFinish),
            ),
            // Running since NOW-30 for 100 s: free at NOW+70, done at NOW+170, +20 buffer.
            ("behind the backlog, fits", one_running.clone(), params(2, Some(1)), NOW + 190, Admit),
            (
                "behind the backlog, late",
                one_running.clone(),
                params(2, Some(1)),
                NOW + 189,
                Wait(WaitReason::Backlog),
            ),
            (
                "no speed behind a backlog",
                one_running.clone(),
                params(2, None),
                NOW + 1_000,
                Wait(WaitReason::SpeedUnknown),
            ),
            (
                "khz 0 is no speed",
                one_running,
                params(2, Some(0)),
                NOW + 1_000,
                Wait(WaitReason::SpeedUnknown),
            ),
            (
                "two queued",
                vec![work(100_000, None), work(100_000, None)],
                params(3, Some(1)),
                NOW + 319,
                Wait(WaitReason::Backlog),
            ),
            (
                "two queued, fits",
                vec![work(100_000, None), work(100_000, None)],
                params(3, Some(1)),
                NOW + 320,
                Admit,
            ),
        ];
        for (name, committed, params, expiry, expected) in table {
            assert_eq!(admit(&committed, 100_000, expiry, &params, NOW), expected, "{name}");
        }
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(WaitReason::AtConcurrencyLimit.code(), "C-001");
        assert_eq!(WaitReason::Backlog.code(), "C-002");
        assert_eq!(DropReason::CannotFinish.code(), "C-003");
        assert_eq!(WaitReason::SpeedUnknown.code(), "C-004");
        assert!(WaitReason::Backlog.to_string().starts_with("C-002: "));
        assert!(DropReason::CannotFinish.to_string().contains("peak_prove_khz"));
    }

    fn candidate(
        id: u64,
        expiry: u64,
        price: u64,
        cycles: u64,
        priority: bool,
        observed_at: u64,
    ) -> Candidate {
        Candidate {
            id: U256::from(id),
            expiry,
            price: U256::from(price),
            cycles,
            priority,
            observed_at,
        }
    }

    /// (id, expiry, price, cycles, priority, observed_at)
    fn candidates() -> Vec<Candidate> {
        vec![
            candidate(1, NOW + 500, 100, 1_000_000, false, 5),
            candidate(2, NOW + 100, 300, 9_000_000, false, 3),
            candidate(3, NOW + 300, 200, 1_000_000, false, 4),
            candidate(4, NOW + 900, 50, 100_000, true, 9),
            candidate(5, NOW + 200, 200, 400_000, false, 1),
        ]
    }

    fn ids(candidates: &[Candidate]) -> Vec<u64> {
        candidates.iter().map(|c| c.id.to::<u64>()).collect()
    }

    #[test]
    fn commitment_order_table() {
        use CommitmentPriority::*;
        // At 1 kHz the slack is expiry - now - cycles/1000: 1: 500-1000, 2: 100-9000,
        // 3: 300-1000, 5: 200-400.
        let table: &[(CommitmentPriority, Option<u64>, [u64; 5])] = &[
            (ShortestExpiry, None, [4, 2, 5, 3, 1]),
            (Price, None, [4, 2, 3, 5, 1]),
            // per cycle: 1: 1e-4, 2: 3.3e-5, 3: 2e-4, 5: 5e-4
            (CyclePrice, None, [4, 5, 3, 1, 2]),
            (TightestDeadline, Some(1), [4, 2, 3, 1, 5]),
            (TightestDeadline, None, [4, 2, 5, 3, 1]),
            (TightestDeadline, Some(0), [4, 2, 5, 3, 1]),
        ];
        for &(mode, khz, expected) in table {
            let mut list = candidates();
            order_for_commitment(&mut list, mode, NOW, khz, 0);
            assert_eq!(ids(&list), expected, "{mode:?} {khz:?}");
        }
    }

    #[test]
    fn pricing_order_table() {
        use PricingPriority::*;
        let table: &[(PricingPriority, [u64; 5])] =
            &[(ObservationTime, [4, 5, 2, 3, 1]), (ShortestExpiry, [4, 2, 5, 3, 1])];
        for &(mode, expected) in table {
            let mut list = candidates();
            order_for_pricing(&mut list, mode, 0);
            assert_eq!(ids(&list), expected, "{mode:?}");
        }
    }

    #[test]
    fn ties_break_by_id() {
        let mut list = vec![candidate(9, NOW, 1, 1, false, 0), candidate(3, NOW, 1, 1, false, 0)];
        order_for_commitment(&mut list, CommitmentPriority::Price, NOW, None, 0);
        assert_eq!(ids(&list), [3, 9]);
        order_for_pricing(&mut list, PricingPriority::ShortestExpiry, 0);
        assert_eq!(ids(&list), [3, 9]);
    }

    #[test]
    fn cycle_price_handles_zero_cycles_and_huge_prices() {
        let mut list = vec![
            Candidate { price: U256::MAX, ..candidate(1, NOW, 0, u64::MAX, false, 0) },
            Candidate { price: U256::MAX, ..candidate(2, NOW, 0, 0, false, 0) },
            candidate(3, NOW, 0, 0, false, 0),
        ];
        order_for_commitment(&mut list, CommitmentPriority::CyclePrice, NOW, None, 0);
        assert_eq!(ids(&list), [2, 1, 3]);
    }

    #[test]
    fn random_order_is_deterministic_per_seed_and_keeps_priority_first() {
        let many: Vec<Candidate> = (0..40).map(|i| candidate(i, NOW, 0, 0, i == 17, 0)).collect();
        let order = |seed| {
            let mut list = many.clone();
            order_for_commitment(&mut list, CommitmentPriority::Random, NOW, None, seed);
            ids(&list)
        };
        assert_eq!(order(7), order(7));
        assert_ne!(order(7), order(8));
        assert_eq!(order(7)[0], 17);
        let mut sorted = order(7);
        sorted.sort_unstable();
        assert_eq!(sorted, (0..40).collect::<Vec<_>>());
        let mut priced = many.clone();
        order_for_pricing(&mut priced, PricingPriority::Random, 7);
        assert_eq!(ids(&priced)[0], 17);
        assert_ne!(ids(&priced), (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn modes_parse_from_config_names() {
        let commitment = [
            ("random", CommitmentPriority::Random),
            ("shortest_expiry", CommitmentPriority::ShortestExpiry),
            ("price", CommitmentPriority::Price),
            ("cycle_price", CommitmentPriority::CyclePrice),
            ("tightest_deadline", CommitmentPriority::TightestDeadline),
        ];
        for (name, mode) in commitment {
            assert_eq!(name.parse::<CommitmentPriority>(), Ok(mode));
        }
        let pricing = [
            ("random", PricingPriority::Random),
            ("observation_time", PricingPriority::ObservationTime),
            ("shortest_expiry", PricingPriority::ShortestExpiry),
        ];
        for (name, mode) in pricing {
            assert_eq!(name.parse::<PricingPriority>(), Ok(mode));
        }
        let err = "Price".parse::<CommitmentPriority>().unwrap_err();
        assert!(err.to_string().contains("cycle_price"), "{err}");
        assert!("observation_time".parse::<CommitmentPriority>().is_err());
    }
}
