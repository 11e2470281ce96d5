//! The scheduling policy as pure functions, so it can be unit-tested without a database.
//!
//! Which stream gets the next task (docs/architecture.md, "Claim order"):
//! 1. streams whose `running` is below `reserved`, largest unmet reservation first;
//! 2. then weighted fair share by **recent service**: the lowest `served / priority_multiplier`,
//!    where `served` counts the tasks claimed from the stream, each worth less as it ages (halved
//!    every [`SERVICE_HALF_LIFE`]; see [`decayed`]). Comparing what streams were served, not
//!    what they run at this instant, is what makes one agent alternate between two backlogs
//!    instead of draining the older one first, and lets a newcomer (served nothing) go first;
//!    A stream whose most urgent job is **at risk** of missing its due time ([`at_risk`]) counts
//!    its weight [`BORROW_WEIGHT`] times while it is: it borrows agents from the others, but
//!    only up to that multiple of its share, so nobody starves;
//! 3. ties (shares within [`SHARE_RESOLUTION`]): the stream whose oldest ready task has waited
//!    longest; then the lowest stream id.
//!
//! Inside a stream: the job due first (none last), then the higher job priority, then the oldest
//! job, then the task nearest the root (smallest depth), then insertion order; the backends
//! read that order from one index (`tasks_claim`).
//!
//! The SQLite backend calls [`rank`] directly; the PostgreSQL backend encodes the same order in
//! SQL (`tiffin_claim_batch` in `postgres/functions.sql`), and the conformance suite checks both behave
//! alike.

use std::cmp::Ordering;
use std::time::Duration;

/// How fast past service is forgotten: a claimed task counts half as much after this long.
/// Long against the time between two claims of a stream, so the weights hold even with one
/// agent proving minute-long segments (at 5 claims per half-life, 2:1 weights still split
/// 195:105; with fewer the shares drift towards equal, never towards starving anyone). Short,
/// because a tenant that returns after others had the cluster to themselves gets every claim
/// until its recent service matches theirs, which takes up to one half-life.
pub const SERVICE_HALF_LIFE: Duration = Duration::from_secs(300);

/// Weighted shares closer than this (in tasks per unit of weight) count as equal, so that both
/// backends' floating-point arithmetic rank alike and the ties fall to the longest wait.
pub const SHARE_RESOLUTION: f64 = 1e-6;

/// While a stream's most urgent job is at risk of missing its due time, its weight counts this
/// many times: with one agent and one other busy stream of equal weight it gets 4 claims of 5
/// instead of 1 of 2, and the other never fewer than 1 of 5.
pub const BORROW_WEIGHT: f64 = 4.0;

/// A task's time when none of its kind finished within [`RECENT_TASKS`]: a segment proof on a
/// slow CPU. Only judges [`at_risk`]; measured times replace it as soon as tasks finish.
pub const ASSUMED_TASK_TIME: Duration = Duration::from_secs(60);

/// How many of a kind's most recently finished tasks give its measured task time.
pub const RECENT_TASKS: i64 = 20;

/// Whether a job due in `due_in_secs` (negative: overdue) is at risk: its `unfinished` tasks,
/// each taking `task_secs` (the measured mean of the kind's recent tasks), done one after the
/// other, would not fit in the time left. Conservative on purpose (no parallelism counted):
/// being at risk only lets the stream borrow up to [`BORROW_WEIGHT`], never everything.
pub fn at_risk(due_in_secs: f64, unfinished: i64, task_secs: f64) -> bool {
    due_in_secs <= unfinished.max(0) as f64 * task_secs.max(0.0)
}

/// What `served` service is worth `age` later: halved every `half_life`. Never negative, never
/// more than `served`, and exactly 0 for 0 (a stream never served).
pub fn decayed(served: f64, age: Duration, half_life: Duration) -> f64 {
    if served <= 0.0 {
        return 0.0;
    }
    let halves = age.as_secs_f64() / half_life.as_secs_f64().max(1e-3);
    // e^-700 is still a normal f64; PostgreSQL's exp() clamps the same way (it errors on
    // underflow instead of returning 0).
    served * (-halves * std::f64::consts::LN_2).max(-700.0).exp()
}

