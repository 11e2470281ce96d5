//! Usage accounting for the in-process hot stores (local files, memory): usage, peak, budget,
//! and a [`Notify`] so waiters for room wake as soon as a delete frees it, without polling.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::sync::Notify;

use crate::{Error, Result};

#[derive(Debug)]
pub(crate) struct Ledger {
    budget: Option<u64>,
    state: Mutex<State>,
    room: Notify,
}

#[derive(Debug, Default)]
struct State {
    usage: u64,
    peak: u64,
}

impl Ledger {
    pub(crate) fn new(budget: Option<u64>, usage: u64) -> Self {
        Self { budget, state: Mutex::new(State { usage, peak: usage }), room: Notify::new() }
    }

    pub(crate) fn budget(&self) -> Option<u64> {
        self.budget
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn usage(&self) -> u64 {
        self.lock().usage
    }

    pub(crate) fn peak(&self) -> u64 {
        self.lock().peak
    }

    pub(crate) fn reset_peak(&self) {
        let mut s = self.lock();
        s.peak = s.usage;
    }

    /// Whether replacing a blob of `old` bytes by one of `new` bytes stays within the budget.
    pub(crate) fn admits(&self, old: u64, new: u64) -> bool {
        match self.budget {
            None => true,
            Some(budget) => self.lock().usage.saturating_sub(old).saturating_add(new) <= budget,
        }
    }

    /// Records that a blob of `old` bytes (0 if none) was replaced by one of `new` bytes.
    pub(crate) fn replace(&self, old: u64, new: u64) {
        let freed = {
            let mut s = self.lock();
            s.usage = s.usage.saturating_sub(old).saturating_add(new);
            s.peak = s.peak.max(s.usage);
            new < old
        };
        if freed {
            self.room.notify_waiters();
        }
    }

    /// Records that blobs totalling `bytes` were removed.
    pub(crate) fn remove(&self, bytes: u64) {
        self.replace(bytes, 0);
    }

    pub(crate) async fn wait_for_room(&self, bytes: u64, timeout: Duration) -> Result<()> {
        let Some(budget) = self.budget else {
            return Ok(());
        };
        if bytes > budget {
            return Err(Error::LargerThanBudget { needed: bytes, budget });
        }
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let usage = self.usage();
            if usage.saturating_add(bytes) <= budget {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                return Err(Error::NoRoom {
                    needed: bytes,
                    usage: self.usage(),
                    budget,
                    waited: timeout,
                });
            }
        }
    }
}
