//! The process's Prometheus metrics: the one recorder every part of a cluster process records
//! to (the API and the agents), and the agents' series.
//!
//! **One recorder per process.** The `metrics` facade has one global recorder, so this module
//! is its only owner: [`recorder`] installs a `metrics-exporter-prometheus` recorder the first
//! time it is called (a `OnceLock`, so any number of callers and threads get the same one) and
//! returns the handle that renders the exposition text; `/metrics` (the API's route, and the
//! `--metrics-listen` listener) renders it. In `tiffin up` the API and its agents share it.
//! Several test servers in one test process share it too, so tests assert that a series is
//! present or grew, never an exact process-wide count; a recorder per server instead would
//! need the handle threaded through every place that counts, for the tests' sake only. (The
//! broker is another process, `tiffin broker`, with an exporter of its own.)
//!
//! Every histogram uses [`SECONDS_BUCKETS`] (durations from a millisecond to half an hour).
//! Every label value comes from a fixed set: worker kinds are mapped through [`kind_label`],
//! never copied from a task.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `tiffin_agent_tasks_claimed_total` | counter | `kind` | tasks claimed |
//! | `tiffin_agent_tasks_completed_total` | counter | `kind` | tasks completed (output recorded) |
//! | `tiffin_agent_tasks_failed_total` | counter | `kind`, `failure` (`transient`, `permanent`) | failed attempts reported |
//! | `tiffin_agent_tasks_cancelled_total` | counter | `kind` | tasks stopped because their job was cancelled |
//! | `tiffin_agent_leases_lost_total` | counter | `kind` | tasks given up: lease fenced (expired), or completion not recorded |
//! | `tiffin_agent_task_seconds` | histogram | `kind` | claim → completion or failure report |
//! | `tiffin_agent_cycles_proven_total` | counter | — | cycles of the segments proven (2^po2 each) |

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tiffin_taskdb::{Error as DbError, FailureKind, Kind};
use tracing::warn;

use crate::kinds;

/// Bucket bounds (seconds) of every `*_seconds` histogram.
pub const SECONDS_BUCKETS: [f64; 19] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0,
    300.0, 600.0, 1800.0,
];

/// The `failure` labels of `tiffin_agent_tasks_failed_total`.
const FAILURES: [&str; 2] = ["transient", "permanent"];

/// How often recorded histogram samples are folded into their buckets between scrapes (so an
/// unscraped process does not keep every sample).
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

/// The process's recorder, installed on first use.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(install)
}

/// The process's metrics in Prometheus' text format.
pub fn render() -> String {
    recorder().render()
}

fn install() -> PrometheusHandle {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
        .expect("the bucket list is not empty")
        .build_recorder();
    let handle = recorder.handle();
    if let Err(e) = metrics::set_global_recorder(recorder) {
        // Only another library installing its own would cause this; our series then go there.
        warn!(error = %e, "another metrics recorder is installed; /metrics will be empty");
    }
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_PERIOD);
            upkeep.run_upkeep();
        }
    });
    if let Err(e) = spawned {
        warn!(error = %e, "no metrics upkeep thread; histograms fold at each scrape only");
    }
    handle
}

/// The label of a worker kind: one of [`kinds::ALL`], or `other` for a kind this build does
/// not know (a newer planner's task), so a label value never comes from the queue's contents.
pub fn kind_label(kind: &Kind) -> &'static str {
    kinds::ALL.iter().copied().find(|k| *k == kind.as_str()).unwrap_or("other")
}

/// Registers an agent's series at zero for the kinds it serves, so they show before its first
/// task and rates start from a known value.
pub fn agent_started(served: &[Kind]) {
    describe_agent_series();
    for kind in served.iter().map(kind_label) {
        counter!("tiffin_agent_tasks_claimed_total", "kind" => kind).increment(0);
        counter!("tiffin_agent_tasks_completed_total", "kind" => kind).increment(0);
        counter!("tiffin_agent_tasks_cancelled_total", "kind" => kind).increment(0);
        counter!("tiffin_agent_tasks_released_total", "kind" => kind).increment(0);
        counter!("tiffin_agent_leases_lost_total", "kind" => kind).increment(0);
        for failure in FAILURES {
            counter!("tiffin_agent_tasks_failed_total", "kind" => kind, "failure" => failure)
                .increment(0);
        }
    }
    counter!("tiffin_agent_cycles_proven_total").increment(0);
}

