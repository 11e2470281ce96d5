//! The broker's Prometheus metrics (the `metrics` facade, served by
//! `metrics-exporter-prometheus` on `--metrics-listen`). Every label set is bounded: order
//! states and skip codes are fixed enumerations.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `tiffin_broker_orders` | gauge | `state` | orders in each state |
//! | `tiffin_broker_skips_total` | counter | `code` | requests skipped, by skip code |
//! | `tiffin_broker_locks_total` | counter | `outcome` (`locked`, `lost`, `failed`) | lock attempts |
//! | `tiffin_broker_fulfilments_total` | counter | `outcome` (`done`, `failed`) | fulfilments |
//! | `tiffin_broker_lock_latency_seconds` | histogram | — | priced → locked |
//! | `tiffin_broker_batches_total` | counter | `mode` (`aggregated`, `one_by_one`) | batches fulfilled, by how |
//! | `tiffin_broker_fulfil_latency_seconds` | histogram | — | proved → fulfilled |
//! | `tiffin_broker_order_latency_seconds` | histogram | — | seen → fulfilled |
//! | `tiffin_broker_collateral_at_risk_tokens` | gauge | — | collateral of locked, unfulfilled orders |
//! | `tiffin_broker_locking_allowed` | gauge | — | 1 while the circuit breaker allows locks |

use std::net::SocketAddr;

use alloy::primitives::U256;
use metrics::{counter, gauge, histogram};

use crate::order::{OrderState, StageTimes};

/// Serves the metrics on `addr` (any path) from now on.
pub fn serve(addr: SocketAddr) -> Result<(), String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| format!("serving metrics on {addr}: {e}"))
}

pub fn orders(counts: &[(String, i64)]) {
    for state in OrderState::ALL {
        let n = counts.iter().find(|(s, _)| s == state.as_str()).map_or(0, |(_, n)| *n);
        gauge!("tiffin_broker_orders", "state" => state.as_str()).set(n as f64);
    }
}

pub fn skipped(code: &'static str) {
    counter!("tiffin_broker_skips_total", "code" => code).increment(1);
}

pub fn lock(outcome: &'static str, times: &StageTimes) {
    counter!("tiffin_broker_locks_total", "outcome" => outcome).increment(1);
    if let Some(s) = span(times.priced, times.locked) {
        histogram!("tiffin_broker_lock_latency_seconds").record(s);
    }
}

pub fn fulfilment(outcome: &'static str, times: &StageTimes) {
    counter!("tiffin_broker_fulfilments_total", "outcome" => outcome).increment(1);
    if let Some(s) = span(times.proved, times.fulfilled) {
        histogram!("tiffin_broker_fulfil_latency_seconds").record(s);
    }
    if let Some(s) = span(times.seen, times.fulfilled) {
        histogram!("tiffin_broker_order_latency_seconds").record(s);
    }
}

/// A batch fulfilled under one set-builder root (`aggregated`) or each with its own
/// seal (`one_by_one`).
pub fn batch(mode: &'static str) {
    counter!("tiffin_broker_batches_total", "mode" => mode).increment(1);
}

/// `collateral` in base units (18 decimals), shown in whole tokens.
pub fn collateral_at_risk(collateral: U256) {
    let tokens = f64::from(collateral) / 1e18;
    gauge!("tiffin_broker_collateral_at_risk_tokens").set(tokens);
}

pub fn locking_allowed(allowed: bool) {
    gauge!("tiffin_broker_locking_allowed").set(if allowed { 1.0 } else { 0.0 });
}

fn span(from: Option<u64>, to: Option<u64>) -> Option<f64> {
    Some(to?.saturating_sub(from?) as f64 / 1000.0)
}
