//! Scheduler-scale benchmark with a SIMULATED prover (sleep-based op costs, no risc0).
//!
//! What it measures is the cluster's scheduling, not proving: the real [`Planner`] shapes a
//! succinct job of S segments (S prove tasks, S−1 joins, finalize), a simulated executor feeds
//! it into the real TaskDB in batches, and A simulated agents run the real agent protocol
//! (claim with a lease → "prove" by sleeping the op's cost → complete; idle agents block in
//! `wait_for_work`). Agent utilisation = time spent "proving" / (A × makespan).
//!
//! The same DAG is also list-scheduled with zero overhead (a discrete-event simulation), which
//! gives the best utilisation any scheduler could reach with A agents: the join tree's last
//! levels have fewer tasks than agents, so 100 % is impossible. Both are printed.
//!
//! Run: `scripts/bench-scheduler [--quick]`, or directly
//! `$CARGO_TARGET_DIR/debug/examples/scheduler_sim --agents 1000 --segments 100000`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tiffin_taskdb::{
    Config, JobState, Kind, NewJob, NewTask, PostgresTaskDb, SqliteTaskDb, TaskDb,
};
use tiffin_workflow::planner::{PlannedTask, Planner, Shape, Step};

/// Benchmark parameters (`--name value` flags).
#[derive(Clone, Debug)]
struct Params {
    agents: usize,
    segments: u32,
    prove_ms: u64,
    join_ms: u64,
    /// Segments per `add_tasks` batch from the simulated executor.
    batch: u32,
    backend: String,
    pool: u32,
}

impl Params {
    fn parse() -> Self {
        let mut p = Params {
            agents: 1000,
            segments: 100_000,
            prove_ms: 3000,
            join_ms: 1500,
            batch: 256,
            backend: "postgres".into(),
            pool: 64,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--quick" {
                (p.agents, p.segments, p.prove_ms, p.join_ms) = (100, 10_000, 300, 150);
                continue;
            }
            let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
            let num = || v.parse::<u64>().unwrap_or_else(|_| panic!("{flag}: not a number: {v}"));
            match flag.as_str() {
                "--agents" => p.agents = num() as usize,
                "--segments" => p.segments = num() as u32,
                "--prove-ms" => p.prove_ms = num(),
                "--join-ms" => p.join_ms = num(),
                "--batch" => p.batch = num() as u32,
                "--pool" => p.pool = num() as u32,
                "--backend" => p.backend = v.clone(),
                other => panic!("unknown flag {other}"),
            }
        }
        p
    }

    fn cost(&self, step: &Step) -> u64 {
        match step {
            Step::Prove { .. } => self.prove_ms,
            _ => self.join_ms,
        }
    }
}

/// The job's DAG in planner order (what the simulated executor adds, batch by batch).
fn plan(p: &Params) -> Vec<Vec<PlannedTask>> {
    let mut planner = Planner::new(Shape::Succinct);
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    for s in 0..p.segments {
        batch.extend(planner.add_segment().expect("planning"));
        if (s + 1) % p.batch == 0 {
            batches.push(std::mem::take(&mut batch));
        }
    }
    batch.extend(planner.finish(false).expect("planning"));
    batches.push(batch);
    batches
}

fn kind_of(step: &Step) -> &'static str {
    match step {
        Step::Prove { .. } => "prove",
        Step::Join { .. } => "join",
        _ => "aux",
    }
}

fn new_task(t: &PlannedTask, p: &Params) -> NewTask {
    // Same priority rule as the real execute handler: nearest the root first.
    NewTask::new(t.step.key().0, kind_of(&t.step), json!({ "ms": p.cost(&t.step) }))
        .after(t.deps.iter().map(|d| d.key().0))
        .depth(1_000 - t.height as i32)
}

