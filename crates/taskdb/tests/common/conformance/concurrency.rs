//! Work alongside other work: vacuum, wake-ups, concurrent claimers, racing completions, the running limit.

use super::*;

/// The housekeeper vacuums while agents work: vacuums over several connections at once, and
/// alongside claims and completions, all succeed and change nothing anyone can see.
async fn vacuum_runs_alongside_work(db: Arc<dyn TaskDb>) {
    let tasks: Vec<NewTask> = (0..300).map(|i| task(&format!("t{i}"), "x")).collect();
    let job = db.create_job(NewJob::new("t", tasks)).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let vacuums: Vec<_> = (0..3)
        .map(|_| {
            let (db, stop) = (db.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while n < 2 || !stop.load(Ordering::Relaxed) {
                    db.vacuum().await.expect("vacuum");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (db, done) = (db.clone(), done.clone());
            tokio::spawn(async move {
                while let Some(l) = claim(&db, &["x"]).await {
                    db.complete(&l, json!(l.key)).await.expect("complete");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for v in vacuums {
        assert!(v.await.unwrap() >= 2);
    }
    db.vacuum().await.unwrap();
    assert_eq!(done.load(Ordering::Relaxed), 300, "every task completed exactly once");
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Succeeded);
    assert_eq!(st.count("x", TaskState::Done), 300);
    assert_eq!(db.task_output(job, "t7").await.unwrap(), Some(json!("t7")));
    assert_eq!(running_total(&db).await, 0);
    // the queue still works after vacuuming
    let j2 = db.create_job(NewJob::new("t", vec![task("again", "x")])).await.unwrap();
    assert!(db.wait_for_work(&[k("x")], LONG).await.unwrap(), "the probe sees the new task");
    let l = claim(&db, &["x"]).await.unwrap();
    assert_eq!(l.job_id, j2);
}
scenario!(vacuum_runs_alongside_work);

async fn wait_for_work_wakes_promptly(db: Arc<dyn TaskDb>) {
    // nothing there: times out
    assert!(!db.wait_for_work(&[k("x")], Duration::from_millis(200)).await.unwrap());
    // a blocked waiter (60 s timeout, 60 s fallback poll) returns right after work is added
    let waiter = {
        let db = db.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = db.wait_for_work(&[k("x")], Duration::from_secs(60)).await.unwrap();
            (r, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // work of another kind does not wake it for good
    db.create_job(NewJob::new("t", vec![task("o", "other")])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());
    let added = Instant::now();
    let job = db.create_job(NewJob::new("t", vec![task("a", "x")])).await.unwrap();
    let (woke, _) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken within 5 s")
        .unwrap();
    assert!(woke);
    assert!(added.elapsed() < Duration::from_secs(5));
    // work already present: returns at once
    assert!(db.wait_for_work(&[k("x")], Duration::from_secs(60)).await.unwrap());
    // a task made ready by a completion wakes a waiter too
    let l = claim(&db, &["x"]).await.unwrap();
    db.add_tasks(job, vec![task("b", "y").after(["a"])]).await.unwrap();
    let waiter = {
        let db = db.clone();
        tokio::spawn(
            async move { db.wait_for_work(&[k("y")], Duration::from_secs(60)).await.unwrap() },
        )
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    db.complete(&l, json!(null)).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("woken").unwrap());
}
scenario!(wait_for_work_wakes_promptly);

async fn concurrent_claimers_never_share_a_task(db: Arc<dyn TaskDb>) {
    const N: usize = 5000;
    let first: Vec<NewTask> = (0..1000).map(|i| task(&format!("t{i}"), "x")).collect();
    let job = db.create_job(NewJob::new("t", first)).await.unwrap();
    for b in 1..5 {
        let batch = (b * 1000..(b + 1) * 1000).map(|i| task(&format!("t{i}"), "x")).collect();
        db.add_tasks(job, batch).await.unwrap();
    }
    let seen = Arc::new(std::sync::Mutex::new(HashSet::new()));
    let completed = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::new();
    for w in 0..32 {
        let (db, seen, completed) = (db.clone(), seen.clone(), completed.clone());
        hs.push(tokio::spawn(async move {
            let mut mine = 0;
            while let Some(l) = db.claim(&format!("w{w}"), &[k("x")], LONG).await.unwrap() {
                assert!(
                    seen.lock().unwrap().insert((l.task_id, l.attempt)),
                    "(task, attempt) handed out twice"
                );
                db.complete(&l, json!(w)).await.unwrap();
                completed.fetch_add(1, Ordering::Relaxed);
                mine += 1;
            }
            mine
        }));
    }
    let mut per_worker = Vec::new();
    for h in hs {
        per_worker.push(h.await.unwrap());
    }
    assert_eq!(completed.load(Ordering::Relaxed), N);
    assert_eq!(seen.lock().unwrap().len(), N);
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Succeeded);
    assert_eq!(st.count("x", TaskState::Done), N as i64);
    assert_eq!(running_total(&db).await, 0);
}
scenario!(concurrent_claimers_never_share_a_task);

async fn racing_last_completions_end_the_job(db: Arc<dyn TaskDb>) {
    // Jobs of two sinks whose completions race: each job must end exactly when both are done.
    for round in 0..30 {
        let job =
            db.create_job(NewJob::new("t", vec![task("p", "x"), task("q", "x")])).await.unwrap();
        let (p, q) = (claim(&db, &["x"]).await.unwrap(), claim(&db, &["x"]).await.unwrap());
        let (d1, d2) = (db.clone(), db.clone());
        let a = tokio::spawn(async move { d1.complete(&p, json!(null)).await.unwrap() });
        let b = tokio::spawn(async move { d2.complete(&q, json!(null)).await.unwrap() });
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(
            a.job_state == JobState::Succeeded || b.job_state == JobState::Succeeded,
            "round {round}: the later of two last completions reports the job's end: {a:?} {b:?}"
        );
        let st = db.job(job).await.unwrap();
        assert_eq!(st.state, JobState::Succeeded, "round {round}");
        assert!(st.finished_at.is_some());
    }
    assert_eq!(running_total(&db).await, 0);
}
scenario!(racing_last_completions_end_the_job);

/// A tenant's running limit holds under concurrent creates (API processes sharing one
/// database race exactly like this), counts only that tenant's running jobs, and frees a slot
/// when a job ends.
async fn running_limit_holds_under_concurrent_creates(db: Arc<dyn TaskDb>) {
    let create = |tenant: &'static str| {
        let db = db.clone();
        async move { db.create_job(NewJob::new(tenant, vec![task("a", "x")]).running_limit(2)).await }
    };
    let results = futures::future::join_all((0..8).map(|_| create("q"))).await;
    let created: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(created.len(), 2, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, Error::RunningLimit { running: 2, limit: 2, .. }),
                "{e} ({})",
                e.code()
            );
        }
    }
    create("other").await.expect("another tenant has its own count");
    assert!(db.cancel_job(*created[0]).await.unwrap());
    create("q").await.expect("a slot freed by the cancelled job");
    assert!(matches!(create("q").await.unwrap_err(), Error::RunningLimit { .. }));
}
scenario!(running_limit_holds_under_concurrent_creates);
