//! The chaos rig: a distributed cluster on loopback (PostgreSQL, Redis, S3, `tiffin agent`
//! processes logging to files), jobs to run through it, and the measurements each scenario
//! reports.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tiffin_guests::{SPIN, spin_input};
use tiffin_taskdb::testing::{Durability, TestPostgres};
use tiffin_taskdb::{JobId, JobState, TaskState};
use tiffin_workflow::{Cluster, ProveRequest};
use tiffin_zkvm::{ImageId, ReceiptKind, verify};

use crate::common::{Proc, Services};

/// spin cycles giving 4 segments at po2 14.
const SPIN_4: u32 = 10_000;
/// spin cycles giving 2 segments at po2 14, the cheapest job with a join (the kernel's
/// start-up fills the first; crates/workflow/tests/embedded.rs).
const SPIN_2: u32 = 500;
/// Longest a scenario's jobs may take to end after the fault.
pub const DEADLINE: Duration = Duration::from_secs(300);

/// A cluster under test.
pub struct Rig {
    pub s: Services,
    /// The rig's own PostgreSQL server, for scenarios that restart it.
    pub pg: Option<TestPostgres>,
    agents: Vec<(String, Proc)>,
    watch: Watch,
}

/// What every scenario's rig shares: a handle on the cluster to submit and watch jobs, and the
/// directory of the agents' logs (accepted and refused completions are counted from them).
pub struct Watch {
    pub c: Cluster,
    pub logs: PathBuf,
}

impl std::ops::Deref for Rig {
    type Target = Watch;
    fn deref(&self) -> &Watch {
        &self.watch
    }
}

/// When a fault began, and what recovery means: the task it hit is done, or (for a service)
/// any task completes after it.
pub struct Fault {
    at: Instant,
    done_before: usize,
    hit: Option<(JobId, String)>,
}

/// What a scenario measured.
#[derive(Debug)]
pub struct Report {
    pub scenario: &'static str,
    pub jobs: usize,
    /// Jobs that did not succeed by the deadline.
    pub lost: usize,
    /// Tasks completed (accepted) more than once, over all agents' logs.
    pub duplicates: usize,
    /// Tasks of succeeded jobs with no accepted completion in any log.
    pub unlogged: usize,
    /// Completions refused (a late result after the lease passed to another agent).
    pub refused: usize,
    /// From the fault to the next task completed.
    pub recovery: Duration,
    /// Receipts verified against their image.
    pub verified: usize,
    /// Why each lost job ended.
    pub failures: Vec<String>,
}

impl Report {
    /// The report of one `tiffin up` session that succeeded with a verified receipt, from its
    /// log of accepted completions (`unlogged`: tasks with no accepted completion).
    pub fn one_session(
        scenario: &'static str,
        log: &str,
        unlogged: usize,
        recovery: Duration,
    ) -> Self {
        let duplicates = duplicates(&completions(log));
        let (jobs, lost, refused, verified, failures) = (1, 0, 0, 1, Vec::new());
        Report { scenario, jobs, lost, duplicates, unlogged, refused, recovery, verified, failures }
    }

    /// Prints the report (one JSON line; also appended to `$TIFFIN_CHAOS_REPORT`) and checks
    /// the goals: nothing lost, nothing done twice, every receipt verified.
    pub fn check(&self) {
        let line = serde_json::json!({
            "scenario": self.scenario,
            "jobs": self.jobs,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "refused": self.refused,
            "recovery_secs": (self.recovery.as_secs_f64() * 10.0).round() / 10.0,
            "verified": self.verified,
        });
        println!("{line}");
        // scripts/chaos collects one table row per scenario.
        if let Some(path) = std::env::var_os("TIFFIN_CHAOS_REPORT") {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
            let r = self;
            let recovery = r.recovery.as_secs_f64();
            let row = format!(
                "| {} | {} | {} | {} | {} | {recovery:.1} s | {}/{} |",
                r.scenario, r.jobs, r.lost, r.duplicates, r.refused, r.verified, r.jobs
            );
            writeln!(f, "{row}").unwrap();
        }
        assert_eq!(self.lost, 0, "lost jobs ended: {:?} ({self:?})", self.failures);
        assert_eq!((self.duplicates, self.unlogged), (0, 0), "{self:?}");
        assert_eq!(self.verified, self.jobs, "{self:?}");
    }
}

impl Rig {
    /// Services (with a PostgreSQL server of its own if `own_postgres`, so it can be
    /// restarted without disturbing other tests) and the cluster handle.
    pub async fn start(own_postgres: bool) -> Self {
        let (mut s, pg) = (Services::start().await, None);
        let pg = if own_postgres {
            let server = TestPostgres::start_with(Durability::Default).unwrap();
            s.database_url = server.create_database().await;
            Some(server)
        } else {
            pg
        };
        let logs = s.dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let watch = Watch { c: s.cluster().await, logs };
        Self { s, pg, agents: Vec::new(), watch }
    }

    fn log(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }

