//! Inside a stream (one tenant, one kind), the claim takes the task of the job due first, then
//! the job with the higher priority, then the oldest job (then nearest the root, then insertion
//! order). A job without a due time comes after every job with one.

use std::sync::Arc;

use chrono::{Duration, Utc};
use tiffin_taskdb::{NewJob, TaskDb};

use super::{claim, claim_batch, task};

async fn claims_inside_a_tenant_follow_due_time_then_priority(db: Arc<dyn TaskDb>) {
    let soon = Utc::now() + Duration::hours(1);
    let later = soon + Duration::hours(1);
    let job = |key: &str| NewJob::new("t", vec![task(key, "w")]);
    db.create_job(job("old")).await.unwrap();
    let later_job = db.create_job(job("later").due(later)).await.unwrap();
    db.create_job(job("soon").due(soon)).await.unwrap();
    db.create_job(job("urgent").priority(5)).await.unwrap();
    db.create_job(job("soon-urgent").due(soon).priority(9)).await.unwrap();
    db.create_job(job("soon-lax").due(soon).priority(-1)).await.unwrap();
    // tasks added later inherit their job's place
    db.add_tasks(later_job, vec![task("later-2", "w").depth(1)]).await.unwrap();
    let first = claim(&db, &["w"]).await.unwrap().key;
    let rest: Vec<String> = claim_batch(&db, &["w"], 10).await.into_iter().map(|l| l.key).collect();
    assert_eq!(
        [vec![first], rest].concat(),
        ["soon-urgent", "soon", "soon-lax", "later", "later-2", "urgent", "old"],
        "due first, then priority, then age; no due time last"
    );
}
scenario!(claims_inside_a_tenant_follow_due_time_then_priority);

async fn due_time_orders_inside_the_tenant_not_across_tenants(db: Arc<dyn TaskDb>) {
    let soon = Utc::now() + Duration::minutes(5);
    // "busy" has a backlog; "relaxed" has work due soon: neither takes the other's share
    let backlog = (0..4).map(|i| task(&format!("b{i}"), "w")).collect();
    db.create_job(NewJob::new("busy", backlog)).await.unwrap();
    let due = (0..4).map(|i| task(&format!("d{i}"), "w")).collect();
    db.create_job(NewJob::new("relaxed", due).due(soon).priority(100)).await.unwrap();
    let got: Vec<String> =
        claim_batch(&db, &["w"], 4).await.into_iter().map(|l| l.tenant).collect();
    assert_eq!(got.iter().filter(|t| *t == "busy").count(), 2, "{got:?}");
}
scenario!(due_time_orders_inside_the_tenant_not_across_tenants);