/// What the policy needs to know about one stream that has claimable work.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSnapshot {
    /// Stream row id (last tie-breaker, for determinism).
    pub stream_id: i64,
    /// Tasks currently leased from this stream.
    pub running: i64,
    /// Reserved concurrency.
    pub reserved: i64,
    /// Fair-share weight (> 0).
    pub priority_multiplier: f64,
    /// Recent service: the tasks claimed from this stream, [`decayed`] to now.
    pub served: f64,
    /// When the oldest claimable task of the stream became ready (any monotonic unit).
    pub oldest_ready: i64,
    /// Whether the stream's most urgent claimable job is [`at_risk`] of missing its due time.
    pub at_risk: bool,
}

impl StreamSnapshot {
    /// Reserved slots not yet in use.
    pub fn unmet_reservation(&self) -> i64 {
        (self.reserved - self.running).max(0)
    }

    /// The fair-share weight: the multiplier, [`BORROW_WEIGHT`] times while at risk.
    pub fn weight(&self) -> f64 {
        if self.at_risk {
            self.priority_multiplier * BORROW_WEIGHT
        } else {
            self.priority_multiplier
        }
    }

    /// Recent service per unit of weight, in steps of [`SHARE_RESOLUTION`]; the fair-share key.
    pub fn share(&self) -> f64 {
        (self.served / self.weight() / SHARE_RESOLUTION).round()
    }

    /// Books one more claimed task: what a claim of this stream changes for the next pick.
    pub fn charge(&mut self) {
        self.running += 1;
        self.served += 1.0;
    }
}

/// Orders two streams: `Less` means `a` should be served before `b`.
pub fn compare(a: &StreamSnapshot, b: &StreamSnapshot) -> Ordering {
    b.unmet_reservation()
        .cmp(&a.unmet_reservation())
        .then_with(|| a.share().total_cmp(&b.share()))
        .then_with(|| a.oldest_ready.cmp(&b.oldest_ready))
        .then_with(|| a.stream_id.cmp(&b.stream_id))
}

/// Sorts streams best first.
pub fn rank(streams: &mut [StreamSnapshot]) {
    streams.sort_by(compare);
}

/// Exponential retry backoff: `base * 2^(attempt-1)`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// Upper bound.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(500), max: Duration::from_secs(60) }
    }
}

impl Backoff {
    /// Delay before the attempt after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: i32) -> Duration {
        let exp = attempt.saturating_sub(1).clamp(0, 30) as u32;
        self.base.saturating_mul(1u32 << exp).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream with `running` leased of `reserved`, weight `mult`, recent service `served`,
    /// whose oldest ready task became ready at `oldest`.
    fn s(
        id: i64,
        running: i64,
        reserved: i64,
        mult: f64,
        served: f64,
        oldest: i64,
    ) -> StreamSnapshot {
        StreamSnapshot {
            stream_id: id,
            running,
            reserved,
            priority_multiplier: mult,
            served,
            oldest_ready: oldest,
            at_risk: false,
        }
    }

    fn risky(mut s: StreamSnapshot) -> StreamSnapshot {
        s.at_risk = true;
        s
    }

    fn order(mut v: Vec<StreamSnapshot>) -> Vec<i64> {
        rank(&mut v);
        v.into_iter().map(|s| s.stream_id).collect()
    }

