//! A circuit breaker that stops new locks after repeated proving failures, or while the
//! cluster reports itself unhealthy.
//!
//! Pure policy: no I/O and no clock; every method takes `now` (seconds since the epoch).
//!
//! - **Closed**: locks allowed; `max_consecutive_failures` failures in a row open it.
//! - **Open**: no locks for `cool_down_secs` after the last failure; then it goes half-open.
//! - **Half-open**: one probe lock is allowed ([`CircuitBreaker::record_lock`] takes it); a
//!   success closes the breaker, a failure re-opens it.
//!
//! Independently, an unhealthy report ([`CircuitBreaker::record_health`]) blocks locks until a
//! healthy one.
//!
//! | Code  | [`OpenReason`]        | Meaning                                              |
//! |-------|-----------------------|------------------------------------------------------|
//! | B-001 | `ConsecutiveFailures` | `max_consecutive_failures` proofs failed in a row    |
//! | B-002 | `ProbeFailed`         | the half-open probe failed                           |
//! | B-003 | `ProbeInFlight`       | half-open, waiting for the probe's result            |
//! | B-004 | `Unhealthy`           | the cluster reported itself unhealthy                |

use std::fmt;

/// The breaker's settings (the lead maps the configuration onto these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerParams {
    /// Failures in a row that open the breaker; 0 never opens it on failures.
    pub max_consecutive_failures: u32,
    /// Seconds the breaker stays open after the last failure before allowing a probe.
    pub cool_down_secs: u64,
}

/// Why the breaker refuses locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenReason {
    /// B-001: this many proofs failed in a row.
    ConsecutiveFailures(u32),
    /// B-002: the probe lock after a cool-down failed.
    ProbeFailed,
    /// B-003: the probe lock is being proven; no other lock until it succeeds or fails.
    ProbeInFlight,
    /// B-004: the cluster reported itself unhealthy at this time.
    Unhealthy {
        /// When the first unhealthy report (since the last healthy one) came.
        since: u64,
    },
}

impl OpenReason {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::ConsecutiveFailures(_) => "B-001",
            Self::ProbeFailed => "B-002",
            Self::ProbeInFlight => "B-003",
            Self::Unhealthy { .. } => "B-004",
        }
    }
}

impl fmt::Display for OpenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code();
        match self {
            Self::ConsecutiveFailures(n) => write!(f, "{code}: {n} proofs failed in a row"),
            Self::ProbeFailed => write!(f, "{code}: the probe after the cool-down failed"),
            Self::ProbeInFlight => write!(f, "{code}: waiting for the probe lock's proof"),
            Self::Unhealthy { since } => {
                write!(f, "{code}: the cluster is unhealthy since {since}")
            }
        }
    }
}

/// The breaker refuses locks: why, and until when if that is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker open ({reason}){}", until_suffix(*until))]
pub struct BreakerOpen {
    /// Why.
    pub reason: OpenReason,
    /// When a probe lock will be allowed (`None`: when a result or a healthy report comes).
    pub until: Option<u64>,
}

fn until_suffix(until: Option<u64>) -> String {
    until.map(|t| format!(" until {t}")).unwrap_or_default()
}

/// The breaker's state as seen at some time, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Locks allowed; this many failures in a row so far.
    Closed {
        /// Failures in a row since the last success.
        failures: u32,
    },
    /// No locks until `until`.
    Open {
        /// Why it opened.
        reason: OpenReason,
        /// When it goes half-open.
        until: u64,
    },
    /// One probe lock allowed; `probe_locked` once it is taken.
    HalfOpen {
        /// Whether the probe lock has been sent.
        probe_locked: bool,
    },
}

/// The circuit breaker. See the module docs for its states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitBreaker {
    params: BreakerParams,
    state: BreakerState,
    unhealthy_since: Option<u64>,
}

impl CircuitBreaker {
    /// A closed breaker with a healthy cluster.
    pub fn new(params: BreakerParams) -> Self {
        Self { params, state: BreakerState::Closed { failures: 0 }, unhealthy_since: None }
    }

    /// The failure state at `now`: an open breaker whose cool-down has ended is half-open.
    pub fn state(&self, now: u64) -> BreakerState {
        match self.state {
            BreakerState::Open { until, .. } if now >= until => {
                BreakerState::HalfOpen { probe_locked: false }
            }
            state => state,
        }
    }

