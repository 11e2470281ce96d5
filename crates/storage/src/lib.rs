//! Tiffin's blob storage (docs/architecture.md, "Storage tiers and budgets"): the **cold
//! store** for durable blobs (images, inputs, final receipts, logs) over `object_store` — a
//! local directory or any S3-compatible server — and the **hot store** for intermediate blobs
//! (segments, lifted and joined receipts) — Redis, local files or memory — with a byte budget,
//! exact usage and peak accounting, so the executor can apply backpressure instead of letting
//! Redis grow or evict live segments.
//!
//! Open stores from config strings with [`StoreConfig`], [`open_cold`] and [`open_hot`]. Errors
//! carry stable codes `TIFFIN-STORAGE-0xx` and a transient/permanent classification ([`Error`]).
//! With the `testing` feature, [`testing`] starts throwaway Redis and S3 servers for tests.

mod budget;
mod cold;
mod config;
mod durable;
mod error;
mod hot;
mod key;
mod s3;
#[cfg(feature = "testing")]
pub mod testing;

pub use budget::default_hot_budget;
pub use cold::{BlobInfo, ByteStream, ColdStore, ObjectColdStore, PART_SIZE, S3Config, redact_url};
pub use config::{
    StoreConfig, StoreSecrets, Stores, open_cold, open_hot, open_hot_with_ca, parse_byte_size,
};
pub use error::{Error, Result};
pub use hot::{
    DEFAULT_NAMESPACE, HotStore, LocalHotStore, MemoryHotStore, ROOM_POLL_INTERVAL, RedisHotStore,
};
pub use key::{validate_key, validate_prefix};
