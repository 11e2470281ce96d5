//! Claims and completions in batches: claim order, the policy per task, per-lease outcomes, workers that batch.

use super::*;

async fn claim_batch_takes_tasks_in_claim_order(db: Arc<dyn TaskDb>) {
    let old = db
        .create_job(NewJob::new(
            "t",
            vec![
                task("leaf", "w").depth(5),
                task("root", "w").depth(0),
                task("mid", "w").depth(2),
                task("after", "w").after(["root"]),
            ],
        ))
        .await
        .unwrap();
    let new = db.create_job(NewJob::new("t", vec![task("n", "w").depth(0)])).await.unwrap();
    assert!(claim_batch(&db, &["w"], 0).await.is_empty(), "max 0 claims nothing");
    assert_eq!(running_total(&db).await, 0);
    let got = claim_batch(&db, &["w"], 3).await;
    let keys: Vec<(uuid::Uuid, &str)> = got.iter().map(|l| (l.job_id, l.key.as_str())).collect();
    assert_eq!(keys, vec![(old, "root"), (old, "mid"), (old, "leaf")], "as three claims would");
    assert!(got.iter().all(|l| l.attempt == 1 && l.tenant == "t" && l.kind == k("w")));
    assert_eq!(got[0].payload, json!({"key": "root"}));
    assert_eq!(running_total(&db).await, 3);
    assert_eq!(db.job(old).await.unwrap().count("w", TaskState::Leased), 3);
    // fewer ready than asked: what there is; pending tasks are not claimable
    let rest = claim_batch(&db, &["w"], 10).await;
    assert_eq!(rest.iter().map(|l| (l.job_id, l.key.as_str())).collect::<Vec<_>>(), [(new, "n")]);
    assert!(claim_batch(&db, &["w"], 10).await.is_empty(), "nothing claimable: empty");
    // the leases are real: each completes, and the dependent becomes claimable
    let c = db.complete(&got[0], json!(null)).await.unwrap();
    assert_eq!(c.became_ready, 1);
    assert_eq!(claim_batch(&db, &["w", "other"], 5).await[0].key, "after");
    assert_eq!(running_total(&db).await, 4);
}
scenario!(claim_batch_takes_tasks_in_claim_order);

async fn claim_batch_follows_the_policy_per_task(db: Arc<dyn TaskDb>) {
    weigh(&db, "one", "prove", 1.0).await;
    weigh(&db, "three", "prove", 3.0).await;
    saturate(&db, "one", "prove", 50).await;
    saturate(&db, "three", "prove", 50).await;
    let per = |ls: &[Lease], t: &str| ls.iter().filter(|l| l.tenant == t).count();
    let got = claim_batch(&db, &["prove"], 8).await;
    assert_eq!((per(&got, "one"), per(&got, "three")), (2, 6), "one batch splits 1:3");
    // a reservation goes first inside a batch too, then the shares count what is running
    db.set_stream(
        "vip",
        &k("prove"),
        StreamConfig { priority_multiplier: 0.1, reserved: 2, ..StreamConfig::default() },
    )
    .await
    .unwrap();
    saturate(&db, "vip", "prove", 10).await;
    let got = claim_batch(&db, &["prove"], 6).await;
    assert_eq!(per(&got, "vip"), 2, "the reserved slots, then no more (2/0.1 loses)");
    assert_eq!((per(&got, "one"), per(&got, "three")), (1, 3));
    let vip = db.streams().await.unwrap().into_iter().find(|s| s.tenant == "vip").unwrap();
    assert_eq!(vip.running, 2);
    assert_eq!(running_total(&db).await, 14);
}
scenario!(claim_batch_follows_the_policy_per_task);

