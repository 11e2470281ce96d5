//! The capacity report (`GET /admin/capacity?cycles=C&window_secs=W`): per worker kind and
//! receipt kind, the cycles finished per second over the window and the speed of one busy
//! slot; the live agents, the queue, and when a new job of `cycles` would finish if admitted
//! now ([`crate::capacity`] does the arithmetic). What a broker plans its deadlines with, and
//! the same figures as Prometheus gauges ([`set_gauges`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use metrics::{describe_gauge, gauge};
use serde::{Deserialize, Serialize};
use tiffin_taskdb::{Backlog, Served, StreamInfo, TaskDb};
use tiffin_workflow::kinds;

use crate::agent_liveness::Registered;
use crate::capacity::{Measured, Provers, estimate};
use crate::error::ApiError;

/// The window measured when `window_secs` is not given.
pub const DEFAULT_WINDOW_SECS: u64 = 600;
/// The longest window (a day: older tasks may be collected already).
pub const MAX_WINDOW_SECS: u64 = 86_400;
/// The job meta field the speeds are split by.
const RECEIPT_KIND: &str = "receipt_kind";
/// The receipt kinds with their own label; other jobs (SNARK conversions) count as `other`.
const RECEIPT_KINDS: [&str; 2] = ["succinct", "composite"];

/// The report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Capacity {
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The seconds the speeds are measured over.
    pub window_secs: u64,
    /// One entry per worker kind.
    pub kinds: BTreeMap<String, KindCapacity>,
    /// When a new job of `cycles` would finish (only when `cycles` was asked; `null` while no
    /// prove slot is alive or no prove task finished in the window).
    pub estimate: Option<JobEstimate>,
}

/// One worker kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KindCapacity {
    /// Live agents serving it.
    pub agents_alive: u64,
    /// Their task slots.
    pub slots_alive: u64,
    /// Tasks ready to be claimed.
    pub queued: i64,
    /// Tasks leased now.
    pub running: i64,
    /// Cycles of the ready tasks that declare theirs.
    pub cycles_waiting: i64,
    /// Tenants with tasks of the kind ready or running.
    pub tenants_busy: u64,
    /// Over every receipt kind.
    #[serde(flatten)]
    pub all: Throughput,
    /// Split by the receipt kind of the tasks' sessions (`succinct`, `composite`, `other`).
    pub receipt_kinds: BTreeMap<String, Throughput>,
}

/// What was finished in the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Throughput {
    /// Tasks finished.
    pub tasks_finished: i64,
    /// Their cycles (prove tasks: 2^po2 of their segment; other kinds declare none).
    pub cycles_proven: i64,
    /// `cycles_proven` ÷ the window: what the cluster did.
    pub cycles_per_sec: f64,
    /// `cycles_proven` ÷ the seconds those tasks took: the speed of one busy slot (`null`
    /// without timed cycles).
    pub slot_cycles_per_sec: Option<f64>,
}

/// When a new job would finish if admitted now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobEstimate {
    /// The cycles asked about.
    pub cycles: u64,
    /// The prove slots its fair share is worth beside the busy tenants.
    pub share_slots: f64,
    /// Cycles a second it would be proven at.
    pub cycles_per_sec: f64,
    /// The same in kHz (rounded down, at least 1): a broker's `peak_prove_khz`.
    pub khz: u64,
    /// Seconds to its last segment's proof.
    pub finish_secs: f64,
    /// `at` + `finish_secs`.
    pub finish_at: DateTime<Utc>,
    /// Seconds if it waited for every ready prove task first (no fair share).
    pub behind_queue_secs: f64,
}

pub(crate) fn whole(
    q: &BTreeMap<String, String>,
    name: &str,
    range: (u64, u64),
) -> Result<Option<u64>, ApiError> {
    let Some(v) = q.get(name) else { return Ok(None) };
    match v.parse::<u64>() {
        Ok(n) if (range.0..=range.1).contains(&n) => Ok(Some(n)),
        _ if range.1 == u64::MAX => Err(ApiError::InvalidSetting(format!(
            "{name} must be a whole number >= {}, got {v:?}",
            range.0
        ))),
        _ => Err(ApiError::InvalidSetting(format!(
            "{name} must be a whole number from {} to {}, got {v:?}",
            range.0, range.1
        ))),
    }
}

fn label(group: Option<&str>) -> &'static str {
    RECEIPT_KINDS.into_iter().find(|k| Some(*k) == group).unwrap_or("other")
}

fn throughput(rows: &[&Served], window_secs: f64) -> Throughput {
    let m = Measured {
        window_secs,
        cycles: rows.iter().map(|s| s.work).sum(),
        busy_secs: rows.iter().map(|s| s.busy_secs).sum(),
    };
    Throughput {
        tasks_finished: rows.iter().map(|s| s.tasks).sum(),
        cycles_proven: m.cycles,
        cycles_per_sec: m.cycles_per_sec(),
        slot_cycles_per_sec: m.slot_cycles_per_sec(),
    }
}

/// What the report is made of, read once.
pub(crate) struct Reads {
    served: Vec<Served>,
    backlog: Vec<Backlog>,
    streams: Vec<StreamInfo>,
}

impl Reads {
    pub(crate) async fn new(
        db: &Arc<dyn TaskDb>,
        window: Duration,
    ) -> Result<Self, tiffin_taskdb::Error> {
        Ok(Reads {
            served: db.served(window, RECEIPT_KIND).await?,
            backlog: db.backlog(crate::capacity::DURATION_SAMPLE).await?,
            streams: db.streams().await?,
        })
    }

