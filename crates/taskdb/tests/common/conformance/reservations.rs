//! Reservations that hold: a reservation of N pins N live agents of the registry (the first to
//! report that serve its kind). While the tenant has ready work they take only its tasks, even
//! when another tenant's backlog is older or was served less; when it has none they serve the
//! others (`serve-others`) or claim nothing (`wait`).

use std::sync::Arc;

use serde_json::json;
use tiffin_taskdb::{Lease, NewJob, ReservationIdle, StreamConfig, TaskDb};

use super::{LONG, k, saturate, task};

/// Three workers report in this order: the reservation pins the first two.
const WORKERS: [&str; 3] = ["w0", "w1", "w2"];

async fn register(db: &Arc<dyn TaskDb>, agents: &[&str]) {
    for a in agents {
        db.agent_seen(a, &[k("prove")], &json!(null)).await.unwrap();
    }
}

async fn reserve(db: &Arc<dyn TaskDb>, tenant: &str, n: i32, idle: ReservationIdle) {
    let config = StreamConfig { reserved: n, idle, ..StreamConfig::default() };
    db.set_stream(tenant, &k("prove"), config).await.unwrap();
}

async fn claim_as(db: &Arc<dyn TaskDb>, agent: &str) -> Option<Lease> {
    db.claim(agent, &[k("prove")], LONG).await.expect("claim")
}

async fn ready_of(db: &Arc<dyn TaskDb>, tenant: &str) -> i64 {
    db.streams().await.unwrap().iter().filter(|s| s.tenant == tenant).map(|s| s.ready).sum()
}

async fn pinned_agents_take_only_their_tenants_tasks(db: Arc<dyn TaskDb>) {
    register(&db, &WORKERS).await;
    // A's backlog is older and A was served nothing: without pins it would win on every rule
    saturate(&db, "a", "prove", 40).await;
    reserve(&db, "b", 2, ReservationIdle::ServeOthers).await;
    saturate(&db, "b", "prove", 8).await;
    let pins: Vec<(String, String)> =
        db.pins().await.unwrap().into_iter().map(|p| (p.agent, p.tenant)).collect();
    let want = [("w0", "b"), ("w1", "b")].map(|(a, t)| (a.to_string(), t.to_string()));
    assert_eq!(pins, want, "operators see who holds which agents");
    // the unpinned worker fills B's floor first; the pinned ones must still take B
    let other = claim_as(&db, "w2/0").await.unwrap();
    let mut held = vec![other];
    let mut taken_by_pinned = 0;
    while ready_of(&db, "b").await > 0 {
        for (agent, slot) in [("w0", "w0/0"), ("w1", "w1/3")] {
            if ready_of(&db, "b").await == 0 {
                break;
            }
            let l = claim_as(&db, slot).await.unwrap();
            assert_eq!(l.tenant, "b", "{agent} is pinned to b while b has ready work");
            taken_by_pinned += 1;
            held.push(l);
        }
        // the pinned agents finish; B's running stays at or above its reservation meanwhile
        for l in held.drain(1..) {
            db.complete(&l, json!(null)).await.unwrap();
        }
    }
    assert!(taken_by_pinned >= 7, "pinned agents took b's tasks: {taken_by_pinned}");
    // nothing of B ready: serve-others, so the pinned agents serve A
    assert_eq!(claim_as(&db, "w0/0").await.unwrap().tenant, "a");
    assert_eq!(claim_as(&db, "w1/0").await.unwrap().tenant, "a");
    // the unpinned worker follows the fair share: B was served more than its weight, A goes
    assert_eq!(claim_as(&db, "w2/1").await.unwrap().tenant, "a");
}
scenario!(pinned_agents_take_only_their_tenants_tasks);

async fn pinned_agents_wait_when_their_reservation_says_so(db: Arc<dyn TaskDb>) {
    register(&db, &WORKERS).await;
    saturate(&db, "a", "prove", 20).await;
    reserve(&db, "b", 2, ReservationIdle::Wait).await;
    assert!(claim_as(&db, "w0/0").await.is_none(), "w0 is pinned to b, which has nothing ready");
    assert!(claim_as(&db, "w1").await.is_none(), "w1 likewise");
    assert!(db.claim_batch("w1/1", &[k("prove")], LONG, 4).await.unwrap().is_empty());
    assert_eq!(claim_as(&db, "w2/0").await.unwrap().tenant, "a", "the unpinned one serves a");
    let b = db.create_job(NewJob::new("b", vec![task("b-0", "prove")])).await.unwrap();
    let l = claim_as(&db, "w1/0").await.unwrap();
    assert_eq!((l.tenant.as_str(), l.job_id), ("b", b), "b's task starts at once");
    // a batch takes b's tasks, then stops: it does not fill up with a's
    saturate(&db, "b", "prove", 2).await;
    let batch = db.claim_batch("w0/0", &[k("prove")], LONG, 5).await.unwrap();
    let tenants: Vec<&str> = batch.iter().map(|l| l.tenant.as_str()).collect();
    assert_eq!(tenants, ["b", "b"]);
}
scenario!(pinned_agents_wait_when_their_reservation_says_so);

async fn a_forgotten_pinned_agent_hands_its_pin_on(db: Arc<dyn TaskDb>) {
    register(&db, &["w0"]).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    register(&db, &["w1", "w2"]).await;
    saturate(&db, "a", "prove", 20).await;
    reserve(&db, "b", 2, ReservationIdle::Wait).await;
    // w0 and w1 are pinned; w2 serves a
    assert!(claim_as(&db, "w0").await.is_none());
    assert_eq!(claim_as(&db, "w2").await.unwrap().tenant, "a");
    // w0 stops reporting and leaves the registry: w2 is pinned in its place
    assert_eq!(db.forget_agents(std::time::Duration::from_millis(500)).await.unwrap(), 1);
    assert!(claim_as(&db, "w2").await.is_none(), "w2 now waits for b");
    assert_eq!(claim_as(&db, "w0").await.unwrap().tenant, "a", "w0 is no longer pinned");
}
scenario!(a_forgotten_pinned_agent_hands_its_pin_on);
