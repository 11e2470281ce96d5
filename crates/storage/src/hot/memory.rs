//! An in-memory hot store, for tests and single-process runs that keep everything in RAM.

use std::{collections::BTreeMap, sync::Mutex, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ledger::Ledger, store::HotStore};
use crate::{
    Result,
    key::{validate_key, validate_prefix},
};

/// A [`HotStore`] in process memory. Clones of the `Arc` share one store.
#[derive(Debug)]
pub struct MemoryHotStore {
    blobs: Mutex<BTreeMap<String, Bytes>>,
    ledger: Ledger,
}

impl MemoryHotStore {
    /// An empty store with an optional byte budget.
    pub fn new(budget: Option<u64>) -> Self {
        Self { blobs: Mutex::new(BTreeMap::new()), ledger: Ledger::new(budget, 0) }
    }

    fn blobs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.blobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, key: &str, data: Bytes, within_budget: bool) -> Result<bool> {
        validate_key(key)?;
        let mut blobs = self.blobs();
        let old = blobs.get(key).map_or(0, |b| b.len() as u64);
        let new = data.len() as u64;
        if within_budget && !self.ledger.admits(old, new) {
            return Ok(false);
        }
        blobs.insert(key.to_string(), data);
        self.ledger.replace(old, new);
        Ok(true)
    }
}

#[async_trait]
impl HotStore for MemoryHotStore {
    fn describe(&self) -> String {
        "memory://".to_string()
    }

    fn budget(&self) -> Option<u64> {
        self.ledger.budget()
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<()> {
        self.write(key, data, false).map(|_| ())
    }

    async fn try_put_within_budget(&self, key: &str, data: Bytes) -> Result<bool> {
        self.write(key, data, true)
    }

    async fn get_opt(&self, key: &str) -> Result<Option<Bytes>> {
        validate_key(key)?;
        Ok(self.blobs().get(key).cloned())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        Ok(self.blobs().contains_key(key))
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        validate_key(key)?;
        let removed = self.blobs().remove(key);
        if let Some(b) = &removed {
            self.ledger.remove(b.len() as u64);
        }
        Ok(removed.is_some())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        validate_prefix(prefix)?;
        let mut blobs = self.blobs();
        let keys: Vec<String> = blobs
            .range(prefix.to_string()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        let mut freed = 0;
        for k in &keys {
            if let Some(b) = blobs.remove(k) {
                freed += b.len() as u64;
            }
        }
        drop(blobs);
        self.ledger.remove(freed);
        Ok(keys.len() as u64)
    }

    async fn usage(&self) -> Result<u64> {
        Ok(self.ledger.usage())
    }

    async fn peak_usage(&self) -> Result<u64> {
        Ok(self.ledger.peak())
    }

    async fn reset_peak(&self) -> Result<()> {
        self.ledger.reset_peak();
        Ok(())
    }

    async fn wait_for_room(&self, bytes: u64, timeout: Duration) -> Result<()> {
        self.ledger.wait_for_room(bytes, timeout).await
    }
}