    fn kind(&self, kind: &str, agents: &[Registered], window_secs: f64) -> KindCapacity {
        let empty = Backlog::empty(kind);
        let b = self.backlog.iter().find(|b| b.kind == kind).unwrap_or(&empty);
        let serving: Vec<&Registered> =
            agents.iter().filter(|a| a.alive() && a.serves(kind)).collect();
        let rows: Vec<&Served> = self.served.iter().filter(|s| s.kind == kind).collect();
        let mut receipt_kinds = BTreeMap::new();
        for l in RECEIPT_KINDS.into_iter().chain(["other"]) {
            let of: Vec<&Served> =
                rows.iter().copied().filter(|s| label(s.group.as_deref()) == l).collect();
            if !of.is_empty() {
                receipt_kinds.insert(l.to_string(), throughput(&of, window_secs));
            }
        }
        let tenants_busy = self.busy(kind, None);
        KindCapacity {
            agents_alive: serving.len() as u64,
            slots_alive: serving.iter().map(|a| a.slots()).sum(),
            queued: b.ready,
            running: b.running,
            cycles_waiting: b.ready_work,
            tenants_busy,
            all: throughput(&rows, window_secs),
            receipt_kinds,
        }
    }

    /// Tenants with tasks of `kind` ready or running, `except` one (a tenant id).
    fn busy(&self, kind: &str, except: Option<&str>) -> u64 {
        let busy = self.streams.iter().filter(|s| s.kind == kind && s.ready + s.running > 0);
        let others = busy.map(|s| s.tenant.as_str()).filter(|t| Some(*t) != except);
        others.collect::<std::collections::BTreeSet<_>>().len() as u64
    }

    /// The report; the estimate is for a job of tenant `asker` (an id) when given: its own
    /// work does not compete with it for a share.
    pub(crate) fn report(
        &self,
        agents: &[Registered],
        window: u64,
        cycles: Option<u64>,
        asker: Option<&str>,
    ) -> Capacity {
        let at = Utc::now();
        let kinds: BTreeMap<String, KindCapacity> = kinds::ALL
            .iter()
            .map(|k| (k.to_string(), self.kind(k, agents, window as f64)))
            .collect();
        let prove = &kinds[kinds::PROVE];
        let mean = self.backlog.iter().find(|b| b.kind == kinds::PROVE).and_then(|b| b.mean_secs);
        let provers = Provers {
            slot_cycles_per_sec: prove.all.slot_cycles_per_sec,
            slots: prove.slots_alive,
            tenants_busy: self.busy(kinds::PROVE, asker),
            cycles_waiting: prove.cycles_waiting.max(0) as u64,
            task_secs: mean,
        };
        let estimate = cycles.and_then(|c| {
            let e = estimate(c, &provers)?;
            Some(JobEstimate {
                cycles: c,
                share_slots: e.share_slots,
                cycles_per_sec: e.cycles_per_sec,
                khz: ((e.cycles_per_sec / 1000.0) as u64).max(1),
                finish_secs: e.secs,
                finish_at: at + chrono::Duration::milliseconds((e.secs * 1000.0) as i64),
                behind_queue_secs: e.behind_queue_secs,
            })
        });
        Capacity { at, window_secs: window, kinds, estimate }
    }
}

/// Registers the gauges' descriptions.
pub fn describe() {
    describe_gauge!(
        "tiffin_cycles_per_second",
        "Cycles finished per second over the last 600 s, by kind and receipt kind."
    );
    describe_gauge!(
        "tiffin_slot_cycles_per_second",
        "Cycles one busy task slot proves per second over the last 600 s, by kind."
    );
    describe_gauge!("tiffin_tenants_busy", "Tenants with tasks of the kind ready or running.");
}

/// Sets the capacity gauges (the window is [`DEFAULT_WINDOW_SECS`]); `false` if a read failed.
pub async fn set_gauges(db: &Arc<dyn TaskDb>) -> bool {
    let Ok(reads) = Reads::new(db, Duration::from_secs(DEFAULT_WINDOW_SECS)).await else {
        return false;
    };
    let report = reads.report(&[], DEFAULT_WINDOW_SECS, None, None);
    for (kind, k) in &report.kinds {
        let kind = kinds::ALL.iter().copied().find(|k2| k2 == kind).unwrap_or("other");
        for rk in RECEIPT_KINDS.into_iter().chain(["other"]) {
            let per_sec = k.receipt_kinds.get(rk).map_or(0.0, |t| t.cycles_per_sec);
            gauge!("tiffin_cycles_per_second", "kind" => kind, "receipt_kind" => rk).set(per_sec);
        }
        let slot = k.all.slot_cycles_per_sec.unwrap_or(0.0);
        gauge!("tiffin_slot_cycles_per_second", "kind" => kind).set(slot);
        gauge!("tiffin_tenants_busy", "kind" => kind).set(k.tenants_busy as f64);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_numbers_are_checked() {
        let q = |v: &str| BTreeMap::from([("cycles".to_string(), v.to_string())]);
        assert_eq!(whole(&BTreeMap::new(), "cycles", (1, 9)).unwrap(), None);
        assert_eq!(whole(&q("9"), "cycles", (1, 9)).unwrap(), Some(9));
        for bad in ["0", "10", "-1", "1.5", "lots"] {
            let err = whole(&q(bad), "cycles", (1, 9)).unwrap_err();
            assert_eq!(err.code(), "TIFFIN-API-062", "{bad}");
        }
    }

    #[test]
    fn receipt_kinds_are_fixed_labels() {
        assert_eq!(label(Some("succinct")), "succinct");
        assert_eq!(label(Some("composite")), "composite");
        assert_eq!((label(Some("groth16")), label(None)), ("other", "other"));
    }
}
