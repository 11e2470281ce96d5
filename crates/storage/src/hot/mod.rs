//! The hot store: intermediate blobs (segments, lifted and joined receipts), 1–50 MB each.
//!
//! It has a byte budget and reports its usage, so the executor can pause while unproven segments
//! fill it (Bento's Redis grew without bound, or evicted live segments). Backends: Redis
//! (distributed, [`RedisHotStore`]), local files ([`LocalHotStore`], embedded) and memory
//! ([`MemoryHotStore`], tests). All keep usage exact across overwrites (idempotent retries re-put
//! the same key) and record the peak.

mod ledger;
mod local;
mod memory;
mod redis;
mod store;

pub use self::{
    local::LocalHotStore,
    memory::MemoryHotStore,
    redis::{DEFAULT_NAMESPACE, RedisHotStore},
    store::{HotStore, ROOM_POLL_INTERVAL},
};
