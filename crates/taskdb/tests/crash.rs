//! PostgreSQL at its default durability, killed mid-run (an immediate shutdown, as a crash):
//! every completion TaskDB acknowledged must still be there after recovery, and every job must
//! still finish. Runs on its own server, so it cannot disturb the other tests' shared one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tiffin_taskdb::testing::{Durability, TestPostgres};
use tiffin_taskdb::{
    Backoff, Config, Error, JobId, JobState, Kind, NewJob, NewTask, PostgresTaskDb, TaskDb,
    TaskState,
};

/// Short enough that leases lost in the crash come back quickly.
const LEASE: Duration = Duration::from_secs(2);
const JOBS: usize = 3;
const TASKS_PER_JOB: usize = 600;
const LEAVES: usize = 64;

type Acked = Arc<std::sync::Mutex<HashSet<(JobId, String)>>>;

fn kinds() -> Vec<Kind> {
    vec![Kind::new("prove"), Kind::new("join")]
}

/// One worker: batched or one at a time; database errors (the server is down) are waited out.
async fn work(db: Arc<dyn TaskDb>, w: usize, acked: Acked, stop: Arc<AtomicBool>) {
    let agent = format!("w{w}");
    while !stop.load(Ordering::Relaxed) {
        let max = if w.is_multiple_of(2) { 8 } else { 1 };
        let leases = match db.claim_batch(&agent, &kinds(), LEASE, max).await {
            Ok(ls) => ls,
            Err(e) => {
                assert!(e.is_retryable(), "claim failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if leases.is_empty() {
            let _ = db.wait_for_work(&kinds(), Duration::from_millis(100)).await;
            continue;
        }
        let keys: Vec<(JobId, String)> = leases.iter().map(|l| (l.job_id, l.key.clone())).collect();
        let outcomes = if max == 1 {
            let l = &leases[0];
            match db.complete(l, json!(l.key)).await {
                Err(e) if e.is_retryable() => Err(e),
                r => Ok(vec![r]),
            }
        } else {
            db.complete_batch(leases.into_iter().map(|l| (l.clone(), json!(l.key))).collect()).await
        };
        match outcomes {
            Ok(outcomes) => {
                for (key, r) in keys.into_iter().zip(outcomes) {
                    match r {
                        Ok(_) => assert!(acked.lock().unwrap().insert(key), "completed twice"),
                        // a lease that ran out while the server was down
                        Err(Error::LeaseLost { .. }) => {}
                        Err(e) => panic!("completion refused: {e}"),
                    }
                }
            }
            // not acknowledged: the task is done or comes back when its lease runs out
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_completions_survive_a_server_crash() {
    let started = Instant::now();
    let server = tokio::task::spawn_blocking(|| TestPostgres::start_with(Durability::Default))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("TIFFIN-TASKDB-040: could not start PostgreSQL: {e}"));
    let server = Arc::new(server);
    let url = server.create_database().await;
    let config = Config {
        backoff: Backoff { base: Duration::from_millis(50), max: Duration::from_millis(200) },
        poll_interval: Duration::from_millis(200),
        max_connections: 16,
        ..Config::default()
    };
    let db: Arc<dyn TaskDb> = Arc::new(PostgresTaskDb::connect(&url, config).await.unwrap());
    // independent sinks, and a join tree whose joins become ready as their children finish
    let mut jobs = Vec::new();
    for j in 0..JOBS {
        let tasks = (0..TASKS_PER_JOB).map(|i| NewTask::new(format!("t{i}"), "prove", json!(j)));
        jobs.push(db.create_job(NewJob::new("crash", tasks.collect())).await.unwrap());
    }
    let mut tree: Vec<NewTask> =
        (0..LEAVES).map(|i| NewTask::new(format!("l{i}"), "prove", json!(i))).collect();
    let mut level: Vec<String> = (0..LEAVES).map(|i| format!("l{i}")).collect();
    while level.len() > 1 {
        let mut next = Vec::new();
        for pair in level.chunks(2) {
            let key = format!("j{}", tree.len());
            tree.push(NewTask::new(&key, "join", json!(null)).after(pair.to_vec()));
            next.push(key);
        }
        level = next;
    }
    let tree_tasks = tree.len();
    jobs.push(db.create_job(NewJob::new("crash", tree)).await.unwrap());
    let total = JOBS * TASKS_PER_JOB + tree_tasks;

    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> =
        (0..8).map(|w| tokio::spawn(work(db.clone(), w, acked.clone(), stop.clone()))).collect();
    let housekeeper = {
        let (db, stop) = (db.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let _ = db.requeue_expired().await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // crash once a good part, but not all, of the work is acknowledged
    while acked.lock().unwrap().len() < total / 4 {
        assert!(started.elapsed() < Duration::from_secs(40), "workers made no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = server.clone();
    tokio::task::spawn_blocking(move || s.crash()).await.unwrap().expect("immediate shutdown");
    let before_crash = acked.lock().unwrap().clone();
    assert!(before_crash.len() < total, "the crash must land mid-run");
    let s = server.clone();
    tokio::task::spawn_blocking(move || s.restart()).await.unwrap().expect("restart");

    // everything acknowledged before the crash survived recovery
    let mut done: HashMap<JobId, HashSet<String>> = HashMap::new();
    for &job in &jobs {
        let tasks = loop {
            match db.tasks(job).await {
                Ok(t) => break t,
                Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("reading tasks after the restart: {e}"),
            }
        };
        done.insert(
            job,
            tasks.into_iter().filter(|t| t.state == TaskState::Done).map(|t| t.key).collect(),
        );
    }
    let lost: Vec<_> = before_crash.iter().filter(|(j, k)| !done[j].contains(k)).collect();
    assert!(lost.is_empty(), "{} acknowledged completions were lost: {lost:?}", lost.len());

    // and every job still finishes
    let deadline = Instant::now() + Duration::from_secs(45);
    for &job in &jobs {
        loop {
            let st = db.job(job).await;
            if matches!(&st, Ok(s) if s.state != JobState::Running) {
                let st = st.unwrap();
                assert_eq!(st.state, JobState::Succeeded, "job {job}: {:?}", st.error);
                break;
            }
            assert!(Instant::now() < deadline, "job {job} did not finish after the restart");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    housekeeper.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    for &job in &jobs {
        let tasks = db.tasks(job).await.unwrap();
        assert!(tasks.iter().all(|t| t.state == TaskState::Done), "job {job} has undone tasks");
    }
    let running: i64 = db.streams().await.unwrap().iter().map(|s| s.running).sum();
    assert_eq!(running, 0, "stream counters are consistent after recovery");
    eprintln!(
        "crash test: {} of {total} acknowledged before the crash, {} in all, {:.1} s",
        before_crash.len(),
        acked.len(),
        started.elapsed().as_secs_f64()
    );
}