    /// Starts `tiffin agent --id NAME --kinds KINDS` (6 s leases, 1 s heartbeats), logging at
    /// info level to the rig's log directory.
    pub fn agent(&mut self, name: &str, kinds: &str) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log(name));
        let child = Command::new(env!("CARGO_BIN_EXE_tiffin"))
            .arg("agent")
            .args(["--id", name, "--kinds", kinds])
            .args(["--lease-secs", "6", "--heartbeat-secs", "1", "--housekeeping-secs", "1"])
            .args(self.s.backend_args(name))
            .env("TIFFIN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.unwrap())
            .spawn()
            .expect("spawn tiffin agent");
        self.agents.push((name.to_string(), Proc(child)));
    }

    /// The usual cluster: an executor and two provers.
    pub fn standard_agents(&mut self) {
        self.agent("exec-1", "exec,aux");
        self.agent("prover-1", "prove,join,aux");
        self.agent("prover-2", "prove,join,aux");
    }

    /// Each role in an agent process of its own, so that one role can be killed alone: an
    /// executor, two provers, a joiner (joins and resolves) and an aux agent (finalize and the
    /// housekeeper).
    pub fn role_agents(&mut self) {
        self.agent("exec-1", "exec");
        self.agent("prove-1", "prove");
        self.agent("prove-2", "prove");
        self.agent("join-1", "join");
        self.agent("aux-1", "aux");
    }

    fn pid(&self, name: &str) -> u32 {
        self.agents.iter().find(|(n, _)| n == name).expect("a started agent").1.0.id()
    }

    /// SIGKILL: the agent (and its proving child) dies without a word.
    pub fn kill(&mut self, name: &str) {
        let i = self.agents.iter().position(|(n, _)| n == name).expect("a started agent");
        let (_, mut proc) = self.agents.remove(i);
        proc.0.kill().unwrap();
        proc.0.wait().unwrap();
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the agent.
    pub fn signal(&self, name: &str, signal: &str) {
        send(self.pid(name), signal);
    }
}

impl Watch {
    /// Submits `n` four-segment composite jobs.
    pub async fn submit(&self, n: usize) -> Vec<JobId> {
        self.submit_as(n, ReceiptKind::Composite, SPIN_4).await
    }

    /// Submits `n` two-segment succinct jobs: two lifted segments, a join, a finalize.
    pub async fn submit_succinct(&self, n: usize) -> Vec<JobId> {
        self.submit_as(n, ReceiptKind::Succinct, SPIN_2).await
    }

    async fn submit_as(&self, n: usize, receipt_kind: ReceiptKind, spin: u32) -> Vec<JobId> {
        let mut jobs = Vec::with_capacity(n);
        for i in 0..n {
            let req = ProveRequest {
                tenant: format!("chaos-{i}"),
                program: Bytes::from_static(SPIN.program),
                input: Bytes::from(spin_input(spin)),
                po2: 14,
                receipt_kind,
                execute_only: false,
                cycle_limit: None,
            };
            jobs.push(self.c.submit(req).await.unwrap());
        }
        jobs
    }