    /// Whether the cluster is currently reported unhealthy (since when).
    pub fn unhealthy_since(&self) -> Option<u64> {
        self.unhealthy_since
    }

    /// Whether a new lock may be sent at `now`. In the half-open state this allows the probe;
    /// call [`record_lock`](Self::record_lock) when it is sent so that no second one follows.
    pub fn allows_locking(&self, now: u64) -> Result<(), BreakerOpen> {
        if let Some(since) = self.unhealthy_since {
            return Err(BreakerOpen { reason: OpenReason::Unhealthy { since }, until: None });
        }
        match self.state(now) {
            BreakerState::Closed { .. } | BreakerState::HalfOpen { probe_locked: false } => Ok(()),
            BreakerState::Open { reason, until } => Err(BreakerOpen { reason, until: Some(until) }),
            BreakerState::HalfOpen { probe_locked: true } => {
                Err(BreakerOpen { reason: OpenReason::ProbeInFlight, until: None })
            }
        }
    }

    /// A lock was sent at `now`: in the half-open state it is the probe.
    pub fn record_lock(&mut self, now: u64) {
        if let BreakerState::HalfOpen { .. } = self.state(now) {
            self.state = BreakerState::HalfOpen { probe_locked: true };
        }
    }

    /// A proof failed at `now`: counts towards opening, re-opens a half-open breaker, and
    /// restarts the cool-down of an open one.
    pub fn record_failure(&mut self, now: u64) {
        let until = now.saturating_add(self.params.cool_down_secs);
        self.state = match self.state(now) {
            BreakerState::Closed { failures } => {
                let failures = failures.saturating_add(1);
                let max = self.params.max_consecutive_failures;
                if max > 0 && failures >= max {
                    BreakerState::Open { reason: OpenReason::ConsecutiveFailures(failures), until }
                } else {
                    BreakerState::Closed { failures }
                }
            }
            BreakerState::HalfOpen { .. } => {
                BreakerState::Open { reason: OpenReason::ProbeFailed, until }
            }
            BreakerState::Open { reason, .. } => BreakerState::Open { reason, until },
        };
    }

