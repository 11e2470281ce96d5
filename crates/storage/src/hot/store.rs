//! The [`HotStore`] trait the backends implement.

use std::{
    fmt,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Error, Result};

/// How often [`HotStore::wait_for_room`] re-reads usage on backends without change notifications
/// (Redis): often enough that an executor resumes promptly, rare enough to cost nothing.
pub const ROOM_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Budgeted storage for intermediate blobs.
///
/// Usage is the sum of the sizes of the stored blobs (values only, not backend overhead).
/// Plain [`put`](HotStore::put) ignores the budget (provers must always be able to store their
/// outputs, or the cluster could deadlock); producers that should wait — the executor writing
/// segments — use [`put_with_room`](HotStore::put_with_room), or check
/// [`wait_for_room`](HotStore::wait_for_room) before writing.
#[async_trait]
pub trait HotStore: Send + Sync + fmt::Debug {
    /// A human-readable description without secrets, for logs.
    fn describe(&self) -> String;

    /// The byte budget, if any.
    fn budget(&self) -> Option<u64>;

    /// Writes (or overwrites) `key`, regardless of the budget.
    async fn put(&self, key: &str, data: Bytes) -> Result<()>;

    /// Writes `key` only if usage afterwards (counting an overwritten blob's size as freed) stays
    /// within the budget, atomically, so concurrent producers cannot overshoot it together.
    /// Returns whether it was written. Without a budget it always writes.
    async fn try_put_within_budget(&self, key: &str, data: Bytes) -> Result<bool>;

    /// Writes `key` within the budget, waiting up to `timeout` for room.
    /// Errors: [`Error::LargerThanBudget`] if `data` can never fit, [`Error::NoRoom`] on timeout.
    async fn put_with_room(&self, key: &str, data: Bytes, timeout: Duration) -> Result<()> {
        let needed = data.len() as u64;
        if let Some(budget) = self.budget()
            && needed > budget
        {
            return Err(Error::LargerThanBudget { needed, budget });
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.try_put_within_budget(key, data.clone()).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                // The disk (or Redis's memory) is full below the budget: something else took
                // the room. Wait for it like for the budget, instead of failing the task.
                Err(e) if e.is_storage_full() && Instant::now() < deadline => {
                    tracing::warn!(key, error = %e, "hot store full; waiting for room");
                    tokio::time::sleep(ROOM_POLL_INTERVAL * 10).await;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            self.wait_for_room(needed, left).await?;
            if left.is_zero() {
                // wait_for_room saw room but our try lost a race; one more try then give up.
                if self.try_put_within_budget(key, data.clone()).await? {
                    return Ok(());
                }
                return Err(self.no_room(needed, timeout).await);
            }
        }
    }

    /// Reads a blob. A missing key gives [`Error::NotFound`] (`TIFFIN-STORAGE-010`).
    async fn get(&self, key: &str) -> Result<Bytes> {
        self.get_opt(key)
            .await?
            .ok_or_else(|| Error::NotFound { store: "hot", key: key.to_string() })
    }

    /// Reads a blob, `None` if missing.
    async fn get_opt(&self, key: &str) -> Result<Option<Bytes>>;

    /// Whether the blob exists.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// Deletes `key`; returns whether it existed (a missing key is not an error).
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Deletes every blob whose key starts with `prefix` (plain string prefix; e.g. `jobs/<job>/`
    /// for job GC). Returns how many were deleted.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;

    /// Bytes currently stored.
    async fn usage(&self) -> Result<u64>;

    /// The highest usage seen since the store was created or [`reset_peak`](HotStore::reset_peak)
    /// (shared by all clients of a Redis namespace).
    async fn peak_usage(&self) -> Result<u64>;

    /// Resets the peak to the current usage (e.g. at the start of a benchmark).
    async fn reset_peak(&self) -> Result<()>;

    /// Whether `bytes` more fit within the budget now (always true without a budget).
    async fn has_room(&self, bytes: u64) -> Result<bool> {
        match self.budget() {
            None => Ok(true),
            Some(budget) => Ok(self.usage().await?.saturating_add(bytes) <= budget),
        }
    }

    /// Waits until `bytes` more fit within the budget, up to `timeout`.
    /// Errors: [`Error::LargerThanBudget`] if they never can, [`Error::NoRoom`] on timeout.
    /// The default polls usage every [`ROOM_POLL_INTERVAL`]; local backends wake on deletes.
    async fn wait_for_room(&self, bytes: u64, timeout: Duration) -> Result<()> {
        let Some(budget) = self.budget() else {
            return Ok(());
        };
        if bytes > budget {
            return Err(Error::LargerThanBudget { needed: bytes, budget });
        }
        let start = Instant::now();
        loop {
            if self.has_room(bytes).await? {
                return Ok(());
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Err(self.no_room(bytes, timeout).await);
            }
            tokio::time::sleep(ROOM_POLL_INTERVAL.min(timeout - elapsed)).await;
        }
    }

    #[doc(hidden)]
    async fn no_room(&self, needed: u64, waited: Duration) -> Error {
        match self.usage().await {
            Ok(usage) => {
                Error::NoRoom { needed, usage, budget: self.budget().unwrap_or(u64::MAX), waited }
            }
            Err(e) => e,
        }
    }
}
