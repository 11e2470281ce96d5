//! Wake-ups for idle agents: an in-process broadcast of "tasks of these kinds became ready".
//!
//! The SQLite backend publishes on it directly after each commit; the PostgreSQL backend feeds it
//! from one LISTEN connection per process. [`wait_loop`] is the shared waiting logic with a slow
//! fallback poll, so a lost notification costs at most one poll interval.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::error::Result;
use crate::task::Kind;

/// Broadcasts the kinds of tasks that just became ready. An empty list means "anything may have
/// changed" (e.g. after a listener reconnect) and wakes every waiter.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: broadcast::Sender<Arc<[String]>>,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier { tx: broadcast::channel(1024).0 }
    }
}

impl Notifier {
    /// Publishes kinds that became ready. Cheap when nobody waits.
    pub fn publish<I, S>(&self, kinds: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let kinds: Arc<[String]> = kinds.into_iter().map(Into::into).collect();
        let _ = self.tx.send(kinds);
    }

    /// Subscribes to future publications.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<[String]>> {
        self.tx.subscribe()
    }
}

/// Result of a backend's "is there claimable work?" probe.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WorkProbe {
    /// A task of the kinds is claimable now.
    pub ready_now: bool,
    /// Earliest `not_before` of a ready task still in backoff.
    pub next_due: Option<DateTime<Utc>>,
}

/// Waits until work of `kinds` may be claimable: returns `true` at once if the probe finds some,
/// on a matching notification, or when a backed-off task becomes due; `false` at `timeout`.
pub(crate) async fn wait_loop<F, Fut>(
    notifier: &Notifier,
    kinds: &[Kind],
    timeout: Duration,
    poll: Duration,
    mut probe: F,
) -> Result<bool>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<WorkProbe>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    // Subscribe before probing, so work that appears in between is not missed.
    let mut rx = notifier.subscribe();
    loop {
        let p = probe().await?;
        if p.ready_now {
            return Ok(true);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        let mut wake = (now + poll).min(deadline);
        if let Some(due) = p.next_due {
            let ms = (due - Utc::now()).num_milliseconds().max(0) as u64;
            wake = wake.min(now + Duration::from_millis(ms + 1));
        }
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Ok(k) if k.is_empty() || k.iter().any(|k| kinds.iter().any(|w| w.as_str() == k)) => {
                        return Ok(true);
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => {
                        tokio::time::sleep_until(wake).await;
                        break;
                    }
                },
                _ = tokio::time::sleep_until(wake) => break,
            }
        }
    }
}