    #[test]
    fn ranking_cases() {
        let cases: Vec<(&str, Vec<StreamSnapshot>, Vec<i64>)> = vec![
            (
                "unmet reservation first, largest first",
                vec![s(1, 0, 0, 100.0, 0.0, 0), s(2, 1, 2, 1.0, 9.0, 5), s(3, 0, 3, 1.0, 9.0, 9)],
                vec![3, 2, 1],
            ),
            (
                "a met reservation competes on share like everyone",
                vec![s(1, 1, 0, 1.0, 1.0, 0), s(2, 2, 2, 1.0, 2.0, 0)],
                vec![1, 2],
            ),
            (
                "weighted share: served / multiplier (3/3 = 1 < 2/1 = 2)",
                vec![s(1, 0, 0, 1.0, 2.0, 0), s(2, 0, 0, 3.0, 3.0, 0)],
                vec![2, 1],
            ),
            (
                "what runs this instant does not count, what was served does",
                vec![s(1, 0, 0, 1.0, 5.0, 0), s(2, 4, 0, 1.0, 1.0, 9)],
                vec![2, 1],
            ),
            (
                "a newcomer goes before an older, long-served backlog",
                vec![s(1, 0, 0, 1.0, 7.0, 0), s(2, 0, 0, 1.0, 0.0, 1_000)],
                vec![2, 1],
            ),
            (
                "equal shares: the longest wait, then the lowest id",
                vec![s(1, 1, 0, 1.0, 2.0, 50), s(2, 1, 0, 1.0, 2.0, 10), s(3, 0, 0, 2.0, 4.0, 10)],
                vec![2, 3, 1],
            ),
            (
                "shares within the resolution are equal",
                vec![s(1, 0, 0, 3.0, 6.0, 9), s(2, 0, 0, 1.0, 2.0 + SHARE_RESOLUTION / 4.0, 1)],
                vec![2, 1],
            ),
            (
                "at risk: the weight counts 4 times (8/4 = 2 < 3/1 = 3)",
                vec![s(1, 0, 0, 1.0, 3.0, 0), risky(s(2, 0, 0, 1.0, 8.0, 9))],
                vec![2, 1],
            ),
            (
                "at risk borrows only up to 4 times its share (13/4 > 3/1)",
                vec![s(1, 0, 0, 1.0, 3.0, 0), risky(s(2, 0, 0, 1.0, 13.0, 9))],
                vec![1, 2],
            ),
            (
                "an unmet reservation still goes before a stream at risk",
                vec![risky(s(1, 0, 0, 1.0, 0.0, 0)), s(2, 0, 1, 1.0, 9.0, 9)],
                vec![2, 1],
            ),
            (
                "a tiny weight served nothing still goes first",
                vec![s(1, 0, 0, 0.01, 0.0, 100), s(2, 1, 0, 100.0, 1.0, 0)],
                vec![1, 2],
            ),
        ];
        for (name, v, want) in cases {
            assert_eq!(order(v), want, "{name}");
        }
    }

    #[test]
    fn at_risk_cases() {
        let cases = [
            ("10 tasks of 6 s in 60 s: just at risk", 60.0, 10, 6.0, true),
            ("10 tasks of 5 s in 60 s: fits", 60.0, 10, 5.0, false),
            ("overdue, whatever is left", -1.0, 0, 9.0, true),
            ("nothing left and time to spare", 5.0, 0, 9.0, false),
            ("unmeasured kind (0 s) never at risk before its due time", 5.0, 100, 0.0, false),
        ];
        for (name, due_in, unfinished, task_secs, want) in cases {
            assert_eq!(at_risk(due_in, unfinished, task_secs), want, "{name}");
        }
    }

    #[test]
    fn decay_cases() {
        let h = Duration::from_secs(600);
        let cases = [
            ("never served stays 0", 0.0, Duration::ZERO, 0.0),
            ("no time, no decay", 4.0, Duration::ZERO, 4.0),
            ("one half-life halves", 4.0, h, 2.0),
            ("two half-lives quarter", 4.0, 2 * h, 1.0),
            ("half a half-life", 2.0, h / 2, std::f64::consts::SQRT_2),
        ];
        for (name, served, age, want) in cases {
            let got = decayed(served, age, h);
            assert!((got - want).abs() < 1e-9, "{name}: {got} != {want}");
        }
        // ages far beyond the half-life neither underflow to an error nor go negative
        let old = decayed(1e9, Duration::from_secs(100 * 365 * 86_400), h);
        assert!((0.0..1e-200).contains(&old), "{old}");
        assert_eq!(
            decayed(3.0, Duration::from_secs(5), Duration::ZERO),
            decayed(3.0, Duration::from_secs(5), Duration::from_millis(1))
        );
    }

