//! The preflights' shared state: measurements cached by image, input digest and cycle limit,
//! and the slots that bound how many run at once (`max_concurrent_preflights`). A leaf: no I/O.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy::primitives::B256;
use tokio::sync::Semaphore;

/// What a preflight measured.
#[derive(Debug, Clone)]
pub struct Preflight {
    pub cycles: u64,
    pub journal: Vec<u8>,
}

/// A preflight's cache key: (image id, input digest, cycle limit).
pub type PreflightKey = (B256, B256, u64);

/// Preflights by (image, input digest, cycle limit); bounded, emptied when full.
#[derive(Default)]
pub struct PreflightCache {
    done: Mutex<HashMap<PreflightKey, Preflight>>,
    /// The preflight slots and the `max_concurrent_preflights` they were made for.
    slots: Mutex<Option<(u32, Arc<Semaphore>)>>,
}

const CACHE_ENTRIES: usize = 1000;

impl PreflightCache {
    pub fn get(&self, key: &PreflightKey) -> Option<Preflight> {
        self.done.lock().expect("cache lock").get(key).cloned()
    }

    pub fn put(&self, key: PreflightKey, value: Preflight) {
        let mut done = self.done.lock().expect("cache lock");
        if done.len() >= CACHE_ENTRIES {
            done.clear();
        }
        done.insert(key, value);
    }

    /// The slots for `size` concurrent preflights. A changed size (a config reload) makes new
    /// slots; preflights holding the old ones finish on them.
    pub fn slots(&self, size: u32) -> Arc<Semaphore> {
        let size = size.max(1);
        let mut slots = self.slots.lock().expect("slots lock");
        match &*slots {
            Some((made_for, semaphore)) if *made_for == size => semaphore.clone(),
            _ => {
                let semaphore = Arc::new(Semaphore::new(size as usize));
                *slots = Some((size, semaphore.clone()));
                semaphore
            }
        }
    }
}