/// Zero-overhead list scheduling of the same DAG (all tasks released at t = 0, highest first).
/// Returns the ideal makespan in ms.
fn ideal_makespan(batches: &[Vec<PlannedTask>], p: &Params) -> u64 {
    let tasks: Vec<&PlannedTask> = batches.iter().flatten().collect();
    let index: HashMap<Step, usize> = tasks.iter().enumerate().map(|(i, t)| (t.step, i)).collect();
    let mut waiting: Vec<usize> = tasks.iter().map(|t| t.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for (i, t) in tasks.iter().enumerate() {
        for d in &t.deps {
            dependents[index[d]].push(i);
        }
    }
    // ready: highest tree height first, then creation order
    let mut ready: BinaryHeap<(u32, Reverse<usize>)> = (0..tasks.len())
        .filter(|&i| waiting[i] == 0)
        .map(|i| (tasks[i].height, Reverse(i)))
        .collect();
    let mut running: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let (mut now, mut free) = (0u64, p.agents);
    loop {
        while free > 0
            && let Some((_, Reverse(i))) = ready.pop()
        {
            running.push(Reverse((now + p.cost(&tasks[i].step), i)));
            free -= 1;
        }
        let Some(Reverse((t, i))) = running.pop() else { break };
        now = t;
        free += 1;
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push((tasks[d].height, Reverse(d)));
            }
        }
    }
    now
}

async fn open(p: &Params, dir: &tempfile::TempDir) -> Arc<dyn TaskDb> {
    let config = Config { max_connections: p.pool, ..Config::default() };
    match p.backend.as_str() {
        "postgres" => {
            let url = tiffin_taskdb::testing::fresh_database_url().await;
            Arc::new(PostgresTaskDb::connect(&url, config).await.expect("connect PostgreSQL"))
        }
        "sqlite" => Arc::new(
            SqliteTaskDb::open(dir.path().join("sim.db"), config).await.expect("open SQLite"),
        ),
        other => panic!("unknown backend {other} (postgres | sqlite)"),
    }
}

/// Where the agents' time goes, summed over agents (µs): printed every 20 s to stderr, so a
/// run shows *when* agents wait for the queue rather than only how much in total.
#[derive(Default)]
struct Timeline {
    proving: AtomicU64,
    claiming: AtomicU64,
    completing: AtomicU64,
    waiting: AtomicU64,
}

impl Timeline {
    fn add(counter: &AtomicU64, since: Instant) {
        counter.fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
    }

    fn snapshot(&self) -> [u64; 4] {
        let counters = [&self.proving, &self.claiming, &self.completing, &self.waiting];
        counters.map(|c| c.load(Ordering::Relaxed))
    }

    /// Every 20 s: how many agents, on average, spent that interval in each activity.
    async fn report(self: Arc<Self>) {
        let (period, mut last, mut at) = (Duration::from_secs(20), [0u64; 4], 0);
        loop {
            tokio::time::sleep(period).await;
            let now = self.snapshot();
            let span = period.as_micros() as f64;
            let avg: Vec<f64> = (0..4).map(|i| (now[i] - last[i]) as f64 / span).collect();
            at += period.as_secs();
            eprintln!(
                "{at:>4} s: agents proving {:.0}, claiming {:.0}, completing {:.0}, waiting {:.0}",
                avg[0], avg[1], avg[2], avg[3]
            );
            last = now;
        }
    }
}

