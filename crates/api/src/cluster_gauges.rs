//! Cluster-wide gauges set at each scrape, beside the per-stream queue gauges: how long work
//! has waited and how much, which agents are alive, and the hot store's fill. Labels come from
//! the fixed worker kinds only.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `tiffin_queue_oldest_ready_seconds` | gauge | `kind` | how long the oldest ready task has waited (0 when none) |
//! | `tiffin_queue_cycles_waiting` | gauge | `kind` | cycles of the ready prove tasks (0 for other kinds) |
//! | `tiffin_agents_alive` | gauge | `kind` | agents serving the kind that reported within the last 30 s |
//! | `tiffin_hot_store_bytes` | gauge | — | bytes in the hot store |
//! | `tiffin_hot_store_budget_bytes` | gauge | — | the hot store's budget (0: none) |
//! | `tiffin_cycles_per_second` | gauge | `kind`, `receipt_kind` | cycles finished per second over the last 600 s |
//! | `tiffin_slot_cycles_per_second` | gauge | `kind` | cycles one busy slot proves per second (600 s) |
//! | `tiffin_tenants_busy` | gauge | `kind` | tenants with tasks of the kind ready or running |

use std::sync::Arc;
use std::time::Duration;

use metrics::{describe_gauge, gauge};
use tiffin_storage::HotStore;
use tiffin_taskdb::{Kind, TaskDb};
use tiffin_workflow::kinds;
use tiffin_workflow::metrics::kind_label;

/// An agent is counted alive when it reported within this long (several heartbeats).
const ALIVE_WITHIN: Duration = Duration::from_secs(30);
/// How many recently finished tasks per kind the backlog reads (the gauges use none of
/// their durations: keep it small).
const SAMPLE: u32 = 1;

/// Registers the gauges' descriptions.
pub fn describe() {
    describe_gauge!(
        "tiffin_queue_oldest_ready_seconds",
        "Seconds the oldest ready task of the kind has waited (0 when none)."
    );
    describe_gauge!("tiffin_queue_cycles_waiting", "Cycles of the ready prove tasks, by kind.");
    describe_gauge!("tiffin_agents_alive", "Agents serving the kind seen in the last 30 s.");
    describe_gauge!("tiffin_hot_store_bytes", "Bytes in the hot store.");
    describe_gauge!("tiffin_hot_store_budget_bytes", "The hot store's byte budget (0: none).");
    crate::capacity_report::describe();
}

/// Sets the gauges from the TaskDB and the hot store; `false` if a read failed (the gauges
/// read so far are set, the others keep their last values).
pub async fn refresh(db: &Arc<dyn TaskDb>, hot: &Arc<dyn HotStore>) -> bool {
    let mut ok = true;
    match db.backlog(SAMPLE).await {
        Ok(backlogs) => {
            let now = chrono::Utc::now();
            for kind in kinds::ALL {
                let b = backlogs.iter().find(|b| b.kind == *kind);
                let waited = b
                    .and_then(|b| b.oldest_ready_at)
                    .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
                gauge!("tiffin_queue_oldest_ready_seconds", "kind" => *kind).set(waited);
                let cycles = b.map_or(0, |b| b.ready_work);
                gauge!("tiffin_queue_cycles_waiting", "kind" => *kind).set(cycles as f64);
            }
        }
        Err(_) => ok = false,
    }
    match db.agents(ALIVE_WITHIN).await {
        Ok(agents) => {
            for kind in kinds::ALL {
                let n = agents.iter().filter(|a| a.kinds.iter().any(|k| k == kind)).count();
                gauge!("tiffin_agents_alive", "kind" => kind_label(&Kind::new(*kind)))
                    .set(n as f64);
            }
        }
        Err(_) => ok = false,
    }
    match hot.usage().await {
        Ok(bytes) => gauge!("tiffin_hot_store_bytes").set(bytes as f64),
        Err(_) => ok = false,
    }
    gauge!("tiffin_hot_store_budget_bytes").set(hot.budget().unwrap_or(0) as f64);
    ok &= crate::capacity_report::set_gauges(db).await;
    ok
}