    /// Waits until `agent` holds a lease on a task of `kind` of `job`; returns its key.
    pub async fn leased(&self, job: JobId, kind: &str, agent: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "{agent} never leased a {kind} task");
            let tasks = self.c.db.tasks(job).await.unwrap();
            let held = tasks.iter().find(|t| {
                t.kind == kind
                    && t.state == TaskState::Leased
                    && t.agent.as_deref().is_some_and(|a| a.starts_with(agent))
            });
            if let Some(t) = held {
                return t.key.clone();
            }
            let mut of_kind = tasks.iter().filter(|t| t.kind == kind).peekable();
            let all_done = of_kind.peek().is_some() && of_kind.all(|t| t.state == TaskState::Done);
            assert!(!all_done, "every {kind} task was done before {agent} was seen holding one");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (at most `within`) until task `key` of `job` is done; returns who did it.
    pub async fn done_by(&self, job: JobId, key: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some((TaskState::Done, by)) = self.task(job, key).await {
                return by;
            }
            assert!(Instant::now() < deadline, "task {key} was not done within {within:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The state and agent of task `key` of `job`, if the database answers.
    pub async fn task(&self, job: JobId, key: &str) -> Option<(TaskState, Option<String>)> {
        let tasks = self.c.db.tasks(job).await.ok()?;
        tasks.into_iter().find(|t| t.key == key).map(|t| (t.state, t.agent))
    }

    async fn done(&self, jobs: &[JobId]) -> Option<usize> {
        let mut n = 0;
        for job in jobs {
            let tasks = self.c.db.tasks(*job).await.ok()?;
            n += tasks.iter().filter(|t| t.state == TaskState::Done).count();
        }
        Some(n)
    }

    /// Marks the start of a fault on a service: recovered when work completes again.
    pub async fn fault(&self, jobs: &[JobId]) -> Fault {
        let done_before = self.done(jobs).await.unwrap_or(0);
        Fault { at: Instant::now(), done_before, hit: None }
    }

    /// Marks the start of a fault on the agent running task `key` of `job`: recovered when that
    /// task is done (by whoever).
    pub fn fault_on(&self, job: JobId, key: &str) -> Fault {
        Fault { at: Instant::now(), done_before: usize::MAX, hit: Some((job, key.to_string())) }
    }

    async fn recovered(&self, jobs: &[JobId], fault: &Fault) -> bool {
        match &fault.hit {
            Some((job, key)) => {
                matches!(self.task(*job, key).await, Some((TaskState::Done, _)))
            }
            None => self.done(jobs).await.is_some_and(|n| n > fault.done_before),
        }
    }

    /// Waits for the jobs to end and measures the scenario.
    pub async fn report(&self, scenario: &'static str, jobs: &[JobId], fault: Fault) -> Report {
        let mut recovery = None;
        let deadline = Instant::now() + DEADLINE;
        loop {
            if recovery.is_none() && self.recovered(jobs, &fault).await {
                recovery = Some(fault.at.elapsed());
            }
            let mut running = 0;
            for job in jobs {
                match self.c.db.job(*job).await {
                    Ok(j) if j.state == JobState::Running => running += 1,
                    // A job that just failed may yet be replayed by the housekeeper (lost hot
                    // data): it counts as lost only once it stayed failed a while.
                    Ok(j) if j.state != JobState::Succeeded && settling(&j) => running += 1,
                    Ok(_) => {}
                    Err(_) => running += 1, // the database is coming back
                }
            }
            if running == 0 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let completions = self.completions();
        let (mut lost, mut verified, mut unlogged, mut failures) = (0, 0, 0, Vec::new());
        for job in jobs {
            let status = self.c.db.job(*job).await.unwrap();
            if status.state != JobState::Succeeded {
                lost += 1;
                let why =
                    status.first_failure.map(|f| format!("{} ({}): {}", f.task, f.kind, f.error));
                failures.push(why.or(status.error).unwrap_or_else(|| status.state.to_string()));
                continue;
            }
            let receipt = self.c.receipt(*job).await.unwrap();
            verified += usize::from(verify(&receipt, ImageId::from_words(SPIN.image_id)).is_ok());
            for t in self.c.db.tasks(*job).await.unwrap() {
                let logged = completions.get(&(job.to_string(), t.key.clone())).copied();
                unlogged += usize::from(logged.unwrap_or(0) == 0);
            }
        }
        Report {
            scenario,
            jobs: jobs.len(),
            lost,
            duplicates: duplicates(&completions),
            unlogged,
            refused: self.refusals(),
            recovery: recovery.unwrap_or(DEADLINE),
            verified,
            failures,
        }
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(&self.logs).unwrap() {
            all.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
        }
        all
    }

    /// Accepted completions per (job, task), from every agent's log.
    fn completions(&self) -> HashMap<(String, String), usize> {
        completions(&self.logs())
    }

    /// Late results refused: completions rejected, or tasks abandoned on a lost lease.
    pub fn refusals(&self) -> usize {
        let logs = self.logs();
        logs.lines()
            .filter(|l| l.contains("completion rejected") || l.contains("lease lost; abandoning"))
            .count()
    }
}

/// Whether process `pid` runs (exists and is no zombie).
pub fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
    stat.is_ok_and(|s| !s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

/// Sends `signal` (e.g. `STOP`, `CONT`) to process `pid`.
pub fn send(pid: u32, signal: &str) {
    let pid = pid.to_string();
    let status = Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Completions past one per task and run. A job replayed from execution (lost hot data) runs
/// its tasks again under the same keys: each run is one completed `exec`.
pub fn duplicates(completions: &HashMap<(String, String), usize>) -> usize {
    let runs = |job: &str| completions.get(&(job.to_string(), "exec".to_string())).copied();
    completions.iter().map(|((job, _), n)| n.saturating_sub(runs(job).unwrap_or(1).max(1))).sum()
}

/// Whether an ended job ended less than [`SETTLE`] ago.
fn settling(job: &tiffin_taskdb::JobStatus) -> bool {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let now_ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    let ended_ms = job.finished_at.map_or(now_ms, |t| t.timestamp_millis());
    now_ms - ended_ms < SETTLE.as_millis() as i64
}

/// How long a failed job is watched for a replay before it counts as lost (the housekeeper
/// runs every second in the suite's agents).
const SETTLE: Duration = Duration::from_secs(10);

/// Accepted completions per (job, task) in agents' logs (their `task completed` lines).
pub fn completions(logs: &str) -> HashMap<(String, String), usize> {
    let mut seen = HashMap::new();
    for line in logs.lines().filter(|l| l.contains("task completed")) {
        let field = |name: &str| {
            line.split_whitespace().find_map(|w| w.strip_prefix(name)).map(str::to_string)
        };
        if let (Some(job), Some(task)) = (field("job="), field("task=")) {
            *seen.entry((job, task)).or_insert(0) += 1;
        }
    }
    seen
}