/// One simulated agent: the real claim / wait protocol, with sleeping in place of proving.
async fn simulated_prover_agent(
    id: usize,
    db: Arc<dyn TaskDb>,
    done: Arc<AtomicBool>,
    stop: Arc<tokio::sync::Notify>,
    time: Arc<Timeline>,
    finished: tokio::sync::mpsc::UnboundedSender<JobState>,
) {
    let kinds = [Kind::new("prove"), Kind::new("join"), Kind::new("aux")];
    let name = format!("sim-{id}");
    while !done.load(Ordering::Relaxed) {
        let t = Instant::now();
        let claimed = db.claim(&name, &kinds, Duration::from_secs(600)).await;
        Timeline::add(&time.claiming, t);
        match claimed {
            Ok(Some(lease)) => {
                let ms = lease.payload["ms"].as_u64().unwrap_or(0);
                let t = Instant::now();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Timeline::add(&time.proving, t);
                let t = Instant::now();
                let completed = db.complete(&lease, json!(null)).await;
                Timeline::add(&time.completing, t);
                match completed {
                    Ok(c) if c.job_state != JobState::Running => {
                        let _ = finished.send(c.job_state);
                    }
                    Ok(_) => {}
                    Err(e) => eprintln!("{name}: complete failed: {e}"),
                }
            }
            Ok(None) => {
                let t = Instant::now();
                tokio::select! {
                    _ = db.wait_for_work(&kinds, Duration::from_secs(10)) => {}
                    _ = stop.notified() => {}
                }
                Timeline::add(&time.waiting, t);
            }
            Err(e) => {
                eprintln!("{name}: claim failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn main() {
    let p = Params::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run(p));
}

async fn run(p: Params) {
    let batches = plan(&p);
    let total_tasks: usize = batches.iter().map(Vec::len).sum();
    let work_ms: u64 = batches.iter().flatten().map(|t| p.cost(&t.step)).sum();
    let ideal = ideal_makespan(&batches, &p);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open(&p, &dir).await;

    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(tokio::sync::Notify::new());
    let time = Arc::new(Timeline::default());
    // The agent whose completion ends the job reports it: polling the job's status would put
    // a full scan of its tasks on the database many times a second and slow what we measure.
    let (finished_tx, mut finished) = tokio::sync::mpsc::unbounded_channel();
    let agents: Vec<_> = (0..p.agents)
        .map(|i| {
            let (db, done, stop, time) = (db.clone(), done.clone(), stop.clone(), time.clone());
            tokio::spawn(simulated_prover_agent(i, db, done, stop, time, finished_tx.clone()))
        })
        .collect();
    // The aux agent's housekeeping, as in the cluster: requeue_expired has nothing to do here
    // (leases outlive the run), but vacuuming keeps the queue's index heads short.
    let housekeeping = tokio::spawn({
        let (db, done) = (db.clone(), done.clone());
        let period = tiffin_workflow::AgentConfig::new("housekeeper", Vec::new()).housekeeping;
        async move {
            while !done.load(Ordering::Relaxed) {
                if let Err(e) = db.vacuum().await {
                    eprintln!("vacuum failed: {e}");
                }
                tokio::time::sleep(period).await;
            }
        }
    });
    let reporter = tokio::spawn(time.clone().report());
    // Let every agent reach wait_for_work before the job appears.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let start = Instant::now();
    let mut it = batches.iter();
    let first: Vec<NewTask> = it.next().expect("a batch").iter().map(|t| new_task(t, &p)).collect();
    let job = db.create_job(NewJob::new("sim", first)).await.expect("create job");
    for b in it {
        db.add_tasks(job, b.iter().map(|t| new_task(t, &p)).collect()).await.expect("add tasks");
    }
    let planned = start.elapsed();
    let state = finished.recv().await.expect("an agent reports the job's end");
    let makespan = start.elapsed();
    assert_eq!(db.job(job).await.expect("job status").state, state);
    done.store(true, Ordering::Relaxed);
    stop.notify_waiters();
    for a in agents {
        let _ = a.await;
    }
    housekeeping.abort();
    reporter.abort();
    assert_eq!(state, JobState::Succeeded, "the simulated job must succeed");

    let ms = makespan.as_millis() as f64;
    let busy = time.proving.load(Ordering::Relaxed) as f64 / 1000.0;
    let util = busy / (p.agents as f64 * ms);
    let ideal_util = work_ms as f64 / (p.agents as f64 * ideal as f64);
    println!(
        "Simulated prover (sleep-based op costs, no risc0): prove {} ms, join/finalize {} ms",
        p.prove_ms, p.join_ms
    );
    println!();
    println!(
        "| backend | agents | segments | tasks | all tasks added (s) | makespan (s) | ideal makespan (s) | utilisation | ideal utilisation | dispatch rate (tasks/s) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} % | {:.1} % | {:.0} |",
        p.backend,
        p.agents,
        p.segments,
        total_tasks,
        planned.as_secs_f64(),
        ms / 1000.0,
        ideal as f64 / 1000.0,
        util * 100.0,
        ideal_util * 100.0,
        total_tasks as f64 / (ms / 1000.0),
    );
}
