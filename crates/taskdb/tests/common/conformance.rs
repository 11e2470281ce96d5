//! The behaviour both backends must show (docs/architecture.md, "TaskDB semantics"). Each function gets a fresh database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tiffin_taskdb::{
    Backoff, Config, Error, FailOutcome, FailureKind, HeartbeatOutcome, JobFilter, JobState, Kind,
    Lease, NewJob, NewTask, StreamConfig, TaskDb, TaskState,
};

mod backlog;
mod deadlines;
mod fair_share;
mod job_order;
mod registry;
mod reservations;
mod work_limit;

pub use backlog::{
    backlog_counts_ready_running_and_work, backlog_measures_finished_tasks,
    served_sums_finished_work_per_kind_and_meta,
};
pub use deadlines::{
    a_job_at_risk_borrows_agents_but_never_starves_the_others,
    a_job_with_time_to_spare_keeps_its_fair_share,
};
pub use fair_share::{
    brokers_two_tasks_do_not_wait_behind_six_long_jobs, concurrent_workers_share_by_weight,
    newcomer_behind_a_backlog_is_served_within_two_claims, newcomer_goes_first_after_a_restart,
    one_worker_alternates_between_equal_backlogs, one_worker_follows_the_weights,
    serve_a_backlog_before_a_restart,
};
pub use fair_share::{forgetful_config, old_service_is_forgotten};
pub use job_order::{
    claims_inside_a_tenant_follow_due_time_then_priority,
    due_time_orders_inside_the_tenant_not_across_tenants,
};
pub use registry::{agents_report_themselves, silent_agents_are_forgotten};
pub use reservations::{
    a_forgotten_pinned_agent_hands_its_pin_on, pinned_agents_take_only_their_tenants_tasks,
    pinned_agents_wait_when_their_reservation_says_so,
};
pub use work_limit::claims_respect_the_agents_work_limit;

/// The configuration every backend runs the suite with: a 60 s fallback poll, so wake-ups must
/// come from notifications, and a short backoff so retries are quick.
pub fn config() -> Config {
    Config {
        backoff: Backoff { base: Duration::from_millis(200), max: Duration::from_secs(2) },
        poll_interval: Duration::from_secs(60),
        max_connections: 40,
        // with nothing finished, a task counts 1 s when judging a job at risk (deadlines.rs)
        assumed_task_time: Duration::from_secs(1),
        ..Config::default()
    }
}

const LONG: Duration = Duration::from_secs(60);

fn k(s: &str) -> Kind {
    Kind::new(s)
}

fn task(key: &str, kind: &str) -> NewTask {
    NewTask::new(key, kind, json!({ "key": key }))
}

async fn claim(db: &Arc<dyn TaskDb>, kinds: &[&str]) -> Option<Lease> {
    let kinds: Vec<Kind> = kinds.iter().map(|s| k(s)).collect();
    db.claim("agent", &kinds, LONG).await.expect("claim")
}

async fn claim_key(db: &Arc<dyn TaskDb>, kinds: &[&str]) -> String {
    claim(db, kinds).await.expect("a task is claimable").key
}

async fn running_total(db: &Arc<dyn TaskDb>) -> i64 {
    db.streams().await.unwrap().iter().map(|s| s.running).sum()
}

