//! An agent that can take only so much work per task (the workflow: `--max-po2`, as the
//! segment's 2^po2 cycles) never claims a task that declares more; tasks that declare no work
//! fit every agent, and what it leaves stays for the others.

use std::sync::Arc;

use serde_json::json;
use tiffin_taskdb::{Lease, NewJob, TaskDb};

use super::{LONG, claim, k, task};

async fn claim_within(db: &Arc<dyn TaskDb>, max: usize, max_work: i64) -> Vec<Lease> {
    db.claim_batch_within("small", &[k("prove")], LONG, max, max_work).await.unwrap()
}

fn keys(ls: &[Lease]) -> Vec<&str> {
    ls.iter().map(|l| l.key.as_str()).collect()
}

async fn claims_respect_the_agents_work_limit(db: Arc<dyn TaskDb>) {
    let tasks = vec![
        task("po2-22", "prove").work(1 << 22).depth(0),
        task("po2-20", "prove").work(1 << 20).depth(1),
        task("po2-21", "prove").work(1 << 21).depth(2),
        task("unknown", "prove").depth(3),
    ];
    db.create_job(NewJob::new("t", tasks)).await.unwrap();
    // the limit itself fits; the order among what fits is the usual one
    let got = claim_within(&db, 1, 1 << 20).await;
    assert_eq!(keys(&got), ["po2-20"], "the smallest-depth task that fits");
    let got = claim_within(&db, 5, 1 << 20).await;
    assert_eq!(keys(&got), ["unknown"], "no declared work fits anyone; larger tasks stay");
    assert!(claim_within(&db, 5, 1 << 20).await.is_empty(), "nothing left that fits");
    // an agent without a limit takes what was left, in order
    assert_eq!(claim(&db, &["prove"]).await.unwrap().key, "po2-22");
    assert_eq!(claim(&db, &["prove"]).await.unwrap().key, "po2-21");

    // a stream whose ready work is all too large does not hide another's that fits, even when
    // it would go first
    db.create_job(NewJob::new("big", vec![task("b", "prove").work(1 << 24)])).await.unwrap();
    let fits = vec![task("s0", "prove").work(1 << 16), task("s1", "prove").work(1 << 16)];
    db.create_job(NewJob::new("small", fits)).await.unwrap();
    let got = claim_within(&db, 3, 1 << 20).await;
    assert_eq!(keys(&got), ["s0", "s1"]);
    assert!(got.iter().all(|l| l.tenant == "small"));
    let l = claim(&db, &["prove"]).await.unwrap();
    assert_eq!(l.key, "b", "the large task waits for an agent that can take it");
    db.complete(&l, json!(null)).await.unwrap();
    assert_eq!(db.streams().await.unwrap().iter().map(|s| s.running).sum::<i64>(), 6);
}
scenario!(claims_respect_the_agents_work_limit);
