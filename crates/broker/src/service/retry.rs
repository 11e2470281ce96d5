//! How a stage survives a failing chain or cluster: one call retried a few times
//! ([`with_retries`]), and a stage's loop that backs off and gives up after too many failures in
//! a row ([`every`]).

use std::time::Duration;

use super::context::Broker;
use crate::error::{BrokerError, Result};

/// Runs `call` up to `1 + req_retry_count` times, `req_retry_sleep_ms` apart, until it succeeds
/// (the cluster's API may blip; a request must not be lost to one refused connection).
pub async fn with_retries<T, F, Fut>(b: &Broker, what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let (retries, sleep) = {
        let p = &b.config().prover;
        (p.req_retry_count, p.req_retry_sleep_ms)
    };
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if attempt < retries => {
                attempt += 1;
                tracing::debug!("{what} failed ({attempt}/{retries}): {e}");
                tokio::time::sleep(Duration::from_millis(sleep)).await;
            }
            other => return other,
        }
    }
}

/// Runs a stage's `step` for ever, `interval_ms()` apart (re-read each time: the file may
/// change), with the broker's `max_critical_task_retries`; see [`repeat`].
pub async fn every<F, Fut>(
    b: &Broker,
    what: &'static str,
    interval_ms: impl Fn() -> u64,
    step: F,
) -> BrokerError
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    repeat(what, interval_ms, || b.config().market.max_critical_task_retries, step).await
}

/// Runs `step` for ever, `interval_ms()` apart. A failing step is logged and tried again after
/// [`retry_delay`], so a stage survives a blip of the chain or the cluster; after more than
/// `max_retries()` failures in a row it gives up with [`BrokerError::StageGaveUp`].
async fn repeat<F, Fut>(
    what: &'static str,
    interval_ms: impl Fn() -> u64,
    max_retries: impl Fn() -> u32,
    mut step: F,
) -> BrokerError
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut failures = 0u32;
    loop {
        match step().await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures > max_retries() {
                    tracing::error!(stage = what, failures, "giving up: {e}");
                    return BrokerError::StageGaveUp { stage: what, failures, last: e.to_string() };
                }
                tracing::warn!(stage = what, failures, "{e}");
            }
        }
        tokio::time::sleep(retry_delay(interval_ms(), failures)).await;
    }
}

/// The longest wait between two tries of a failing stage.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// The wait before a stage's next step after `failures` failures in a row: its interval (at
/// least 10 ms), doubled for each failure, at most [`MAX_RETRY_DELAY`] (never less than the
/// interval itself).
fn retry_delay(interval_ms: u64, failures: u32) -> Duration {
    let base = Duration::from_millis(interval_ms.max(10));
    let doubled = base.saturating_mul(1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX));
    doubled.min(MAX_RETRY_DELAY.max(base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn a_failing_stage_backs_off_doubling_up_to_a_minute() {
        assert_eq!(retry_delay(200, 0), Duration::from_millis(200));
        assert_eq!(retry_delay(200, 1), Duration::from_millis(400));
        assert_eq!(retry_delay(200, 4), Duration::from_millis(3_200));
        assert_eq!(retry_delay(200, 9), Duration::from_secs(60));
        assert_eq!(retry_delay(200, u32::MAX), Duration::from_secs(60));
        assert_eq!(retry_delay(0, 0), Duration::from_millis(10), "never a busy loop");
        assert_eq!(retry_delay(90_000, 3), Duration::from_secs(90), "never below the interval");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stage_gives_up_after_its_retries_in_a_row_and_a_success_resets_the_count() {
        // Fails twice, succeeds, then fails for good: with 2 retries it gives up at the 3rd
        // failure in a row, i.e. at the 6th step.
        let steps = AtomicU32::new(0);
        let step = || async {
            let n = steps.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 { Ok(()) } else { Err(BrokerError::Chain(format!("step {n} failed"))) }
        };
        let started = tokio::time::Instant::now();
        let e = repeat("testing", || 100, || 2, step).await;
        assert_eq!(steps.load(Ordering::SeqCst), 6);
        assert_eq!(e.code(), "TIFFIN-BROKER-018");
        let text = e.to_string();
        assert!(
            text.contains("testing failed 3 times in a row") && text.contains("step 6"),
            "{text}"
        );
        // Waits: 200 + 400 (failures), 100 (success), 200 + 400 (failures) ms.
        assert_eq!(started.elapsed(), Duration::from_millis(1_300));
    }
}
