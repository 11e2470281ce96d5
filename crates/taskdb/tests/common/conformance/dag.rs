//! Jobs as DAGs: readiness, growing DAGs, batch validation, streams, claim order, linking batches, reads and garbage collection.

use super::*;

async fn dag_readiness_and_completion(db: Arc<dyn TaskDb>) {
    // a -> b, c independent
    let job = db
        .create_job(NewJob::new(
            "t1",
            vec![task("a", "x"), task("b", "x").after(["a"]), task("c", "x")],
        ))
        .await
        .unwrap();
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Running);
    assert_eq!(st.count("x", TaskState::Ready), 2);
    assert_eq!(st.count("x", TaskState::Pending), 1);
    let la = claim(&db, &["x"]).await.unwrap();
    assert_eq!(la.key, "a");
    assert_eq!(la.attempt, 1);
    assert_eq!(la.payload, json!({"key": "a"}));
    assert_eq!(la.tenant, "t1");
    let lc = claim(&db, &["x"]).await.unwrap();
    assert_eq!(lc.key, "c");
    assert!(claim(&db, &["x"]).await.is_none(), "b must wait for a");
    let done = db.complete(&la, json!({"out": "a"})).await.unwrap();
    assert_eq!(done.became_ready, 1);
    assert_eq!(done.job_state, JobState::Running);
    // a task added after its prerequisite is done is ready at once
    db.add_tasks(job, vec![task("d", "y").after(["a"])]).await.unwrap();
    let ld = claim(&db, &["y"]).await.unwrap();
    assert_eq!(ld.key, "d");
    let lb = claim(&db, &["x"]).await.unwrap();
    assert_eq!(lb.key, "b");
    assert_eq!(db.task_output(job, "a").await.unwrap(), Some(json!({"out": "a"})));
    assert_eq!(db.task_output(job, "b").await.unwrap(), None);
    db.complete(&lb, json!(1)).await.unwrap();
    db.complete(&lc, json!(2)).await.unwrap();
    let st = db.job(job).await.unwrap();
    assert_eq!(st.remaining, 1);
    assert_eq!(st.state, JobState::Running);
    assert!(claim(&db, &["x", "y"]).await.is_none());
    assert_eq!(running_total(&db).await, 1);
    let c = db.complete(&ld, json!(4)).await.unwrap();
    assert_eq!(c.job_state, JobState::Succeeded);
    assert_eq!(db.job(job).await.unwrap().count_state(TaskState::Done), 4);
    assert_eq!(running_total(&db).await, 0);
}
scenario!(dag_readiness_and_completion);

async fn growing_dag_does_not_finish_early(db: Arc<dyn TaskDb>) {
    let job = db.create_job(NewJob::new("t", vec![task("exec", "exec")])).await.unwrap();
    let exec = claim(&db, &["exec"]).await.unwrap();
    // the executor adds work in batches while running; prove tasks finish before exec does
    db.add_tasks(job, vec![task("p0", "prove").depth(2), task("p1", "prove").depth(2)])
        .await
        .unwrap();
    db.add_tasks(job, vec![task("j0", "join").after(["p0", "p1"]).depth(1)]).await.unwrap();
    for _ in 0..2 {
        let l = claim(&db, &["prove"]).await.unwrap();
        db.complete(&l, json!(null)).await.unwrap();
    }
    let j = claim(&db, &["join"]).await.unwrap();
    let c = db.complete(&j, json!(null)).await.unwrap();
    assert_eq!(c.job_state, JobState::Running, "exec is unfinished, so the job is too");
    db.add_tasks(job, vec![task("fin", "aux").after(["j0", "exec"])]).await.unwrap();
    let c = db.complete(&exec, json!({"segments": 2})).await.unwrap();
    assert_eq!(c.job_state, JobState::Running);
    assert_eq!(c.became_ready, 1);
    let fin = claim(&db, &["aux"]).await.unwrap();
    let c = db.complete(&fin, json!("receipt")).await.unwrap();
    assert_eq!(c.job_state, JobState::Succeeded);
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Succeeded);
    assert_eq!(st.remaining, 0);
    assert_eq!(st.count_state(TaskState::Done), 5);
    assert!(st.finished_at.is_some() && st.started_at.is_some());
    assert_eq!(running_total(&db).await, 0);
    // nothing can be added to a finished job
    let e = db.add_tasks(job, vec![task("late", "aux")]).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-TASKDB-011");
}
scenario!(growing_dag_does_not_finish_early);