async fn complete_batch_reports_each_lease(db: Arc<dyn TaskDb>) {
    // a, b -> j; c sink; x in another job that gets cancelled; e expires
    let job = db
        .create_job(NewJob::new(
            "t",
            vec![
                task("a", "x"),
                task("b", "x"),
                task("c", "x"),
                task("j", "y").after(["a", "b"]),
                task("e", "x"),
            ],
        ))
        .await
        .unwrap();
    let other = db.create_job(NewJob::new("u", vec![task("x", "x")])).await.unwrap();
    let mut ls: HashMap<String, Lease> = HashMap::new();
    for l in claim_batch(&db, &["x"], 4).await {
        ls.insert(l.key.clone(), l);
    }
    let short = db.claim("slow", &[k("x")], Duration::from_millis(50)).await.unwrap().unwrap();
    ls.insert(short.key.clone(), short);
    assert_eq!(ls.len(), 5, "a, b, c, x and e are leased: {:?}", ls.keys());
    assert!(db.cancel_job(other).await.unwrap());
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(db.complete_batch(vec![]).await.unwrap().is_empty());
    let batch = vec![
        (ls["a"].clone(), json!("A")),
        (ls["x"].clone(), json!("X")),
        (ls["b"].clone(), json!("B")),
        (ls["e"].clone(), json!("E")),
        (ls["a"].clone(), json!("again")),
    ];
    let out = db.complete_batch(batch).await.unwrap();
    assert_eq!(out.len(), 5);
    let ready: i64 = out.iter().filter_map(|r| r.as_ref().ok()).map(|c| c.became_ready).sum();
    assert_eq!(ready, 1, "j became ready once, from the batch: {out:?}");
    assert!(out[0].as_ref().is_ok_and(|c| c.job_state == JobState::Running));
    assert_eq!(out[1].as_ref().unwrap_err().code(), "TIFFIN-TASKDB-021", "x was cancelled");
    assert!(out[2].as_ref().is_ok_and(|c| c.job_state == JobState::Running));
    assert_eq!(out[3].as_ref().unwrap_err().code(), "TIFFIN-TASKDB-020", "e's lease expired");
    assert_eq!(out[4].as_ref().unwrap_err().code(), "TIFFIN-TASKDB-020", "a twice: once only");
    assert_eq!(db.task_output(job, "a").await.unwrap(), Some(json!("A")));
    assert_eq!(db.task_output(job, "e").await.unwrap(), None, "the refused ones changed nothing");
    assert_eq!(db.job(other).await.unwrap().count_state(TaskState::Cancelled), 1);
    assert_eq!(db.requeue_expired().await.unwrap(), 1);
    // finish the job with one batch: its last tasks report the job's end
    let j = claim(&db, &["y"]).await.unwrap();
    let e = claim(&db, &["x"]).await.unwrap();
    assert_eq!(e.key, "e");
    let out = db
        .complete_batch(vec![(j, json!("J")), (ls["c"].clone(), json!("C")), (e, json!("E"))])
        .await
        .unwrap();
    assert!(out.iter().all(|r| r.as_ref().is_ok()), "{out:?}");
    assert_eq!(out[2].as_ref().unwrap().job_state, JobState::Succeeded);
    let st = db.job(job).await.unwrap();
    assert_eq!((st.state, st.remaining), (JobState::Succeeded, 0));
    assert!(st.finished_at.is_some());
    assert_eq!(running_total(&db).await, 0);
}
scenario!(complete_batch_reports_each_lease);

async fn batched_workers_share_nothing(db: Arc<dyn TaskDb>) {
    const N: usize = 3000;
    let tasks: Vec<NewTask> = (0..N).map(|i| task(&format!("t{i}"), "x")).collect();
    let job = db.create_job(NewJob::new("t", tasks)).await.unwrap();
    let seen = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let mut hs = Vec::new();
    for w in 0..16 {
        let (db, seen) = (db.clone(), seen.clone());
        hs.push(tokio::spawn(async move {
            loop {
                let ls = db.claim_batch(&format!("w{w}"), &[k("x")], LONG, 1 + w % 8).await;
                let ls = ls.unwrap();
                if ls.is_empty() {
                    return;
                }
                for l in &ls {
                    assert!(seen.lock().unwrap().insert(l.task_id), "a task handed out twice");
                }
                let done = ls.into_iter().map(|l| (l, json!(w))).collect();
                for r in db.complete_batch(done).await.unwrap() {
                    r.unwrap();
                }
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    assert_eq!(seen.lock().unwrap().len(), N);
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Succeeded);
    assert_eq!(st.count("x", TaskState::Done), N as i64);
    assert_eq!(running_total(&db).await, 0);
}
scenario!(batched_workers_share_nothing);
