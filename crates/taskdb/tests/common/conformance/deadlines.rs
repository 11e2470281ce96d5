//! Across tenants, a job at risk of missing its due time borrows agents: its stream's weight
//! counts `BORROW_WEIGHT` (4) times while it is, so the others keep getting claims (policy.rs
//! `at_risk`). Judged from the job's unfinished tasks at the kind's measured task time — here,
//! with nothing finished yet, the suite's assumed 1 s (`config()`).

use std::sync::Arc;

use chrono::{Duration, Utc};
use tiffin_taskdb::{NewJob, TaskDb};

use super::{claim, saturate, task};

/// Claims `n` tasks of `kind` in a row (none finished, so no task time gets measured); the
/// tenants served, in order.
async fn claims_in_a_row(db: &Arc<dyn TaskDb>, kind: &str, n: usize) -> Vec<String> {
    let mut served = Vec::with_capacity(n);
    for _ in 0..n {
        served.push(claim(db, &[kind]).await.expect("backlogged").tenant);
    }
    served
}

/// A flood of 40 tasks queued first, then a 40-task job of "broker" due in `due_in`.
async fn flood_then_due_job(db: &Arc<dyn TaskDb>, due_in: Duration) {
    saturate(db, "flood", "prove", 40).await;
    let tasks = (0..40).map(|i| task(&format!("b{i}"), "prove")).collect();
    db.create_job(NewJob::new("broker", tasks).due(Utc::now() + due_in)).await.unwrap();
}

async fn a_job_at_risk_borrows_agents_but_never_starves_the_others(db: Arc<dyn TaskDb>) {
    // 40 tasks of 1 s left, 20 s to go: at risk
    flood_then_due_job(&db, Duration::seconds(20)).await;
    let served = claims_in_a_row(&db, "prove", 20).await;
    let broker = served.iter().filter(|t| *t == "broker").count();
    assert!(broker >= 14, "at risk, it borrows (4:1 gives 16 of 20): {served:?}");
    assert!(20 - broker >= 3, "the flood keeps at least 1 claim in 5: {served:?}");
}
scenario!(a_job_at_risk_borrows_agents_but_never_starves_the_others);

async fn a_job_with_time_to_spare_keeps_its_fair_share(db: Arc<dyn TaskDb>) {
    // 40 tasks of 1 s left, an hour to go: no borrowing, the two alternate
    flood_then_due_job(&db, Duration::hours(1)).await;
    let served = claims_in_a_row(&db, "prove", 20).await;
    let broker = served.iter().filter(|t| *t == "broker").count();
    assert!((9..=11).contains(&broker), "equal weights share 1:1: {served:?}");
}
scenario!(a_job_with_time_to_spare_keeps_its_fair_share);
