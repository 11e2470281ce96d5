//! Fencing, cancellation, failures and retries, expired and released leases, job deadlines.

use super::*;

async fn fencing_rejects_late_calls(db: Arc<dyn TaskDb>) {
    let job = db.create_job(NewJob::new("t", vec![task("a", "x")])).await.unwrap();
    let old = db.claim("slow", &[k("x")], Duration::from_millis(100)).await.unwrap().unwrap();
    assert!(matches!(
        db.heartbeat(&old, Duration::from_millis(100)).await.unwrap(),
        HeartbeatOutcome::Continue { .. }
    ));
    tokio::time::sleep(Duration::from_millis(250)).await;
    // expired but not yet requeued: already rejected
    let e = db.complete(&old, json!("late")).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-TASKDB-020");
    assert_eq!(db.requeue_expired().await.unwrap(), 1);
    assert_eq!(running_total(&db).await, 0);
    let new = claim(&db, &["x"]).await.unwrap();
    assert_eq!(new.attempt, 2);
    assert!(matches!(db.complete(&old, json!("late")).await.unwrap_err(), Error::LeaseLost { .. }));
    assert!(matches!(
        db.fail(&old, "late", FailureKind::Permanent).await.unwrap_err(),
        Error::LeaseLost { .. }
    ));
    assert!(matches!(db.heartbeat(&old, LONG).await.unwrap_err(), Error::LeaseLost { .. }));
    // the late calls changed nothing
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Running);
    assert_eq!(st.count("x", TaskState::Leased), 1);
    let c = db.complete(&new, json!("ok")).await.unwrap();
    assert_eq!(c.job_state, JobState::Succeeded);
    assert_eq!(db.task_output(job, "a").await.unwrap(), Some(json!("ok")));
    // completing twice is rejected too
    assert!(matches!(
        db.complete(&new, json!("again")).await.unwrap_err(),
        Error::LeaseLost { .. }
    ));
}
scenario!(fencing_rejects_late_calls);

async fn cancel_cascades_and_heartbeat_says_cancelled(db: Arc<dyn TaskDb>) {
    let job = db
        .create_job(NewJob::new(
            "t",
            vec![task("a", "x"), task("b", "x"), task("c", "x").after(["a", "b"])],
        ))
        .await
        .unwrap();
    let la = claim(&db, &["x"]).await.unwrap();
    assert_eq!(running_total(&db).await, 1);
    assert!(db.cancel_job(job).await.unwrap());
    assert_eq!(db.heartbeat(&la, LONG).await.unwrap(), HeartbeatOutcome::Cancelled);
    let e = db.complete(&la, json!(null)).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-TASKDB-021");
    assert!(claim(&db, &["x"]).await.is_none(), "tasks of a cancelled job are never handed out");
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Cancelled);
    assert_eq!(st.count_state(TaskState::Cancelled), 3);
    assert!(st.finished_at.is_some());
    assert_eq!(running_total(&db).await, 0);
    let e = db.cancel_job(uuid::Uuid::new_v4()).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-TASKDB-010");
}
scenario!(cancel_cascades_and_heartbeat_says_cancelled);

async fn permanent_failure_cascades(db: Arc<dyn TaskDb>) {
    let job = db
        .create_job(NewJob::new(
            "t",
            vec![task("a", "x"), task("b", "y"), task("c", "x").after(["a"])],
        ))
        .await
        .unwrap();
    let other = db.create_job(NewJob::new("t", vec![task("o", "x")])).await.unwrap();
    let la = claim(&db, &["x"]).await.unwrap();
    let lb = claim(&db, &["y"]).await.unwrap();
    assert_eq!(la.key, "a");
    assert_eq!(
        db.fail(&la, "guest panicked", FailureKind::Permanent).await.unwrap(),
        FailOutcome::JobFailed
    );
    assert_eq!(db.heartbeat(&lb, LONG).await.unwrap(), HeartbeatOutcome::Cancelled);
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Failed);
    assert!(st.error.as_deref().unwrap().contains("guest panicked"));
    let f = st.first_failure.clone().unwrap();
    assert_eq!((f.task.as_str(), f.error.as_str()), ("a", "guest panicked"));
    assert_eq!(st.count("x", TaskState::Failed), 1);
    assert_eq!(st.count_state(TaskState::Cancelled), 2);
    // only the other job's task is claimable
    let lo = claim(&db, &["x", "y"]).await.unwrap();
    assert_eq!(lo.job_id, other);
    assert!(claim(&db, &["x", "y"]).await.is_none());
    assert_eq!(running_total(&db).await, 1);
    // a late completion cannot resurrect the failed job
    assert!(db.complete(&lb, json!(null)).await.is_err());
    assert_eq!(db.job(job).await.unwrap().state, JobState::Failed);
}
scenario!(permanent_failure_cascades);

