//! Tiffin's broker: watches the proof market, prices each request by its cycle count, locks the
//! profitable ones with collateral, proves them on a Tiffin cluster through the Bonsai API and
//! fulfils them on-chain. docs/broker.md explains it and every setting.
//!
//! Pure policy (what to lock, when, and how much work fits) lives apart from I/O:
//! [`pricing`], [`capacity`], [`batching`] and [`breaker`] decide; [`service`] carries the
//! decisions out against the [`chain`], the [`cluster`] and the verifier service ([`attest`]),
//! keeping every commitment in the order database ([`db`]).

pub mod attest;
pub mod batching;
pub mod benchmark;
pub mod breaker;
pub mod capacity;
pub mod chain;
pub mod cluster;
pub mod config;
pub mod db;
pub mod error;
pub mod fetch;
pub mod latency;
pub mod metrics;
pub mod order;
pub mod params;
pub mod pricing;
pub mod pricing_queue;
pub mod receipt_size;
pub mod service;
pub mod speed;

pub use error::{BrokerError, Result};
