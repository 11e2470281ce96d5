//! TaskDB throughput and dispatch latency on PostgreSQL and SQLite.
//!
//! Run: `cargo bench -p tiffin-taskdb --bench throughput` (starts throwaway PostgreSQL servers
//! like the tests do, one with `fsync` off and one with PostgreSQL's default durability; set
//! `TIFFIN_TEST_DATABASE_URL` to use another server for both). Prints a markdown table.
//!
//! Subsets, for quick looks: `TIFFIN_BENCH_WORKERS=1,8,32` and
//! `TIFFIN_BENCH_SETUPS=pg-durable,pg-fsync-off,sqlite`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tiffin_taskdb::testing::Durability;
use tiffin_taskdb::{
    Config, JobState, Kind, NewJob, NewTask, PostgresTaskDb, SqliteTaskDb, TaskDb,
};

const WORKERS: [usize; 3] = [1, 8, 32];
/// Tasks per `claim_batch` round trip (and so per `complete_batch` transaction).
const BATCH: usize = 16;
const INDEPENDENT: usize = 10_000;
const LEAVES: usize = 1024;
const LATENCY_SAMPLES: usize = 300;

fn config() -> Config {
    Config { max_connections: 80, ..Config::default() }
}

async fn postgres(durability: Durability) -> Arc<dyn TaskDb> {
    let url = tiffin_taskdb::testing::fresh_database_url_with(durability).await;
    Arc::new(PostgresTaskDb::connect(&url, config()).await.expect("connect PostgreSQL"))
}

async fn sqlite(dir: &tempfile::TempDir, name: &str) -> Arc<dyn TaskDb> {
    Arc::new(SqliteTaskDb::open(dir.path().join(name), config()).await.expect("open SQLite"))
}

/// W workers claim+complete until the job is done; returns tasks/s. `batch` > 1: each round
/// claims up to that many tasks at once and completes them in one call.
async fn drain(
    db: Arc<dyn TaskDb>,
    job: uuid::Uuid,
    tasks: usize,
    workers: usize,
    kinds: Vec<Kind>,
    batch: usize,
) -> f64 {
    let start = Instant::now();
    let mut hs = Vec::new();
    for w in 0..workers {
        let (db, kinds) = (db.clone(), kinds.clone());
        hs.push(tokio::spawn(async move {
            let agent = format!("w{w}");
            let lease = Duration::from_secs(60);
            loop {
                let claimed = if batch > 1 {
                    let leases = db.claim_batch(&agent, &kinds, lease, batch).await.unwrap();
                    let n = leases.len();
                    let done = leases.into_iter().map(|l| (l, json!(null))).collect();
                    for r in db.complete_batch(done).await.unwrap() {
                        r.unwrap();
                    }
                    n > 0
                } else {
                    match db.claim(&agent, &kinds, lease).await.unwrap() {
                        Some(l) => {
                            db.complete(&l, json!(null)).await.unwrap();
                            true
                        }
                        None => false,
                    }
                };
                match claimed {
                    true => {}
                    false => {
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

async fn independent(db: Arc<dyn TaskDb>, workers: usize, batch: usize) -> f64 {
    let tasks: Vec<NewTask> =
        (0..1000).map(|i| NewTask::new(format!("t{i}"), "prove", json!(i))).collect();
    let job = db.create_job(NewJob::new("bench", tasks)).await.unwrap();
    for b in 1..INDEPENDENT / 1000 {
        let batch = (b * 1000..(b + 1) * 1000)
            .map(|i| NewTask::new(format!("t{i}"), "prove", json!(i)))
            .collect();
        db.add_tasks(job, batch).await.unwrap();
    }
    drain(db, job, INDEPENDENT, workers, vec![Kind::new("prove")], batch).await
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
    drain(db, job, n, workers, vec![Kind::new("prove"), Kind::new("join")], 1).await
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

fn env_list(name: &str) -> Option<Vec<String>> {
    std::env::var(name).ok().map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let workers: Vec<usize> = env_list("TIFFIN_BENCH_WORKERS")
        .map(|v| v.iter().map(|w| w.parse().expect("TIFFIN_BENCH_WORKERS: numbers")).collect())
        .unwrap_or(WORKERS.to_vec());
    let setups = env_list("TIFFIN_BENCH_SETUPS").unwrap_or(vec![
        "pg-durable".into(),
        "pg-fsync-off".into(),
        "sqlite".into(),
    ]);
    println!("Reproduce: `cargo bench -p tiffin-taskdb --bench throughput`\n");
    println!(
        "| backend | durability | workers | independent tasks/s ({INDEPENDENT}), claim + complete | \
         independent tasks/s, claim_batch + complete_batch (≤ {BATCH}) | join tree tasks/s \
         ({LEAVES} leaves, {} tasks) | dispatch p50 ms | dispatch p99 ms |",
        2 * LEAVES - 1
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let dir = tempfile::tempdir().unwrap();
    for setup in &setups {
        let (backend, durability) = match setup.as_str() {
            "pg-durable" => ("PostgreSQL", "default (fsync, synchronous_commit on)"),
            "pg-fsync-off" => ("PostgreSQL", "fsync off, synchronous_commit off"),
            "sqlite" => ("SQLite", "WAL, synchronous=NORMAL"),
            other => panic!("unknown setup {other:?} in TIFFIN_BENCH_SETUPS"),
        };
        for &w in &workers {
            let mut dbs = Vec::new();
            for i in 0..4 {
                dbs.push(match setup.as_str() {
                    "pg-durable" => postgres(Durability::Default).await,
                    "pg-fsync-off" => postgres(Durability::Off).await,
                    _ => sqlite(&dir, &format!("bench-{w}-{i}.db")).await,
                });
            }
            let ind = independent(dbs[0].clone(), w, 1).await;
            let batched = independent(dbs[3].clone(), w, BATCH).await;
            let tree = join_tree(dbs[1].clone(), w).await;
            let (p50, p99) = latency(dbs[2].clone(), w).await;
            println!(
                "| {backend} | {durability} | {w} | {ind:.0} | {batched:.0} | {tree:.0} | \
                 {p50:.2} | {p99:.2} |"
            );
        }
    }
}