    /// One worker claiming from saturated streams of the given weights, one claim every
    /// `step`: the index of the stream served by each claim. Stream `i` queued its work
    /// before stream `i + 1`.
    fn one_worker(weights: &[f64], claims: usize, step: Duration) -> Vec<usize> {
        let mut served = vec![0.0; weights.len()];
        let mut out = Vec::with_capacity(claims);
        for _ in 0..claims {
            for v in served.iter_mut() {
                *v = decayed(*v, step, SERVICE_HALF_LIFE);
            }
            let mut snaps: Vec<_> = (0..weights.len())
                .map(|i| s(i as i64, 0, 0, weights[i], served[i], i as i64))
                .collect();
            rank(&mut snaps);
            let best = snaps[0].stream_id as usize;
            served[best] += 1.0;
            out.push(best);
        }
        out
    }

    #[test]
    fn one_worker_alternates_between_equal_weights() {
        for step in [Duration::from_millis(1), Duration::from_secs(1), Duration::from_secs(90)] {
            let got = one_worker(&[1.0, 1.0], 40, step);
            assert_eq!(got[0], 0, "the tie goes to the longest wait");
            assert!(got.windows(2).all(|w| w[0] != w[1]), "{step:?}: {got:?}");
        }
    }

    #[test]
    fn one_worker_follows_the_weights() {
        for step in [Duration::from_millis(1), Duration::from_secs(1)] {
            let got = one_worker(&[1.0, 2.0], 60, step);
            let mut heavy = 0i64;
            for (n, &i) in got.iter().enumerate() {
                heavy += i as i64;
                let light = n as i64 + 1 - heavy;
                assert!((heavy - 2 * light).abs() <= 2, "{step:?}, claim {n}: {got:?}");
            }
            assert_eq!(heavy, 40, "{step:?}: {got:?}");
        }
        // a minute per claim (a slow prover): 5 claims per half-life, still close to 2:1
        let got = one_worker(&[1.0, 2.0], 300, Duration::from_secs(60));
        let heavy = got.iter().filter(|&&i| i == 1).count();
        assert!((190..=200).contains(&heavy), "{heavy} of 300");
    }

    #[test]
    fn weights_fade_rather_than_starve_when_claims_are_rare() {
        // a claim per half-life: the decay forgets faster than the weights can tell
        let got = one_worker(&[1.0, 3.0], 100, SERVICE_HALF_LIFE);
        let light = got.iter().filter(|&&i| i == 0).count();
        assert!((25..=50).contains(&light), "{light} of 100");
    }

    #[test]
    fn a_newcomer_is_served_at_once_then_shares() {
        // stream 0 was served alone for a while, then stream 1 arrives
        let step = Duration::from_secs(1);
        let mut served = 0.0;
        for _ in 0..50 {
            served = decayed(served, step, SERVICE_HALF_LIFE) + 1.0;
        }
        let v = vec![s(0, 0, 0, 1.0, served, 0), s(1, 0, 0, 1.0, 0.0, 100)];
        assert_eq!(order(v), vec![1, 0]);
    }

    #[test]
    fn simulated_shares_converge_to_weights() {
        // Two saturated streams with weights 1 and 3 sharing 8 slots: the policy alone should
        // converge to 2 and 6 of every 8 claims.
        let mut served = [0.0f64, 0.0];
        let mut running = [0i64, 0];
        let mult = [1.0, 3.0];
        for _ in 0..8 {
            let mut v: Vec<_> =
                (0..2).map(|i| s(i as i64, running[i], 0, mult[i], served[i], 0)).collect();
            rank(&mut v);
            let best = v[0].stream_id as usize;
            running[best] += 1;
            served[best] += 1.0;
        }
        assert_eq!(running, [2, 6]);
    }

    #[test]
    fn charge_books_a_claim() {
        let mut a = s(1, 2, 3, 2.0, 4.0, 0);
        a.charge();
        assert_eq!((a.running, a.served, a.unmet_reservation()), (3, 5.0, 0));
        assert_eq!(a.share(), 2.5 / SHARE_RESOLUTION);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff { base: Duration::from_millis(100), max: Duration::from_secs(1) };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(3), Duration::from_millis(400));
        assert_eq!(b.delay(10), Duration::from_secs(1));
        assert_eq!(b.delay(1000), Duration::from_secs(1));
    }
}