pub async fn dag_readiness_and_completion(db: Arc<dyn TaskDb>) {
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

pub async fn growing_dag_does_not_finish_early(db: Arc<dyn TaskDb>) {
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

pub async fn batch_validation_errors(db: Arc<dyn TaskDb>) {
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

pub async fn streams_created_idempotently(db: Arc<dyn TaskDb>) {
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
    db.set_stream(
        "other",
        &k("join"),
        StreamConfig { priority_multiplier: 0.5, reserved: 0, ..StreamConfig::default() },
    )
    .await
    .unwrap();
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

pub async fn claim_order_inside_stream(db: Arc<dyn TaskDb>) {
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

pub async fn fencing_rejects_late_calls(db: Arc<dyn TaskDb>) {
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

pub async fn cancel_cascades_and_heartbeat_says_cancelled(db: Arc<dyn TaskDb>) {
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

pub async fn permanent_failure_cascades(db: Arc<dyn TaskDb>) {
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

pub async fn restart_reruns_a_failed_job_from_its_planner(db: Arc<dyn TaskDb>) {
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

pub async fn transient_failure_retries_with_backoff(db: Arc<dyn TaskDb>) {
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

pub async fn expired_last_attempt_fails_job(db: Arc<dyn TaskDb>) {
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

pub async fn concurrent_requeue_is_safe(db: Arc<dyn TaskDb>) {
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

/// The housekeeper vacuums while agents work: vacuums over several connections at once, and
/// alongside claims and completions, all succeed and change nothing anyone can see.
pub async fn vacuum_runs_alongside_work(db: Arc<dyn TaskDb>) {
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

pub async fn cancel_races_completions(db: Arc<dyn TaskDb>) {
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

pub async fn batches_link_to_prerequisites_completing_meanwhile(db: Arc<dyn TaskDb>) {
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

pub async fn job_deadline_times_out(db: Arc<dyn TaskDb>) {
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

pub async fn wait_for_work_wakes_promptly(db: Arc<dyn TaskDb>) {
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

pub async fn reads_and_listing(db: Arc<dyn TaskDb>) {
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

pub async fn gc_deletes_finished_jobs(db: Arc<dyn TaskDb>) {
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

pub async fn concurrent_claimers_never_share_a_task(db: Arc<dyn TaskDb>) {
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

/// Runs a pool of `slots` concurrently held leases for `claims` claims: each step completes the
/// oldest held lease and claims again. Returns claims per tenant.
async fn run_slots(
    db: &Arc<dyn TaskDb>,
    kinds: &[&str],
    slots: usize,
    claims: usize,
) -> HashMap<String, usize> {
    let mut held = std::collections::VecDeque::new();
    let mut per: HashMap<String, usize> = HashMap::new();
    let mut n = 0;
    while n < claims {
        if held.len() == slots {
            let l: Lease = held.pop_front().unwrap();
            db.complete(&l, json!(null)).await.unwrap();
        }
        let l = claim(db, kinds).await.expect("saturated: work is always there");
        *per.entry(l.tenant.clone()).or_default() += 1;
        held.push_back(l);
        n += 1;
    }
    per
}

async fn saturate(db: &Arc<dyn TaskDb>, tenant: &str, kind: &str, n: usize) {
    let tasks = (0..n).map(|i| task(&format!("{tenant}-{i}"), kind)).collect();
    db.create_job(NewJob::new(tenant, tasks)).await.unwrap();
}

pub async fn fair_share_follows_multipliers(db: Arc<dyn TaskDb>) {
    db.set_stream(
        "one",
        &k("prove"),
        StreamConfig { priority_multiplier: 1.0, reserved: 0, ..StreamConfig::default() },
    )
    .await
    .unwrap();
    db.set_stream(
        "three",
        &k("prove"),
        StreamConfig { priority_multiplier: 3.0, reserved: 0, ..StreamConfig::default() },
    )
    .await
    .unwrap();
    // "one" submitted first: the older job must not win against the weights
    saturate(&db, "one", "prove", 2100).await;
    saturate(&db, "three", "prove", 2100).await;
    let per = run_slots(&db, &["prove"], 8, 2000).await;
    let (a, b) = (per["one"] as f64, per["three"] as f64);
    let ratio = b / a;
    assert!((ratio - 3.0).abs() <= 0.3, "expected 1:3 within 10%, got {a}:{b} (ratio {ratio:.2})");
}

pub async fn reservation_goes_first(db: Arc<dyn TaskDb>) {
    for t in 0..5 {
        let tenant = format!("crowd{t}");
        db.set_stream(
            &tenant,
            &k("prove"),
            StreamConfig { priority_multiplier: 10.0, reserved: 0, ..StreamConfig::default() },
        )
        .await
        .unwrap();
        saturate(&db, &tenant, "prove", 20).await;
    }
    // some crowd work is already running
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(claim(&db, &["prove"]).await.unwrap());
    }
    db.set_stream(
        "vip",
        &k("prove"),
        StreamConfig { priority_multiplier: 0.1, reserved: 2, ..StreamConfig::default() },
    )
    .await
    .unwrap();
    saturate(&db, "vip", "prove", 10).await;
    let a = claim(&db, &["prove"]).await.unwrap();
    let b = claim(&db, &["prove"]).await.unwrap();
    assert_eq!((a.tenant.as_str(), b.tenant.as_str()), ("vip", "vip"), "reserved slots first");
    // reservation filled: vip (2/0.1 = 20) now loses to the crowd (≤ 1/10)
    let c = claim(&db, &["prove"]).await.unwrap();
    assert_ne!(c.tenant, "vip");
    // when a reserved task finishes, vip gets the next slot again
    db.complete(&a, json!(null)).await.unwrap();
    assert_eq!(claim(&db, &["prove"]).await.unwrap().tenant, "vip");
    let vip = db.streams().await.unwrap().into_iter().find(|s| s.tenant == "vip").unwrap();
    assert_eq!(vip.running, 2);
}

pub async fn low_priority_is_not_starved(db: Arc<dyn TaskDb>) {
    db.set_stream(
        "low",
        &k("prove"),
        StreamConfig { priority_multiplier: 0.1, reserved: 0, ..StreamConfig::default() },
    )
    .await
    .unwrap();
    for t in 0..3 {
        let tenant = format!("high{t}");
        db.set_stream(
            &tenant,
            &k("prove"),
            StreamConfig { priority_multiplier: 10.0, reserved: 0, ..StreamConfig::default() },
        )
        .await
        .unwrap();
        saturate(&db, &tenant, "prove", 400).await;
    }
    saturate(&db, "low", "prove", 400).await;
    let claims = 600;
    let per = run_slots(&db, &["prove"], 12, claims).await;
    let low = *per.get("low").unwrap_or(&0) as f64;
    let fair = claims as f64 * 0.1 / 30.1;
    assert!(
        low >= fair.floor() && low > 0.0,
        "low tenant got {low} claims, fair share is {fair:.1}"
    );
}

/// A random job: task i's prerequisites are earlier tasks; tasks arrive in batches while the
/// `exec` task (held by the "executor") is unfinished.
#[derive(Debug, Clone)]
struct RandomJob {
    prereqs: Vec<Vec<usize>>,
    batches: Vec<usize>,
    seed: u64,
}

fn random_job() -> impl proptest::strategy::Strategy<Value = RandomJob> {
    use proptest::prelude::*;
    (1usize..20, any::<u64>()).prop_flat_map(|(n, seed)| {
        let prereqs = proptest::collection::vec(
            proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
            n,
        );
        let batches = proptest::collection::vec(1usize..6, 1..5);
        (prereqs, batches).prop_map(move |(p, batches)| RandomJob {
            prereqs: p
                .into_iter()
                .enumerate()
                .map(|(i, idx)| {
                    let mut v: Vec<usize> =
                        if i == 0 { vec![] } else { idx.iter().map(|x| x.index(i)).collect() };
                    v.sort();
                    v.dedup();
                    v
                })
                .collect(),
            batches,
            seed,
        })
    })
}

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

async fn run_random_job(db: &Arc<dyn TaskDb>, case: RandomJob, tenant: &str) {
    let n = case.prereqs.len();
    let mut rng = Rng(case.seed | 1);
    let mk = |i: usize| {
        task(&format!("t{i}"), if i.is_multiple_of(2) { "a" } else { "b" })
            .after(case.prereqs[i].iter().map(|p| format!("t{p}")))
            .max_attempts(1000)
            .depth((n - i) as i32)
    };
    // cut the tasks into batches
    let mut cuts = Vec::new();
    let mut at = 0;
    for b in &case.batches {
        if at >= n {
            break;
        }
        let end = (at + b).min(n);
        cuts.push((at, end));
        at = end;
    }
    if at < n {
        cuts.push((at, n));
    }
    let mut first = vec![task("exec", "exec")];
    first.extend((cuts[0].0..cuts[0].1).map(mk));
    let job = db.create_job(NewJob::new(tenant, first)).await.unwrap();
    let mut next_batch = 1;
    let exec = claim(db, &["exec"]).await.unwrap();
    let mut exec = Some(exec);
    let mut held: Vec<(Lease, bool)> = Vec::new();
    let mut done: HashMap<String, usize> = HashMap::new();
    let kinds = [k("a"), k("b")];
    for step in 0.. {
        assert!(step < 20_000, "random job did not finish");
        if db.job(job).await.unwrap().state == JobState::Succeeded {
            break;
        }
        match rng.next(4) {
            0 | 1 => {
                let expire = rng.next(5) == 0;
                let lease = if expire { Duration::from_millis(1) } else { LONG };
                match db.claim("p", &kinds, lease).await.unwrap() {
                    Some(l) => held.push((l, expire)),
                    None if held.is_empty() && exec.is_none() => {
                        db.requeue_expired().await.unwrap();
                    }
                    None => {}
                }
            }
            2 => {
                if !held.is_empty() {
                    let (l, expired) = held.swap_remove(rng.next(held.len()));
                    if expired {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        let e = db.complete(&l, json!(null)).await.unwrap_err();
                        assert_eq!(e.code(), "TIFFIN-TASKDB-020");
                        db.requeue_expired().await.unwrap();
                    } else {
                        db.complete(&l, json!(l.key)).await.unwrap();
                        *done.entry(l.key.clone()).or_default() += 1;
                    }
                }
            }
            _ => {
                if next_batch < cuts.len() {
                    let (s, e) = cuts[next_batch];
                    db.add_tasks(job, (s..e).map(mk).collect()).await.unwrap();
                    next_batch += 1;
                } else if let Some(l) = exec.take() {
                    db.complete(&l, json!("exec")).await.unwrap();
                    *done.entry(l.key.clone()).or_default() += 1;
                }
            }
        }
    }
    assert_eq!(done.len(), n + 1);
    assert!(done.values().all(|&c| c == 1), "every task done exactly once: {done:?}");
    let st = db.job(job).await.unwrap();
    assert_eq!(st.count_state(TaskState::Done), (n + 1) as i64);
    assert!(held.iter().all(|(_, expired)| *expired), "no live lease remains");
}

pub async fn random_dags_complete_exactly_once(db: Arc<dyn TaskDb>) {
    use proptest::test_runner::{Config as PtConfig, TestRunner};
    let handle = tokio::runtime::Handle::current();
    let mut runner =
        TestRunner::new(PtConfig { cases: 24, max_shrink_iters: 32, ..PtConfig::default() });
    let counter = AtomicUsize::new(0);
    runner
        .run(&random_job(), |case| {
            let db = db.clone();
            let tenant = format!("p{}", counter.fetch_add(1, Ordering::Relaxed));
            tokio::task::block_in_place(|| handle.block_on(run_random_job(&db, case, &tenant)));
            Ok(())
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    db.requeue_expired().await.unwrap();
    assert_eq!(running_total(&db).await, 0);
}

async fn claim_batch(db: &Arc<dyn TaskDb>, kinds: &[&str], max: usize) -> Vec<Lease> {
    let kinds: Vec<Kind> = kinds.iter().map(|s| k(s)).collect();
    db.claim_batch("agent", &kinds, LONG, max).await.expect("claim_batch")
}

pub async fn claim_batch_takes_tasks_in_claim_order(db: Arc<dyn TaskDb>) {
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

pub async fn claim_batch_follows_the_policy_per_task(db: Arc<dyn TaskDb>) {
    db.set_stream(
        "one",
        &k("prove"),
        StreamConfig { priority_multiplier: 1.0, reserved: 0, ..StreamConfig::default() },
    )
    .await
    .unwrap();
    db.set_stream(
        "three",
        &k("prove"),
        StreamConfig { priority_multiplier: 3.0, reserved: 0, ..StreamConfig::default() },
    )
    .await
    .unwrap();
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

pub async fn complete_batch_reports_each_lease(db: Arc<dyn TaskDb>) {
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

pub async fn racing_last_completions_end_the_job(db: Arc<dyn TaskDb>) {
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

pub async fn batched_workers_share_nothing(db: Arc<dyn TaskDb>) {
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

/// Graceful shutdowns hand leases back without using up attempts: a one-attempt task handed
/// back three times still runs, each handed-back lease stays fenced, and a lease that expired
/// or whose job was cancelled cannot be handed back.
pub async fn released_leases_keep_the_attempt_budget(db: Arc<dyn TaskDb>) {
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

/// A tenant's running limit holds under concurrent creates (API processes sharing one
/// database race exactly like this), counts only that tenant's running jobs, and frees a slot
/// when a job ends.
pub async fn running_limit_holds_under_concurrent_creates(db: Arc<dyn TaskDb>) {
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