fn describe_agent_series() {
    recorder();
    describe_counter!("tiffin_agent_tasks_claimed_total", "Tasks claimed, by worker kind.");
    describe_counter!(
        "tiffin_agent_tasks_completed_total",
        "Tasks completed (output recorded), by worker kind."
    );
    describe_counter!(
        "tiffin_agent_tasks_failed_total",
        "Failed task attempts reported, by worker kind and failure (transient, permanent)."
    );
    describe_counter!(
        "tiffin_agent_tasks_cancelled_total",
        "Tasks stopped because their job was cancelled, by worker kind."
    );
    describe_counter!(
        "tiffin_agent_tasks_released_total",
        "Unfinished tasks handed back on shutdown (not failures: no attempt used), by kind."
    );
    describe_counter!(
        "tiffin_agent_leases_lost_total",
        "Tasks given up because their lease was fenced or their completion not recorded."
    );
    describe_histogram!(
        "tiffin_agent_task_seconds",
        Unit::Seconds,
        "Time from claim to completion or failure report, by worker kind."
    );
    describe_counter!(
        "tiffin_agent_cycles_proven_total",
        "Cycles of the segments this process proved (2^po2 per segment)."
    );
}

pub(crate) fn task_claimed(kind: &Kind) {
    counter!("tiffin_agent_tasks_claimed_total", "kind" => kind_label(kind)).increment(1);
}

pub(crate) fn task_completed(kind: &Kind, took: Duration, proven_cycles: u64) {
    let kind = kind_label(kind);
    counter!("tiffin_agent_tasks_completed_total", "kind" => kind).increment(1);
    histogram!("tiffin_agent_task_seconds", "kind" => kind).record(took.as_secs_f64());
    if proven_cycles > 0 {
        counter!("tiffin_agent_cycles_proven_total").increment(proven_cycles);
    }
}

pub(crate) fn task_failed(kind: &Kind, failure: FailureKind, took: Duration) {
    let failure = match failure {
        FailureKind::Transient => FAILURES[0],
        FailureKind::Permanent => FAILURES[1],
    };
    let kind = kind_label(kind);
    counter!("tiffin_agent_tasks_failed_total", "kind" => kind, "failure" => failure).increment(1);
    histogram!("tiffin_agent_task_seconds", "kind" => kind).record(took.as_secs_f64());
}

pub(crate) fn task_cancelled(kind: &Kind) {
    counter!("tiffin_agent_tasks_cancelled_total", "kind" => kind_label(kind)).increment(1);
}

pub(crate) fn task_released(kind: &Kind) {
    counter!("tiffin_agent_tasks_released_total", "kind" => kind_label(kind)).increment(1);
}

/// A task given up because the TaskDB refused its heartbeat or completion: cancelled if the
/// task was cancelled, else a lost lease (fenced, or a completion that could not be recorded;
/// the task runs again elsewhere once its lease runs out).
pub(crate) fn task_abandoned(kind: &Kind, why: &DbError) {
    if matches!(why, DbError::TaskCancelled { .. }) {
        task_cancelled(kind);
    } else {
        counter!("tiffin_agent_leases_lost_total", "kind" => kind_label(kind)).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_recorder_renders_bounded_kind_labels() {
        assert!(std::ptr::eq(recorder(), recorder()));
        task_claimed(&Kind::new("prove"));
        task_claimed(&Kind::new("made-up\"kind"));
        task_completed(&Kind::new("exec"), Duration::from_millis(3), 1 << 14);
        let text = render();
        assert!(text.contains(r#"tiffin_agent_tasks_claimed_total{kind="prove"}"#), "{text}");
        assert!(text.contains(r#"tiffin_agent_tasks_claimed_total{kind="other"}"#), "{text}");
        assert!(!text.contains("made-up"), "{text}");
        assert!(text.contains(r#"tiffin_agent_task_seconds_bucket{kind="exec",le="0.005"}"#));
        assert!(text.contains("tiffin_agent_cycles_proven_total"), "{text}");
    }
}