    /// A proof succeeded at `now`: resets the failure count and closes a half-open breaker. An
    /// open breaker finishes its cool-down.
    pub fn record_success(&mut self, now: u64) {
        match self.state(now) {
            BreakerState::Closed { .. } | BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::Closed { failures: 0 };
            }
            BreakerState::Open { .. } => {}
        }
    }

    /// The cluster's health at `now`: unhealthy blocks locks until a healthy report.
    pub fn record_health(&mut self, healthy: bool, now: u64) {
        self.unhealthy_since =
            if healthy { None } else { Some(self.unhealthy_since.unwrap_or(now)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_000;

    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerParams { max_consecutive_failures: 3, cool_down_secs: 60 })
    }

    fn open_breaker() -> CircuitBreaker {
        let mut b = breaker();
        (0..3).for_each(|i| b.record_failure(T + i));
        b
    }

    fn reason(b: &CircuitBreaker, now: u64) -> Option<OpenReason> {
        b.allows_locking(now).err().map(|e| e.reason)
    }

    #[test]
    fn closed_until_enough_failures_in_a_row() {
        let mut b = breaker();
        assert_eq!(b.allows_locking(T), Ok(()));
        b.record_failure(T);
        b.record_failure(T + 1);
        assert_eq!(b.state(T + 1), BreakerState::Closed { failures: 2 });
        assert_eq!(b.allows_locking(T + 1), Ok(()));
        b.record_failure(T + 2);
        let open = b.allows_locking(T + 2).unwrap_err();
        assert_eq!(
            open,
            BreakerOpen { reason: OpenReason::ConsecutiveFailures(3), until: Some(T + 62) }
        );
        assert!(open.to_string().contains("B-001"), "{open}");
        assert!(open.to_string().ends_with("until 1062"), "{open}");
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut b = breaker();
        b.record_failure(T);
        b.record_failure(T + 1);
        b.record_success(T + 2);
        b.record_failure(T + 3);
        b.record_failure(T + 4);
        assert_eq!(b.allows_locking(T + 4), Ok(()));
        assert_eq!(b.state(T + 4), BreakerState::Closed { failures: 2 });
    }

    #[test]
    fn zero_max_never_opens_on_failures() {
        let mut b =
            CircuitBreaker::new(BreakerParams { max_consecutive_failures: 0, cool_down_secs: 60 });
        (0..100).for_each(|i| b.record_failure(T + i));
        assert_eq!(b.allows_locking(T + 100), Ok(()));
    }

    #[test]
    fn open_until_the_cool_down_ends_then_half_open() {
        let b = open_breaker();
        assert_eq!(reason(&b, T + 61), Some(OpenReason::ConsecutiveFailures(3)));
        assert_eq!(b.state(T + 62), BreakerState::HalfOpen { probe_locked: false });
        assert_eq!(b.allows_locking(T + 62), Ok(()));
    }

    #[test]
    fn half_open_allows_one_probe() {
        let mut b = open_breaker();
        b.record_lock(T + 70);
        assert_eq!(b.state(T + 70), BreakerState::HalfOpen { probe_locked: true });
        let err = b.allows_locking(T + 71).unwrap_err();
        assert_eq!(err, BreakerOpen { reason: OpenReason::ProbeInFlight, until: None });
        // Locks while closed do not change anything.
        let mut closed = breaker();
        closed.record_lock(T);
        assert_eq!(closed.state(T), BreakerState::Closed { failures: 0 });
    }

    #[test]
    fn probe_success_closes() {
        let mut b = open_breaker();
        b.record_lock(T + 70);
        b.record_success(T + 100);
        assert_eq!(b.state(T + 100), BreakerState::Closed { failures: 0 });
        assert_eq!(b.allows_locking(T + 100), Ok(()));
    }

    #[test]
    fn probe_failure_reopens() {
        let mut b = open_breaker();
        b.record_lock(T + 70);
        b.record_failure(T + 100);
        let err = b.allows_locking(T + 100).unwrap_err();
        assert_eq!(err, BreakerOpen { reason: OpenReason::ProbeFailed, until: Some(T + 160) });
        assert_eq!(b.allows_locking(T + 160), Ok(()));
    }

    #[test]
    fn failures_while_open_restart_the_cool_down_and_successes_do_not_close() {
        let mut b = open_breaker();
        b.record_failure(T + 30);
        b.record_success(T + 40);
        assert_eq!(reason(&b, T + 62), Some(OpenReason::ConsecutiveFailures(3)));
        assert_eq!(b.allows_locking(T + 90), Ok(()));
    }

    #[test]
    fn a_result_after_the_cool_down_counts_as_the_probe() {
        let mut b = open_breaker();
        b.record_success(T + 80);
        assert_eq!(b.state(T + 80), BreakerState::Closed { failures: 0 });
        let mut b = open_breaker();
        b.record_failure(T + 80);
        assert_eq!(reason(&b, T + 80), Some(OpenReason::ProbeFailed));
    }

    #[test]
    fn unhealthy_blocks_until_healthy() {
        let mut b = breaker();
        b.record_health(false, T);
        b.record_health(false, T + 10);
        assert_eq!(b.unhealthy_since(), Some(T));
        let err = b.allows_locking(T + 20).unwrap_err();
        assert_eq!(err, BreakerOpen { reason: OpenReason::Unhealthy { since: T }, until: None });
        assert!(err.to_string().contains("B-004"), "{err}");
        b.record_health(true, T + 30);
        assert_eq!(b.allows_locking(T + 30), Ok(()));
    }

    #[test]
    fn health_and_failures_are_independent() {
        let mut b = open_breaker();
        b.record_health(false, T + 10);
        b.record_health(true, T + 20);
        assert_eq!(reason(&b, T + 20), Some(OpenReason::ConsecutiveFailures(3)));
        b.record_health(false, T + 70);
        assert_eq!(reason(&b, T + 70), Some(OpenReason::Unhealthy { since: T + 70 }));
    }

    #[test]
    fn codes_are_stable() {
        let codes = [
            OpenReason::ConsecutiveFailures(1).code(),
            OpenReason::ProbeFailed.code(),
            OpenReason::ProbeInFlight.code(),
            OpenReason::Unhealthy { since: 0 }.code(),
        ];
        assert_eq!(codes, ["B-001", "B-002", "B-003", "B-004"]);
    }
}