async fn restart_reruns_a_failed_job_from_its_planner(db: Arc<dyn TaskDb>) {
    let job = db.create_job(NewJob::new("t", vec![task("plan", "x")])).await.unwrap();
    let lp = claim(&db, &["x"]).await.unwrap();
    db.add_tasks(job, vec![task("a", "y"), task("b", "y").after(["a"])]).await.unwrap();
    db.complete(&lp, json!("planned")).await.unwrap();
    let la = claim(&db, &["y"]).await.unwrap();
    assert_eq!(la.key, "a");
    assert!(!db.restart_job(job, "plan").await.unwrap(), "a running job is not restarted");
    assert_eq!(
        db.fail(&la, "disk on fire", FailureKind::Permanent).await.unwrap(),
        FailOutcome::JobFailed
    );
    assert!(matches!(db.restart_job(job, "nope").await, Err(Error::InvalidArgument(_))));
    assert!(matches!(
        db.restart_job(uuid::Uuid::new_v4(), "plan").await,
        Err(Error::JobNotFound(_))
    ));
    assert_eq!(db.job(job).await.unwrap().state, JobState::Failed, "refusals changed nothing");

    // A blocked waiter is woken by the restart.
    let waiter = {
        let db = db.clone();
        tokio::spawn(async move { db.wait_for_work(&[k("x")], LONG).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(db.restart_job(job, "plan").await.unwrap());
    assert!(tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap());
    assert!(!db.restart_job(job, "plan").await.unwrap(), "already running again");
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Running);
    assert!(st.error.is_none() && st.first_failure.is_none());
    let tasks = db.tasks(job).await.unwrap();
    assert_eq!(
        tasks.iter().map(|t| (t.key.as_str(), t.state)).collect::<Vec<_>>(),
        vec![("plan", TaskState::Ready)]
    );
    assert_eq!(db.task_output(job, "plan").await.unwrap(), None);

    // The failed run's leases stay fenced.
    assert!(db.complete(&la, json!(null)).await.is_err());
    assert!(db.complete(&lp, json!(null)).await.is_err());
    // The rerun plans again and succeeds.
    let lp2 = claim(&db, &["x"]).await.unwrap();
    assert_eq!((lp2.key.as_str(), lp2.attempt), ("plan", lp.attempt + 1));
    db.add_tasks(job, vec![task("a", "y")]).await.unwrap();
    db.complete(&lp2, json!("planned again")).await.unwrap();
    let la2 = claim(&db, &["y"]).await.unwrap();
    assert_eq!(la2.key, "a");
    db.complete(&la2, json!(null)).await.unwrap();
    assert_eq!(db.job(job).await.unwrap().state, JobState::Succeeded);
    assert_eq!(running_total(&db).await, 0);
}
scenario!(restart_reruns_a_failed_job_from_its_planner);

async fn transient_failure_retries_with_backoff(db: Arc<dyn TaskDb>) {
    let job = db.create_job(NewJob::new("t", vec![task("a", "x").max_attempts(3)])).await.unwrap();
    let l1 = claim(&db, &["x"]).await.unwrap();
    let before = chrono::Utc::now();
    let FailOutcome::Retrying { not_before } =
        db.fail(&l1, "io error", FailureKind::Transient).await.unwrap()
    else {
        panic!("should retry")
    };
    assert!(not_before >= before + chrono::Duration::milliseconds(150), "backoff base is 200 ms");
    assert!(claim(&db, &["x"]).await.is_none(), "not claimable during backoff");
    assert_eq!(running_total(&db).await, 0);
    // wait_for_work wakes when the backoff ends
    let t = Instant::now();
    assert!(db.wait_for_work(&[k("x")], Duration::from_secs(10)).await.unwrap());
    assert!(t.elapsed() < Duration::from_secs(5));
    let l2 = claim(&db, &["x"]).await.unwrap();
    assert_eq!(l2.attempt, 2);
    let FailOutcome::Retrying { not_before: nb2 } =
        db.fail(&l2, "io error", FailureKind::Transient).await.unwrap()
    else {
        panic!("should retry")
    };
    assert!(nb2 - chrono::Utc::now() > chrono::Duration::milliseconds(250), "backoff doubles");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let l3 = claim(&db, &["x"]).await.unwrap();
    assert_eq!(l3.attempt, 3);
    assert_eq!(
        db.fail(&l3, "io error", FailureKind::Transient).await.unwrap(),
        FailOutcome::JobFailed
    );
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Failed);
    assert_eq!(db.tasks(job).await.unwrap()[0].attempt, 3);
}
scenario!(transient_failure_retries_with_backoff);

async fn expired_last_attempt_fails_job(db: Arc<dyn TaskDb>) {
    let job = db
        .create_job(NewJob::new("t", vec![task("a", "x").max_attempts(1), task("b", "x")]))
        .await
        .unwrap();
    let _la = db.claim("dead", &[k("x")], Duration::from_millis(50)).await.unwrap().unwrap();
    let lb = claim(&db, &["x"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(db.requeue_expired().await.unwrap(), 1);
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Failed);
    assert!(st.first_failure.unwrap().error.contains("lease expired"));
    assert_eq!(db.heartbeat(&lb, LONG).await.unwrap(), HeartbeatOutcome::Cancelled);
    assert_eq!(running_total(&db).await, 0);
}
scenario!(expired_last_attempt_fails_job);

async fn concurrent_requeue_is_safe(db: Arc<dyn TaskDb>) {
    let tasks: Vec<NewTask> =
        (0..200).map(|i| task(&format!("t{i}"), "x").max_attempts(5)).collect();
    let job = db.create_job(NewJob::new("t", tasks)).await.unwrap();
    for _ in 0..200 {
        db.claim("a", &[k("x")], Duration::from_millis(30)).await.unwrap().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut hs = Vec::new();
    for _ in 0..4 {
        let db = db.clone();
        hs.push(tokio::spawn(async move { db.requeue_expired().await.unwrap() }));
    }
    let mut total = 0;
    for h in hs {
        total += h.await.unwrap();
    }
    assert_eq!(total, 200, "each expired lease is requeued exactly once");
    assert_eq!(running_total(&db).await, 0);
    assert_eq!(db.job(job).await.unwrap().count("x", TaskState::Ready), 200);
    let l = claim(&db, &["x"]).await.unwrap();
    assert_eq!(l.attempt, 2);
}
scenario!(concurrent_requeue_is_safe);

async fn cancel_races_completions(db: Arc<dyn TaskDb>) {
    // 64 leaves, 32 pair joins, one root: completions ready joins while the job is cancelled
    let mut tasks: Vec<NewTask> = (0..64).map(|i| task(&format!("l{i}"), "x").depth(2)).collect();
    for j in 0..32 {
        let pair = [format!("l{}", 2 * j), format!("l{}", 2 * j + 1)];
        tasks.push(task(&format!("j{j}"), "x").after(pair).depth(1));
    }
    tasks.push(task("root", "x").after((0..32).map(|j| format!("j{j}"))));
    let job = db.create_job(NewJob::new("t", tasks)).await.unwrap();
    let completed = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (db, completed) = (db.clone(), completed.clone());
        workers.push(tokio::spawn(async move {
            while let Some(l) = db.claim(&format!("w{w}"), &[k("x")], LONG).await.unwrap() {
                match db.complete(&l, json!(w)).await {
                    Ok(_) => drop(completed.fetch_add(1, Ordering::SeqCst)),
                    Err(Error::TaskCancelled { .. } | Error::LeaseLost { .. }) => {}
                    Err(e) => panic!("completion failed: {e}"),
                }
            }
        }));
    }
    while completed.load(Ordering::SeqCst) < 10 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(db.cancel_job(job).await.unwrap(), "a running job is cancelled");
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(db.job(job).await.unwrap().state, JobState::Cancelled);
    let infos = db.tasks(job).await.unwrap();
    let done = infos.iter().filter(|t| t.state == TaskState::Done).count();
    assert_eq!(done, completed.load(Ordering::SeqCst), "every accepted completion is recorded");
    assert!(done < infos.len(), "the cancel landed mid-job");
    assert!(infos.iter().all(|t| matches!(t.state, TaskState::Done | TaskState::Cancelled)));
    assert_eq!(running_total(&db).await, 0, "stream counters return to zero");
}
scenario!(cancel_races_completions);

async fn job_deadline_times_out(db: Arc<dyn TaskDb>) {
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    let future = chrono::Utc::now() + chrono::Duration::hours(1);
    let j1 = db.create_job(NewJob::new("t", vec![task("a", "x")]).deadline(past)).await.unwrap();
    let j2 = db.create_job(NewJob::new("t", vec![task("a", "x")]).deadline(future)).await.unwrap();
    let l = claim(&db, &["x"]).await.unwrap();
    assert_eq!(l.job_id, j1);
    assert_eq!(db.expire_jobs().await.unwrap(), vec![j1]);
    assert_eq!(db.job(j1).await.unwrap().state, JobState::TimedOut);
    assert_eq!(db.job(j2).await.unwrap().state, JobState::Running);
    assert_eq!(db.heartbeat(&l, LONG).await.unwrap(), HeartbeatOutcome::Cancelled);
    assert!(db.expire_jobs().await.unwrap().is_empty());
}
scenario!(job_deadline_times_out);

/// Graceful shutdowns hand leases back without using up attempts: a one-attempt task handed
/// back three times still runs, each handed-back lease stays fenced, and a lease that expired
/// or whose job was cancelled cannot be handed back.
async fn released_leases_keep_the_attempt_budget(db: Arc<dyn TaskDb>) {
    let job = db
        .create_job(NewJob::new("t", vec![task("a", "x").max_attempts(1), task("b", "x")]))
        .await
        .unwrap();
    let mut handed_back = Vec::new();
    for attempt in 1..=3 {
        let lease = claim(&db, &["x"]).await.unwrap();
        assert_eq!((lease.key.as_str(), lease.attempt), ("a", attempt));
        db.release(&lease).await.unwrap();
        assert_eq!(running_total(&db).await, 0);
        handed_back.push(lease);
    }
    let lease = claim(&db, &["x"]).await.unwrap();
    assert_eq!((lease.key.as_str(), lease.attempt), ("a", 4), "ready again at once");
    for old in &handed_back {
        assert!(matches!(
            db.complete(old, json!("late")).await.unwrap_err(),
            Error::LeaseLost { .. }
        ));
        assert!(matches!(db.release(old).await.unwrap_err(), Error::LeaseLost { .. }));
    }
    db.complete(&lease, json!("ok")).await.unwrap();
    assert_eq!(db.job(job).await.unwrap().count("x", TaskState::Done), 1);

    // An expired lease is not handed back: its expiry counts, as a crash does.
    let short = db.claim("slow", &[k("x")], Duration::from_millis(50)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(matches!(db.release(&short).await.unwrap_err(), Error::LeaseLost { .. }));
    assert_eq!(db.requeue_expired().await.unwrap(), 1);
    let lb = claim(&db, &["x"]).await.unwrap();
    assert_eq!((lb.key.as_str(), lb.attempt), ("b", 2));
    // A cancelled job's lease says so.
    assert!(db.cancel_job(job).await.unwrap());
    assert!(matches!(db.release(&lb).await.unwrap_err(), Error::TaskCancelled { .. }));
    assert_eq!(running_total(&db).await, 0);
}
scenario!(released_leases_keep_the_attempt_budget);
