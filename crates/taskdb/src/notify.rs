//! Wake-ups for idle agents: "N tasks of kind K became ready" wakes at most N waiters of K.
//!
//! The SQLite backend publishes directly after each commit; the PostgreSQL backend feeds it from
//! one LISTEN connection per process (payload `kind:count,…`). Waking only as many waiters as
//! there are new tasks avoids the thundering herd Bento-style broadcast causes: with 1,000 idle
//! agents a broadcast turns every ready task into 1,000 claim attempts. [`wait_loop`] is the
//! shared waiting logic with a slow fallback poll, so a lost wake-up costs at most one poll.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use crate::error::Result;
use crate::task::Kind;

/// One blocked `wait_for_work` call.
#[derive(Debug)]
struct Waiter {
    id: u64,
    kinds: Vec<String>,
    wake: oneshot::Sender<()>,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    /// Oldest waiter first, so wake-ups go round fairly.
    waiters: VecDeque<Waiter>,
}

/// The in-process wake-up registry shared by all waiters of one backend instance.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    inner: Arc<Mutex<Registry>>,
}

impl Notifier {
    /// Publishes tasks that became ready. Each item is `kind` (one task) or `kind:count`;
    /// repeated kinds add up. Wakes at most that many waiters per kind, oldest first. An empty
    /// list means "anything may have changed" (e.g. after a listener reconnect): wakes everyone.
    pub fn publish<I, S>(&self, items: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let counts = parse_counts(items);
        let mut reg = self.inner.lock().expect("notifier lock");
        if counts.is_empty() {
            for w in reg.waiters.drain(..) {
                let _ = w.wake.send(());
            }
            return;
        }
        for (kind, mut n) in counts {
            let mut i = 0;
            while n > 0 && i < reg.waiters.len() {
                if reg.waiters[i].kinds.contains(&kind) {
                    let w = reg.waiters.remove(i).expect("index in range");
                    if w.wake.send(()).is_ok() {
                        n -= 1;
                    }
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Number of blocked waiters (for tests and metrics).
    pub fn waiting(&self) -> usize {
        self.inner.lock().expect("notifier lock").waiters.len()
    }

    fn register(&self, kinds: &[Kind]) -> Registration<'_> {
        let (tx, rx) = oneshot::channel();
        let mut reg = self.inner.lock().expect("notifier lock");
        let id = reg.next_id;
        reg.next_id += 1;
        let kinds = kinds.iter().map(|k| k.as_str().to_string()).collect();
        reg.waiters.push_back(Waiter { id, kinds, wake: tx });
        Registration { notifier: self, id, rx }
    }
}

/// Parses `kind` / `kind:count` items into per-kind counts.
fn parse_counts<I, S>(items: I) -> BTreeMap<String, u64>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut counts = BTreeMap::new();
    for item in items {
        let item = item.as_ref();
        if item.is_empty() {
            continue;
        }
        let (kind, n) = match item.rsplit_once(':') {
            Some((k, n)) => (k, n.parse::<u64>().unwrap_or(1)),
            None => (item, 1),
        };
        *counts.entry(kind.to_string()).or_insert(0) += n;
    }
    counts
}

/// A waiter's place in the registry; leaving (normally or by being dropped) removes it, so an
/// abandoned wait never swallows a wake-up meant for someone else.
struct Registration<'a> {
    notifier: &'a Notifier,
    id: u64,
    rx: oneshot::Receiver<()>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut reg = self.notifier.inner.lock().expect("notifier lock");
        if let Some(pos) = reg.waiters.iter().position(|w| w.id == self.id) {
            reg.waiters.remove(pos);
        }
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
/// when woken for one of the kinds, or when a backed-off task becomes due; `false` at `timeout`.
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
    loop {
        // Register before probing, so work that appears in between is not missed.
        let mut reg = notifier.register(kinds);
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
        // A wake-up (or the timer) only means "look again": a notification may announce a
        // task still in its retry backoff, and answering `true` for it would send the caller
        // to claim nothing. The probe decides.
        tokio::select! {
            _ = &mut reg.rx => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(names: &[&str]) -> Vec<Kind> {
        names.iter().map(|n| Kind::new(*n)).collect()
    }

    #[test]
    fn counts_add_up_per_kind() {
        let c = parse_counts(["prove:3", "join", "prove", "", "join:2"]);
        assert_eq!(c.get("prove"), Some(&4));
        assert_eq!(c.get("join"), Some(&3));
    }

    #[tokio::test]
    async fn wakes_only_as_many_waiters_as_tasks_of_their_kind() {
        let n = Notifier::default();
        let ks = kinds(&["prove"]);
        let mut regs: Vec<_> = (0..5).map(|_| n.register(&ks)).collect();
        let other = n.register(&kinds(&["join"]));
        n.publish(["prove:2"]);
        let woken: Vec<bool> = regs.iter_mut().map(|r| r.rx.try_recv().is_ok()).collect();
        // oldest first
        assert_eq!(woken, vec![true, true, false, false, false]);
        assert_eq!(n.waiting(), 4, "three prove waiters and the join waiter remain");
        drop(other);
        assert_eq!(n.waiting(), 3, "a dropped waiter leaves the registry");
        n.publish(Vec::<String>::new());
        assert_eq!(n.waiting(), 0, "an empty publication wakes everyone");
        assert!(regs.iter_mut().skip(2).all(|r| r.rx.try_recv().is_ok()));
    }

    #[tokio::test]
    async fn a_waiter_of_several_kinds_is_woken_by_any() {
        let n = Notifier::default();
        let mut r = n.register(&kinds(&["prove", "join"]));
        n.publish(["join:1"]);
        assert!(r.rx.try_recv().is_ok());
    }
}