async fn batch_validation_errors(db: Arc<dyn TaskDb>) {
    let e = db.create_job(NewJob::new("t", vec![])).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-TASKDB-014");
    let e =
        db.create_job(NewJob::new("t", vec![task("a", "x").after(["nope"])])).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-TASKDB-012");
    assert!(e.to_string().contains("TIFFIN-TASKDB-012"));
    let job = db.create_job(NewJob::new("t", vec![task("a", "x")])).await.unwrap();
    let e = db.add_tasks(job, vec![task("a", "x")]).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-TASKDB-013");
    let e =
        db.add_tasks(job, vec![task("b", "x"), task("c", "x").after(["zz"])]).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-TASKDB-012");
    // the failed batch left nothing behind
    assert_eq!(db.tasks(job).await.unwrap().len(), 1);
    assert_eq!(db.job(job).await.unwrap().remaining, 1);
    let e = db.add_tasks(uuid::Uuid::new_v4(), vec![task("a", "x")]).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-TASKDB-010");
    assert!(db.cancel_job(job).await.unwrap());
    assert!(!db.cancel_job(job).await.unwrap());
    let e = db.add_tasks(job, vec![task("b", "x")]).await.unwrap_err();
    assert!(matches!(e, Error::JobNotRunning { .. }));
    let e = db
        .set_stream(
            "t",
            &k("x"),
            StreamConfig { priority_multiplier: 0.0, reserved: 0, ..StreamConfig::default() },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "TIFFIN-TASKDB-014");
    let e = db
        .set_stream(
            "t",
            &k("x"),
            StreamConfig { priority_multiplier: 1.0, reserved: -1, ..StreamConfig::default() },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "TIFFIN-TASKDB-014");
}
scenario!(batch_validation_errors);

async fn streams_created_idempotently(db: Arc<dyn TaskDb>) {
    let mut handles = Vec::new();
    for i in 0..16 {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            db.create_job(NewJob::new("tenant", vec![task(&format!("t{i}"), "prove")]))
                .await
                .unwrap()
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let streams = db.streams().await.unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].ready, 16);
    assert_eq!(streams[0].config, StreamConfig::default());
    db.set_stream(
        "tenant",
        &k("prove"),
        StreamConfig { priority_multiplier: 2.5, reserved: 3, ..StreamConfig::default() },
    )
    .await
    .unwrap();
    weigh(&db, "other", "join", 0.5).await;
    let streams = db.streams().await.unwrap();
    assert_eq!(streams.len(), 2);
    let s = streams.iter().find(|s| s.tenant == "tenant").unwrap();
    assert_eq!(
        s.config,
        StreamConfig { priority_multiplier: 2.5, reserved: 3, ..StreamConfig::default() }
    );
    let l = claim(&db, &["prove"]).await.unwrap();
    let s = db.streams().await.unwrap().into_iter().find(|s| s.tenant == "tenant").unwrap();
    assert_eq!((s.running, s.ready), (1, 15));
    db.complete(&l, json!(null)).await.unwrap();
    assert_eq!(running_total(&db).await, 0);
}
scenario!(streams_created_idempotently);

async fn claim_order_inside_stream(db: Arc<dyn TaskDb>) {
    let old = db
        .create_job(NewJob::new("t", vec![task("leaf", "w").depth(5), task("root", "w").depth(0)]))
        .await
        .unwrap();
    let new = db.create_job(NewJob::new("t", vec![task("n", "w").depth(0)])).await.unwrap();
    let a = claim(&db, &["w"]).await.unwrap();
    assert_eq!((a.job_id, a.key.as_str()), (old, "root"), "oldest job, nearest the root first");
    let b = claim(&db, &["w"]).await.unwrap();
    assert_eq!((b.job_id, b.key.as_str()), (old, "leaf"));
    let c = claim(&db, &["w"]).await.unwrap();
    assert_eq!(c.job_id, new);
    // kinds filter
    db.create_job(NewJob::new("t", vec![task("z", "other")])).await.unwrap();
    assert!(claim(&db, &["w"]).await.is_none());
    assert_eq!(claim_key(&db, &["w", "other"]).await, "z");
}
scenario!(claim_order_inside_stream);

