//! Fair share by recent service, with ONE worker: when the only agent frees up, every stream
//! has nothing running, so the claim must compare what each stream has been served lately
//! (weighted by its multiplier), not what it runs at this instant.

use std::sync::Arc;

use serde_json::json;
use tiffin_taskdb::{NewJob, TaskDb};

use super::{claim, k, saturate, task, weigh};

/// One worker: claims a task of `kind`, finishes it at once, `n` times. The tenants served, in
/// order.
async fn one_worker(db: &Arc<dyn TaskDb>, kind: &str, n: usize) -> Vec<String> {
    let mut served = Vec::with_capacity(n);
    for _ in 0..n {
        let l = claim(db, &[kind]).await.expect("backlogged: work is always there");
        db.complete(&l, json!(null)).await.unwrap();
        served.push(l.tenant);
    }
    served
}

async fn one_worker_alternates_between_equal_backlogs(db: Arc<dyn TaskDb>) {
    // "early" queued its backlog first: with one worker it must not win every claim
    saturate(&db, "early", "prove", 50).await;
    saturate(&db, "late", "prove", 50).await;
    let served = one_worker(&db, "prove", 20).await;
    for pair in served.windows(2) {
        assert_ne!(pair[0], pair[1], "weights 1:1 alternate with one worker: {served:?}");
    }
    assert_eq!(served[0], "early", "a tie goes to the longest wait");
}
scenario!(one_worker_alternates_between_equal_backlogs);

async fn one_worker_follows_the_weights(db: Arc<dyn TaskDb>) {
    // the heavier tenant queued last: its weight, not its age, earns it the extra claims
    weigh(&db, "light", "prove", 1.0).await;
    weigh(&db, "heavy", "prove", 2.0).await;
    saturate(&db, "light", "prove", 60).await;
    saturate(&db, "heavy", "prove", 60).await;
    let served = one_worker(&db, "prove", 30).await;
    let mut heavy = 0i64;
    for (n, t) in served.iter().enumerate() {
        heavy += i64::from(t == "heavy");
        let light = n as i64 + 1 - heavy;
        assert!(
            (heavy - 2 * light).abs() <= 2,
            "2:1 at every point (after {} claims: {heavy} heavy, {light} light): {served:?}",
            n + 1
        );
    }
    assert_eq!(heavy, 20, "30 claims split 20:10: {served:?}");
}
scenario!(one_worker_follows_the_weights);

async fn newcomer_behind_a_backlog_is_served_within_two_claims(db: Arc<dyn TaskDb>) {
    // a tenant that has been served for a while, with 1,000 tasks still waiting
    saturate(&db, "flood", "prove", 1000).await;
    let before = one_worker(&db, "prove", 7).await;
    assert!(before.iter().all(|t| t == "flood"));
    db.create_job(NewJob::new("broker", vec![task("p0", "prove"), task("p1", "prove")]))
        .await
        .unwrap();
    let next = one_worker(&db, "prove", 5).await;
    assert!(next[..2].contains(&"broker".to_string()), "the newcomer waited: {next:?}");
    assert_eq!(next.iter().filter(|t| *t == "broker").count(), 2, "both ran: {next:?}");
    assert_eq!(next[4], "flood", "and the flood moves on: {next:?}");

    // the same when the newcomer arrives before the backlog was served at all
    saturate(&db, "flood", "join", 1000).await;
    db.create_job(NewJob::new("broker", vec![task("j0", "join")])).await.unwrap();
    let next = one_worker(&db, "join", 2).await;
    assert!(next.contains(&"broker".to_string()), "the newcomer waited: {next:?}");
}
scenario!(newcomer_behind_a_backlog_is_served_within_two_claims);

async fn concurrent_workers_share_by_weight(db: Arc<dyn TaskDb>) {
    weigh(&db, "one", "prove", 1.0).await;
    weigh(&db, "three", "prove", 3.0).await;
    saturate(&db, "one", "prove", 400).await;
    saturate(&db, "three", "prove", 400).await;
    let mut hs = Vec::new();
    for w in 0..8 {
        let db = db.clone();
        hs.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..50 {
                let l = db.claim(&format!("w{w}"), &[k("prove")], super::LONG).await.unwrap();
                let l = l.expect("backlogged: work is always there");
                db.complete(&l, json!(null)).await.unwrap();
                mine.push(l.tenant);
            }
            mine
        }));
    }
    let mut one = 0;
    for h in hs {
        one += h.await.unwrap().iter().filter(|t| *t == "one").count();
    }
    // 400 claims at 1:3: 100 for "one", give or take what racing snapshots blur
    assert!((80..=120).contains(&one), "expected about 100 of 400 claims for one, got {one}");
}
scenario!(concurrent_workers_share_by_weight);

async fn brokers_two_tasks_do_not_wait_behind_six_long_jobs(db: Arc<dyn TaskDb>) {
    // issue 28, tried live: one prover; a tenant queued six long jobs (150 prove tasks), the
    // agent was busy with them when the broker's two-segment request arrived
    for j in 0..6 {
        let tasks = (0..25).map(|i| task(&format!("j{j}-p{i}"), "prove")).collect();
        db.create_job(NewJob::new("tenant", tasks)).await.unwrap();
    }
    one_worker(&db, "prove", 3).await;
    let segments = vec![task("p0", "prove"), task("p1", "prove")];
    db.create_job(NewJob::new("broker", segments)).await.unwrap();
    assert_eq!(one_worker(&db, "prove", 2).await, ["broker", "broker"]);
}
scenario!(brokers_two_tasks_do_not_wait_behind_six_long_jobs);

/// Before a restart (run [`newcomer_goes_first_after_a_restart`] on the reopened database): one
/// worker serves a backlog three times.
pub async fn serve_a_backlog_before_a_restart(db: Arc<dyn TaskDb>) {
    saturate(&db, "early", "prove", 10).await;
    assert_eq!(one_worker(&db, "prove", 3).await, ["early", "early", "early"]);
}

/// After a restart: the service counted before it still counts, so a newcomer goes before the
/// older backlog (had it been forgotten, the older backlog would win the tie on age).
pub async fn newcomer_goes_first_after_a_restart(db: Arc<dyn TaskDb>) {
    saturate(&db, "late", "prove", 10).await;
    assert_eq!(one_worker(&db, "prove", 2).await, ["late", "late"]);
}

/// The half-life [`forgetful_config`] sets.
pub const SHORT_HALF_LIFE: std::time::Duration = std::time::Duration::from_millis(20);

/// The suite's configuration with a service half-life of [`SHORT_HALF_LIFE`].
pub fn forgetful_config() -> tiffin_taskdb::Config {
    tiffin_taskdb::Config { service_half_life: SHORT_HALF_LIFE, ..super::config() }
}

/// On a database opened with [`forgetful_config`]: service long past (50 half-lives) counts
/// for nothing, so the older backlog wins the tie against a newcomer again; service just now
/// still counts.
async fn old_service_is_forgotten(db: Arc<dyn TaskDb>) {
    saturate(&db, "early", "prove", 10).await;
    one_worker(&db, "prove", 3).await;
    tokio::time::sleep(SHORT_HALF_LIFE * 50).await;
    saturate(&db, "late", "prove", 10).await;
    assert_eq!(one_worker(&db, "prove", 2).await, ["early", "late"]);
}
scenario!(old_service_is_forgotten, forgetful_config);
