//! The behaviour both backends must show (docs/architecture.md, "TaskDB semantics"). Each
//! scenario gets a fresh database and is registered with `scenario!` under its definition.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tiffin_taskdb::{
    Backoff, Config, Error, FailOutcome, FailureKind, HeartbeatOutcome, JobFilter, JobState, Kind,
    Lease, NewJob, NewTask, StreamConfig, TaskDb, TaskState,
};

mod backlog;
mod batches;
mod concurrency;
mod dag;
mod deadlines;
mod failures;
mod fair_share;
mod job_order;
mod random_dags;
mod registry;
mod reservations;
mod weights;
mod work_limit;

pub use fair_share::{newcomer_goes_first_after_a_restart, serve_a_backlog_before_a_restart};

/// The configuration every backend runs the suite with: a 60 s fallback poll, so wake-ups must
/// come from notifications, and a short backoff so retries are quick.
pub fn config() -> Config {
    Config {
        backoff: Backoff { base: Duration::from_millis(200), max: Duration::from_secs(2) },
        poll_interval: Duration::from_secs(60),
        max_connections: 40,
        // with nothing finished, a task counts 1 s when judging a job at risk (deadlines.rs)
        assumed_task_time: Duration::from_secs(1),
        ..Config::default()
    }
}

const LONG: Duration = Duration::from_secs(60);

fn k(s: &str) -> Kind {
    Kind::new(s)
}

fn task(key: &str, kind: &str) -> NewTask {
    NewTask::new(key, kind, json!({ "key": key }))
}

async fn claim(db: &Arc<dyn TaskDb>, kinds: &[&str]) -> Option<Lease> {
    let kinds: Vec<Kind> = kinds.iter().map(|s| k(s)).collect();
    db.claim("agent", &kinds, LONG).await.expect("claim")
}

async fn claim_key(db: &Arc<dyn TaskDb>, kinds: &[&str]) -> String {
    claim(db, kinds).await.expect("a task is claimable").key
}

async fn running_total(db: &Arc<dyn TaskDb>) -> i64 {
    db.streams().await.unwrap().iter().map(|s| s.running).sum()
}

/// Runs a pool of `slots` concurrently held leases for `claims` claims: each step completes the
/// oldest held lease and claims again. Returns claims per tenant.
async fn run_slots(
    db: &Arc<dyn TaskDb>,
    kinds: &[&str],
    slots: usize,
    claims: usize,
) -> HashMap<String, usize> {
    let mut held = std::collections::VecDeque::new();
    let mut per: HashMap<String, usize> = HashMap::new();
    let mut n = 0;
    while n < claims {
        if held.len() == slots {
            let l: Lease = held.pop_front().unwrap();
            db.complete(&l, json!(null)).await.unwrap();
        }
        let l = claim(db, kinds).await.expect("saturated: work is always there");
        *per.entry(l.tenant.clone()).or_default() += 1;
        held.push_back(l);
        n += 1;
    }
    per
}

async fn saturate(db: &Arc<dyn TaskDb>, tenant: &str, kind: &str, n: usize) {
    let tasks = (0..n).map(|i| task(&format!("{tenant}-{i}"), kind)).collect();
    db.create_job(NewJob::new(tenant, tasks)).await.unwrap();
}

async fn claim_batch(db: &Arc<dyn TaskDb>, kinds: &[&str], max: usize) -> Vec<Lease> {
    let kinds: Vec<Kind> = kinds.iter().map(|s| k(s)).collect();
    db.claim_batch("agent", &kinds, LONG, max).await.expect("claim_batch")
}

/// Gives `tenant`'s stream of `kind` the priority multiplier `weight` (no reservation).
async fn weigh(db: &Arc<dyn TaskDb>, tenant: &str, kind: &str, weight: f64) {
    let config = StreamConfig { priority_multiplier: weight, reserved: 0, ..Default::default() };
    db.set_stream(tenant, &k(kind), config).await.unwrap();
}