async fn batches_link_to_prerequisites_completing_meanwhile(db: Arc<dyn TaskDb>) {
    // The executor adds batches while 8 workers complete earlier ones: each batch's cross join
    // links to a task of the previous batch that is probably completing at that moment. A
    // prerequisite that completed unseen would strand its new dependent (the drain times out).
    let job = db.create_job(NewJob::new("t", vec![task("exec", "exec")])).await.unwrap();
    let exec = claim(&db, &["exec"]).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let done: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..8 {
        let (db, stop, done) = (db.clone(), stop.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match db.claim(&format!("w{w}"), &[k("x")], LONG).await.unwrap() {
                    Some(l) => {
                        let c = db.complete(&l, json!(w)).await.unwrap();
                        assert_eq!(c.job_state, JobState::Running, "exec is unfinished");
                        *done.lock().unwrap().entry(l.key).or_default() += 1;
                    }
                    None => tokio::time::sleep(Duration::from_millis(1)).await,
                }
            }
        }));
    }
    let mut total = 0;
    for b in 0..24 {
        let leaf = |i: usize| format!("l{b}.{i}");
        let mut batch: Vec<NewTask> = (0..8).map(|i| task(&leaf(i), "x").depth(2)).collect();
        for j in 0..4 {
            let pair = [leaf(2 * j), leaf(2 * j + 1)];
            batch.push(task(&format!("j{b}.{j}"), "x").after(pair).depth(1));
        }
        if b > 0 {
            let prev = [format!("j{}.0", b - 1), format!("l{}.7", b - 1), format!("l{b}.0")];
            batch.push(task(&format!("c{b}"), "x").after(prev));
        }
        total += batch.len();
        db.add_tasks(job, batch).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.lock().unwrap().len() < total {
        let n = done.lock().unwrap().len();
        assert!(Instant::now() < deadline, "tasks stranded: {n} of {total} done");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    assert!(done.lock().unwrap().values().all(|&c| c == 1), "every task completed exactly once");
    let st = db.job(job).await.unwrap();
    assert_eq!((st.state, st.remaining), (JobState::Running, 1), "only exec is left");
    let c = db.complete(&exec, json!(null)).await.unwrap();
    assert_eq!(c.job_state, JobState::Succeeded);
    let st = db.job(job).await.unwrap();
    assert_eq!((st.count_state(TaskState::Done), st.remaining), (total as i64 + 1, 0));
    assert_eq!(running_total(&db).await, 0);
}
scenario!(batches_link_to_prerequisites_completing_meanwhile);

async fn reads_and_listing(db: Arc<dyn TaskDb>) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let tenant = if i % 2 == 0 { "even" } else { "odd" };
        let id = db
            .create_job(
                NewJob::new(tenant, vec![task("a", "x"), task("b", "y").after(["a"])])
                    .meta(json!({"n": i})),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    db.cancel_job(ids[0]).await.unwrap();
    db.set_job_output(ids[1], json!({"receipt": "r1"})).await.unwrap();
    let st = db.job(ids[1]).await.unwrap();
    assert_eq!(st.meta, json!({"n": 1}));
    assert_eq!(st.output, Some(json!({"receipt": "r1"})));
    assert_eq!(st.tenant, "odd");
    assert_eq!(st.count("x", TaskState::Ready), 1);
    assert_eq!(st.count("y", TaskState::Pending), 1);
    assert!(st.started_at.is_none());
    let tasks = db.tasks(ids[1]).await.unwrap();
    assert_eq!(tasks.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
    assert_eq!(tasks[1].waiting, 1);
    let all = db.list_jobs(JobFilter::default()).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].id, ids[4], "newest first");
    let even = db
        .list_jobs(JobFilter { tenant: Some("even".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(even.len(), 3);
    let cancelled = db
        .list_jobs(JobFilter { state: Some(JobState::Cancelled), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(cancelled.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[0]]);
    let page = db.list_jobs(JobFilter { limit: 2, offset: 2, ..Default::default() }).await.unwrap();
    assert_eq!(page.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[2], ids[1]]);
    assert_eq!(db.job(uuid::Uuid::new_v4()).await.unwrap_err().code(), "TIFFIN-TASKDB-010");
    let streams = db.streams().await.unwrap();
    assert_eq!(streams.len(), 4);
    let ex = streams.iter().find(|s| s.tenant == "even" && s.kind == "x").unwrap();
    assert_eq!(ex.ready, 2, "the cancelled job's task is not ready");
}
scenario!(reads_and_listing);

async fn gc_deletes_finished_jobs(db: Arc<dyn TaskDb>) {
    let mut finished = Vec::new();
    for i in 0..5 {
        let j = db
            .create_job(NewJob::new("t", vec![task("a", "x"), task("b", "x").after(["a"])]))
            .await
            .unwrap();
        if i < 3 {
            db.cancel_job(j).await.unwrap();
            finished.push(j);
        }
    }
    let j = db.create_job(NewJob::new("t", vec![task("a", "done")])).await.unwrap();
    let l = claim(&db, &["done"]).await.unwrap();
    db.complete(&l, json!(null)).await.unwrap();
    finished.push(j);
    assert!(db.gc(Duration::from_secs(3600), 10).await.unwrap().is_empty(), "retention respected");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut deleted = Vec::new();
    loop {
        let batch = db.gc(Duration::from_millis(1), 3).await.unwrap();
        assert!(batch.len() <= 3);
        if batch.is_empty() {
            break;
        }
        deleted.extend(batch);
    }
    let (a, b): (HashSet<_>, HashSet<_>) = (deleted.iter().collect(), finished.iter().collect());
    assert_eq!(a, b);
    for j in finished {
        assert_eq!(db.job(j).await.unwrap_err().code(), "TIFFIN-TASKDB-010");
    }
    assert_eq!(db.list_jobs(JobFilter::default()).await.unwrap().len(), 2);
    // running jobs are untouched and still work
    let l = claim(&db, &["x"]).await.unwrap();
    db.complete(&l, json!(null)).await.unwrap();
}
scenario!(gc_deletes_finished_jobs);
