//! The scheduling policy as pure functions, so it can be unit-tested without a database.
//!
//! Which stream gets the next task (DESIGN.md §3):
//! 1. streams whose `running` is below `reserved`, largest unmet reservation first;
//! 2. then weighted fair share: the lowest `running / priority_multiplier`;
//! 3. ties: the stream whose oldest ready task has waited longest; then the lowest stream id.
//!
//! Inside a stream: the oldest job first, then the task nearest the root (smallest depth), then
//! insertion order. The SQLite backend calls [`rank`] directly; the PostgreSQL backend encodes the
//! same order in SQL (`ORDER BY greatest(reserved - running, 0) DESC, running / multiplier, …`),
//! and the conformance suite checks both behave alike.

use std::cmp::Ordering;
use std::time::Duration;

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
    /// When the oldest claimable task of the stream became ready (any monotonic unit).
    pub oldest_ready: i64,
}

impl StreamSnapshot {
    /// Reserved slots not yet in use.
    pub fn unmet_reservation(&self) -> i64 {
        (self.reserved - self.running).max(0)
    }

    /// Running tasks per unit of weight; the fair-share key.
    pub fn share(&self) -> f64 {
        self.running as f64 / self.priority_multiplier
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

    fn s(id: i64, running: i64, reserved: i64, mult: f64, oldest: i64) -> StreamSnapshot {
        StreamSnapshot {
            stream_id: id,
            running,
            reserved,
            priority_multiplier: mult,
            oldest_ready: oldest,
        }
    }

    fn order(mut v: Vec<StreamSnapshot>) -> Vec<i64> {
        rank(&mut v);
        v.into_iter().map(|s| s.stream_id).collect()
    }

    #[test]
    fn unmet_reservation_first_largest_first() {
        let v = vec![s(1, 0, 0, 100.0, 0), s(2, 1, 2, 1.0, 5), s(3, 0, 3, 1.0, 9)];
        assert_eq!(order(v), vec![3, 2, 1]);
    }

    #[test]
    fn met_reservation_falls_back_to_fair_share() {
        // Stream 2 has its 2 reserved slots filled: it competes on share (2/1) like everyone.
        let v = vec![s(1, 1, 0, 1.0, 0), s(2, 2, 2, 1.0, 0)];
        assert_eq!(order(v), vec![1, 2]);
    }

    #[test]
    fn weighted_fair_share() {
        // running/multiplier: 3/3 = 1 < 2/1 = 2.
        let v = vec![s(1, 2, 0, 1.0, 0), s(2, 3, 0, 3.0, 0)];
        assert_eq!(order(v), vec![2, 1]);
    }

    #[test]
    fn ties_go_to_longest_waiting_then_id() {
        let v = vec![s(1, 1, 0, 1.0, 50), s(2, 1, 0, 1.0, 10), s(3, 1, 0, 1.0, 10)];
        assert_eq!(order(v), vec![2, 3, 1]);
    }

    #[test]
    fn simulated_shares_converge_to_weights() {
        // Two saturated streams with weights 1 and 3 sharing 8 slots: the policy alone should
        // converge to 2 and 6 running.
        let mut running = [0i64, 0];
        let mult = [1.0, 3.0];
        for _ in 0..8 {
            let mut v: Vec<_> = (0..2).map(|i| s(i as i64, running[i], 0, mult[i], 0)).collect();
            rank(&mut v);
            running[v[0].stream_id as usize] += 1;
        }
        assert_eq!(running, [2, 6]);
    }

    #[test]
    fn low_priority_is_not_starved() {
        // A stream with a tiny weight still wins once it has nothing running and others do.
        let v = vec![s(1, 0, 0, 0.01, 100), s(2, 1, 0, 100.0, 0)];
        assert_eq!(order(v), vec![1, 2]);
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
