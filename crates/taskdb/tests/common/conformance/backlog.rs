//! The backlog report: ready and running tasks per kind over every tenant, the oldest ready
//! task, the declared work waiting, and the mean duration of recently finished tasks.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tiffin_taskdb::{Backlog, NewJob, TaskDb};

use super::{claim, task};

async fn of(db: &Arc<dyn TaskDb>, kind: &str) -> Backlog {
    let all = db.backlog(100).await.unwrap();
    all.into_iter().find(|b| b.kind == kind).unwrap_or_else(|| panic!("no backlog for {kind}"))
}

async fn backlog_counts_ready_running_and_work(db: Arc<dyn TaskDb>) {
    assert!(db.backlog(100).await.unwrap().is_empty(), "no streams, no backlog");
    let before = chrono::Utc::now();
    let tasks = vec![
        task("p1", "prove").work(1 << 20),
        task("p2", "prove").work(1 << 16),
        task("p3", "prove"),
        task("j", "join").after(["p1", "p2"]),
    ];
    db.create_job(NewJob::new("t1", tasks)).await.unwrap();
    db.create_job(NewJob::new("t2", vec![task("q", "prove").work(1 << 16)])).await.unwrap();
    let kinds: Vec<String> = db.backlog(100).await.unwrap().into_iter().map(|b| b.kind).collect();
    assert_eq!(kinds, ["join", "prove"], "one backlog per kind, in kind order");

    let prove = of(&db, "prove").await;
    assert_eq!((prove.ready, prove.running), (4, 0), "summed over tenants");
    assert_eq!(prove.ready_work, (1 << 20) + 2 * (1 << 16));
    assert_eq!(prove.ready_without_work, 1);
    let oldest = prove.oldest_ready_at.expect("ready tasks have an age");
    assert!(oldest >= before - chrono::Duration::seconds(1) && oldest <= chrono::Utc::now());
    let join = of(&db, "join").await;
    assert_eq!((join.ready, join.running, join.oldest_ready_at), (0, 0, None), "pending ≠ ready");

    // A claimed task moves from ready to running, and its work leaves the waiting sum.
    let lease = claim(&db, &["prove"]).await.unwrap();
    let prove = of(&db, "prove").await;
    assert_eq!((prove.ready + prove.running, prove.running), (4, 1));
    assert!(prove.ready_work < (1 << 20) + 2 * (1 << 16));
    db.complete(&lease, json!(null)).await.unwrap();
    assert_eq!(of(&db, "prove").await.running, 0);
}
scenario!(backlog_counts_ready_running_and_work);

async fn backlog_measures_finished_tasks(db: Arc<dyn TaskDb>) {
    let tasks = vec![task("a", "exec"), task("b", "exec"), task("c", "exec"), task("d", "aux")];
    db.create_job(NewJob::new("t", tasks)).await.unwrap();
    assert_eq!((of(&db, "exec").await.sampled, of(&db, "exec").await.mean_secs), (0, None));
    for pause in [100, 300] {
        let lease = claim(&db, &["exec"]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(pause)).await;
        db.complete(&lease, json!(null)).await.unwrap();
    }
    let exec = of(&db, "exec").await;
    assert_eq!(exec.sampled, 2);
    let mean = exec.mean_secs.expect("measured");
    assert!((0.19..1.0).contains(&mean), "mean of ~0.1 s and ~0.3 s: {mean}");
    // Only the newest `sample` finished tasks count: the last one took ~0.3 s.
    let newest = db.backlog(1).await.unwrap().into_iter().find(|b| b.kind == "exec").unwrap();
    assert_eq!(newest.sampled, 1);
    assert!(newest.mean_secs.unwrap() >= 0.29, "{newest:?}");
    // A failed task is not a finished one, and other kinds keep their own numbers.
    let lease = claim(&db, &["exec"]).await.unwrap();
    db.fail(&lease, "boom", tiffin_taskdb::FailureKind::Permanent).await.unwrap();
    assert_eq!(of(&db, "exec").await.sampled, 2);
    assert_eq!(of(&db, "aux").await.sampled, 0);
}
scenario!(backlog_measures_finished_tasks);

/// `served`: the work finished in a window per kind and job meta field, timed from first
/// claim to completion, leaving out failed tasks and tasks of other windows.
async fn served_sums_finished_work_per_kind_and_meta(db: Arc<dyn TaskDb>) {
    assert!(db.served(Duration::from_secs(60), "receipt_kind").await.unwrap().is_empty());
    let job = |tenant: &str, meta, tasks| NewJob::new(tenant, tasks).meta(meta);
    let succinct = json!({ "receipt_kind": "succinct" });
    let tasks = vec![task("p1", "prove").work(1 << 20), task("p2", "prove").work(1 << 20)];
    db.create_job(job("t1", succinct.clone(), tasks)).await.unwrap();
    let tasks = vec![task("p", "prove").work(1 << 18), task("x", "exec")];
    db.create_job(job("t2", json!({ "receipt_kind": "composite" }), tasks)).await.unwrap();
    db.create_job(job("t3", json!({ "receipt_kind": 7 }), vec![task("q", "prove").work(64)]))
        .await
        .unwrap();
    db.create_job(job("t3", succinct, vec![task("f", "prove").work(1 << 30)])).await.unwrap();
    let mut timed = 0.0;
    while let Some(lease) = claim(&db, &["prove"]).await {
        let started = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if lease.key == "f" {
            db.fail(&lease, "boom", tiffin_taskdb::FailureKind::Permanent).await.unwrap();
            continue;
        }
        db.complete(&lease, json!(null)).await.unwrap();
        if lease.key.starts_with('p') && lease.key.len() == 2 {
            timed += started.elapsed().as_secs_f64();
        }
    }
    let x = claim(&db, &["exec"]).await.unwrap();
    db.complete(&x, json!(null)).await.unwrap();

    let got = db.served(Duration::from_secs(600), "receipt_kind").await.unwrap();
    let row = |kind: &str, group: Option<&str>| {
        got.iter()
            .find(|s| s.kind == kind && s.group.as_deref() == group)
            .unwrap_or_else(|| panic!("no {kind}/{group:?} in {got:?}"))
    };
    let order: Vec<_> = got.iter().map(|s| (s.kind.as_str(), s.group.as_deref())).collect();
    assert_eq!(
        order,
        [
            ("exec", Some("composite")),
            ("prove", None),
            ("prove", Some("composite")),
            ("prove", Some("succinct"))
        ],
        "kind then group; a meta value that is not a string has no group"
    );
    let s = row("prove", Some("succinct"));
    assert_eq!((s.tasks, s.work), (2, 2 << 20), "the failed task is not served");
    assert!(s.busy_secs >= 0.19 && s.busy_secs < timed + 1.0, "{s:?}, timed {timed}");
    assert_eq!((row("prove", None).tasks, row("prove", None).work), (1, 64));
    let exec = row("exec", Some("composite"));
    assert_eq!((exec.tasks, exec.work, exec.busy_secs), (1, 0, 0.0), "untimed without work");
    // A window that ended before the tasks finished sees none of them.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(db.served(Duration::from_millis(20), "receipt_kind").await.unwrap().is_empty());
    let bad = db.served(Duration::from_secs(60), "a'; DROP").await.unwrap_err();
    assert!(matches!(bad, tiffin_taskdb::Error::InvalidArgument(_)), "{bad:?}");
}
scenario!(served_sums_finished_work_per_kind_and_meta);
