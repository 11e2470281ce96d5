//! The agents' real loop at scale: N agents in one process, each claiming and completing
//! through [`Agent`] (batch claims of its free slots, grouped completions shared by the
//! process) with a no-op handler, on PostgreSQL at its default durability (fsync and
//! synchronous_commit on). Prints a markdown table of completions per second.
//!
//! Run by `scripts/bench-taskdb --agents` (built by `cargo build --workspace --all-targets`).
//! Settings: `TIFFIN_BENCH_AGENTS=8,32,128` (agents), `TIFFIN_BENCH_SLOTS=1,8` (slots per agent),
//! `TIFFIN_BENCH_TASKS=4000` (tasks per run), `TIFFIN_TEST_DATABASE_URL` (another server).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tiffin_storage::{StoreConfig, Stores};
use tiffin_taskdb::testing::Durability;
use tiffin_taskdb::{Config, JobState, Kind, NewJob, NewTask, PostgresTaskDb, TaskDb};
use tiffin_workflow::agent::Handler;
use tiffin_workflow::completions::{self, Completer};
use tiffin_workflow::handlers::{Context, Outcome};
use tiffin_workflow::{Agent, AgentConfig};
use tokio::sync::watch;

fn list(var: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(var) {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

async fn run(agents: usize, slots: usize, tasks: usize, stores: &Stores) -> f64 {
    let url = tiffin_taskdb::testing::fresh_database_url_with(Durability::Default).await;
    let config = Config { max_connections: 64, ..Config::default() };
    let db: Arc<dyn TaskDb> = Arc::new(PostgresTaskDb::connect(&url, config).await.unwrap());
    let new = (0..tasks).map(|i| NewTask::new(format!("t{i}"), "bench", json!(null))).collect();
    let job = db.create_job(NewJob::new("bench", new)).await.unwrap();
    let noop: Handler =
        Arc::new(|_| Ok(Outcome { output: json!(null), cleanup: vec![], proven_cycles: 0 }));
    let completer = Completer::start(db.clone(), completions::DEFAULT_WINDOW);
    let (stop, rx) = watch::channel(false);
    let start = Instant::now();
    let handles: Vec<_> = (0..agents)
        .map(|a| {
            let mut cfg = AgentConfig::new(format!("bench-{a}"), vec![Kind::new("bench")]);
            cfg.concurrency = slots;
            let ctx = Context {
                db: db.clone(),
                stores: stores.clone(),
                rt: tokio::runtime::Handle::current(),
                room_timeout: Duration::from_secs(60),
            };
            let agent =
                Agent::new(cfg, ctx).with_completer(completer.clone()).with_handler(noop.clone());
            tokio::spawn(agent.run(rx.clone()))
        })
        .collect();
    while db.job(job).await.unwrap().state == JobState::Running {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rate = tasks as f64 / start.elapsed().as_secs_f64();
    stop.send(true).unwrap();
    for h in handles {
        let _ = h.await;
    }
    rate
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let stores: Stores = StoreConfig::new(dir.path()).open().await.unwrap();
    let slots = list("TIFFIN_BENCH_SLOTS", &[1, 8]);
    let tasks = list("TIFFIN_BENCH_TASKS", &[4000])[0];
    println!("| agents × slots | completions/s (agent loop, PostgreSQL default durability) |");
    println!("|---|---|");
    for agents in list("TIFFIN_BENCH_AGENTS", &[8, 32, 128]) {
        for &s in &slots {
            let rate = run(agents, s, tasks, &stores).await;
            println!("| {agents} × {s} | {rate:.0} |");
        }
    }
}
