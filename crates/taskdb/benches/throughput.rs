//! TaskDB throughput and dispatch latency on PostgreSQL and SQLite.
//!
//! Run: `cargo bench -p tiffin-taskdb --bench throughput` (starts a throwaway PostgreSQL like the
//! tests do; set `TIFFIN_TEST_DATABASE_URL` to use another server). Prints a markdown table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tiffin_taskdb::{
    Config, JobState, Kind, NewJob, NewTask, PostgresTaskDb, SqliteTaskDb, TaskDb,
};

const WORKERS: [usize; 3] = [1, 8, 64];
const INDEPENDENT: usize = 10_000;
const LEAVES: usize = 1024;
const LATENCY_SAMPLES: usize = 300;

fn config() -> Config {
    Config { max_connections: 80, ..Config::default() }
}

async fn postgres() -> Arc<dyn TaskDb> {
    let url = tiffin_taskdb::testing::fresh_database_url().await;
    Arc::new(PostgresTaskDb::connect(&url, config()).await.expect("connect PostgreSQL"))
}

async fn sqlite(dir: &tempfile::TempDir, name: &str) -> Arc<dyn TaskDb> {
    Arc::new(SqliteTaskDb::open(dir.path().join(name), config()).await.expect("open SQLite"))
}

/// W workers claim+complete until the job is done; returns tasks/s.
async fn drain(
    db: Arc<dyn TaskDb>,
    job: uuid::Uuid,
    tasks: usize,
    workers: usize,
    kinds: Vec<Kind>,
) -> f64 {
    let start = Instant::now();
    let mut hs = Vec::new();
    for w in 0..workers {
        let (db, kinds) = (db.clone(), kinds.clone());
        hs.push(tokio::spawn(async move {
            loop {
                match db.claim(&format!("w{w}"), &kinds, Duration::from_secs(60)).await.unwrap() {
                    Some(l) => {
                        db.complete(&l, json!(null)).await.unwrap();
                    }
                    None => {
                        if db.job(job).await.unwrap().state != JobState::Running {
                            return;
                        }
                        db.wait_for_work(&kinds, Duration::from_millis(50)).await.unwrap();
                    }
                }
            }
        }));
    }
    for h in hs {
        h.await.unwrap();
    }
    tasks as f64 / start.elapsed().as_secs_f64()
}

async fn independent(db: Arc<dyn TaskDb>, workers: usize) -> f64 {
    let tasks: Vec<NewTask> =
        (0..1000).map(|i| NewTask::new(format!("t{i}"), "prove", json!(i))).collect();
    let job = db.create_job(NewJob::new("bench", tasks)).await.unwrap();
    for b in 1..INDEPENDENT / 1000 {
        let batch = (b * 1000..(b + 1) * 1000)
            .map(|i| NewTask::new(format!("t{i}"), "prove", json!(i)))
            .collect();
        db.add_tasks(job, batch).await.unwrap();
    }
    drain(db, job, INDEPENDENT, workers, vec![Kind::new("prove")]).await
}

async fn join_tree(db: Arc<dyn TaskDb>, workers: usize) -> f64 {
    let mut tasks: Vec<NewTask> =
        (0..LEAVES).map(|i| NewTask::new(format!("l{i}"), "prove", json!(i)).depth(11)).collect();
    let mut level: Vec<String> = (0..LEAVES).map(|i| format!("l{i}")).collect();
    let mut depth = 10;
    while level.len() > 1 {
        let mut next = Vec::new();
        for pair in level.chunks(2) {
            let key = format!("j{}", tasks.len());
            tasks.push(NewTask::new(&key, "join", json!(null)).after(pair.to_vec()).depth(depth));
            next.push(key);
        }
        level = next;
        depth -= 1;
    }
    let n = tasks.len();
    let job = db.create_job(NewJob::new("bench", tasks)).await.unwrap();
    drain(db, job, n, workers, vec![Kind::new("prove"), Kind::new("join")]).await
}

/// Idle agents blocked in wait_for_work; a producer adds one task at a time. Returns (p50, p99)
/// in ms from just before the adding transaction to the claim returning.
async fn latency(db: Arc<dyn TaskDb>, workers: usize) -> (f64, f64) {
    let job = db
        .create_job(NewJob::new("bench", vec![NewTask::new("hold", "hold", json!(null))]))
        .await
        .unwrap();
    let kinds = vec![Kind::new("lat")];
    let added: Arc<std::sync::Mutex<Vec<Option<Instant>>>> =
        Arc::new(std::sync::Mutex::new(vec![None; LATENCY_SAMPLES]));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<f64>();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut hs = Vec::new();
    for w in 0..workers {
        let (db, kinds, added, tx, stop) =
            (db.clone(), kinds.clone(), added.clone(), tx.clone(), stop.clone());
        hs.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(l) =
                    db.claim(&format!("w{w}"), &kinds, Duration::from_secs(60)).await.unwrap()
                {
                    let at = Instant::now();
                    let i: usize = l.payload.as_u64().unwrap() as usize;
                    let t0 = added.lock().unwrap()[i].unwrap();
                    tx.send(at.duration_since(t0).as_secs_f64() * 1000.0).unwrap();
                    db.complete(&l, json!(null)).await.unwrap();
                } else {
                    db.wait_for_work(&kinds, Duration::from_millis(500)).await.unwrap();
                }
            }
        }));
    }
    drop(tx);
    tokio::time::sleep(Duration::from_millis(300)).await; // agents are now idle and waiting
    let mut samples = Vec::new();
    for i in 0..LATENCY_SAMPLES {
        added.lock().unwrap()[i] = Some(Instant::now());
        db.add_tasks(job, vec![NewTask::new(format!("x{i}"), "lat", json!(i))]).await.unwrap();
        samples
            .push(tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap());
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in hs {
        h.abort();
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).min(samples.len()) - 1];
    (pct(0.50), pct(0.99))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    println!("Reproduce: `cargo bench -p tiffin-taskdb --bench throughput`\n");
    println!(
        "| backend | workers | independent tasks/s ({INDEPENDENT}) | join tree tasks/s ({LEAVES} leaves, {} tasks) | dispatch p50 ms | dispatch p99 ms |",
        2 * LEAVES - 1
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let dir = tempfile::tempdir().unwrap();
    for backend in ["PostgreSQL", "SQLite"] {
        for &w in &WORKERS {
            let mut dbs = Vec::new();
            for i in 0..3 {
                dbs.push(match backend {
                    "PostgreSQL" => postgres().await,
                    _ => sqlite(&dir, &format!("bench-{w}-{i}.db")).await,
                });
            }
            let ind = independent(dbs[0].clone(), w).await;
            let tree = join_tree(dbs[1].clone(), w).await;
            let (p50, p99) = latency(dbs[2].clone(), w).await;
            println!("| {backend} | {w} | {ind:.0} | {tree:.0} | {p50:.2} | {p99:.2} |");
        }
    }
}
