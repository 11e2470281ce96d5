//! The chaos suite (docs/reliability.md): real jobs through the distributed cluster —
//! `tiffin agent` processes over PostgreSQL, Redis and S3 on loopback — while one fault is
//! injected at a time. Each scenario reports the jobs lost (goal 0), tasks completed twice
//! (goal 0, counted from every agent's log of accepted completions), late results refused and
//! the time to recover, and verifies every receipt. `scripts/chaos` runs them all and prints
//! the table; `scripts/test` runs the cheaper ones (the others are `#[ignore]`d).

#[path = "../common/mod.rs"]
mod common;
mod partitions;
mod processes;
mod rig;

use std::time::{Duration, Instant};

use rig::Rig;
use tiffin_taskdb::TaskState;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the suite's agent host cut mid-proof covers a lease lost mid-proof"]
async fn a_prover_killed_mid_proof() {
    let mut rig = Rig::start(false).await;
    rig.standard_agents();
    let jobs = rig.submit(1).await;
    let task = rig.leased(jobs[0], "prove", "prover-1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fault = rig.fault_on(jobs[0], &task);
    rig.kill("prover-1");
    rig.report("prover killed (SIGKILL) mid-proof", &jobs, fault).await.check();
    let (state, by) = rig.task(jobs[0], &task).await.unwrap();
    assert_eq!(state, TaskState::Done);
    assert!(by.is_some_and(|a| !a.starts_with("prover-1")), "redone by a survivor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn the_executor_killed_mid_execution() {
    let mut rig = Rig::start(false).await;
    rig.standard_agents();
    let jobs = rig.submit(2).await;
    let task = rig.leased(jobs[1], "exec", "exec-1").await;
    let fault = rig.fault_on(jobs[1], &task);
    rig.kill("exec-1");
    rig.agent("exec-2", "exec,aux");
    rig.report("executor killed (SIGKILL) mid-execution", &jobs, fault).await.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn a_joiner_killed_mid_join() {
    a_role_killed_mid_task("join", "join agent killed (SIGKILL) mid-join").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn an_aux_agent_killed_mid_finalize() {
    a_role_killed_mid_task("aux", "aux agent killed (SIGKILL) mid-finalize").await;
}

/// A two-segment succinct job (two lifts, a join, a finalize) on agents of one role each: the
/// only agent serving `kind` (`join`, or `aux`: the finalize) is killed once it holds that
/// task, and a new one of the same role is started in its place, which redoes the task.
async fn a_role_killed_mid_task(kind: &str, scenario: &'static str) {
    let mut rig = Rig::start(false).await;
    rig.role_agents();
    let jobs = rig.submit_succinct(1).await;
    let (first, second) = (format!("{kind}-1"), format!("{kind}-2"));
    // A finalize takes some 30 ms, too short to kill it in reliably: the cold store it starts
    // with (the journal) is frozen from the join on, so the finalize waits there until killed.
    let hold = kind == "aux";
    if hold {
        rig.done_by(jobs[0], "exec", rig::DEADLINE).await;
        rig.leased(jobs[0], "join", "join-1").await;
        rig::send(rig.s.s3.pid(), "STOP");
    }
    let task = rig.leased(jobs[0], kind, &first).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // under way (proving, or held)
    let fault = rig.fault_on(jobs[0], &task);
    rig.kill(&first);
    if hold {
        rig::send(rig.s.s3.pid(), "CONT");
    }
    rig.agent(&second, kind);
    rig.report(scenario, &jobs, fault).await.check();
    let by = rig.done_by(jobs[0], &task, Duration::ZERO).await;
    assert!(by.is_some_and(|a| a.starts_with(&second)), "{task} redone by {second}");
    // The redone task consumed its inputs like the first would have: nothing is left over.
    assert_eq!(rig.c.stores.hot.usage().await.unwrap(), 0, "hot store drained");
}

/// A prover frozen past its lease: another agent redoes its task, and the frozen one's result,
/// when it wakes, is refused. (The suite runs its partition twin instead: an agent host cut
/// from the database mid-proof, `partitions.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn a_prover_stopped_past_its_lease() {
    let mut rig = Rig::start(false).await;
    rig.standard_agents();
    let jobs = rig.submit(1).await;
    let task = rig.leased(jobs[0], "prove", "prover-1").await;
    let fault = rig.fault_on(jobs[0], &task);
    rig.signal("prover-1", "STOP");
    let by = rig.done_by(jobs[0], &task, Duration::from_secs(120)).await;
    assert!(by.is_some_and(|a| !a.starts_with("prover-1")), "done by another agent");
    rig.signal("prover-1", "CONT");
    let report = rig.report("prover frozen (SIGSTOP) past its lease, then resumed", &jobs, fault);
    let report = report.await;
    // The resumed agent learns at its next heartbeat or completion that the task is not its.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rig.refusals() == 0 {
        assert!(Instant::now() < deadline, "the late result was never refused: {report:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    rig::Report { refused: rig.refusals(), ..report }.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn postgres_restarted_mid_job() {
    let mut rig = Rig::start(true).await;
    rig.standard_agents();
    let jobs = rig.submit(2).await;
    rig.leased(jobs[0], "prove", "prover").await;
    let fault = rig.fault(&jobs).await;
    let pg = rig.pg.as_ref().unwrap();
    pg.crash().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.restart().unwrap();
    rig.report("PostgreSQL crashed mid-job, back after 3 s", &jobs, fault).await.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarted_mid_job() {
    let mut rig = Rig::start(false).await;
    rig.standard_agents();
    let jobs = rig.submit(1).await;
    rig.leased(jobs[0], "prove", "prover").await;
    let fault = rig.fault(&jobs).await;
    rig.s.redis.restart(Duration::from_secs(3)).unwrap();
    rig.report("Redis (hot store) killed mid-job, back empty after 3 s", &jobs, fault)
        .await
        .check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn s3_restarted_mid_job() {
    let mut rig = Rig::start(false).await;
    rig.standard_agents();
    let jobs = rig.submit(2).await;
    rig.leased(jobs[0], "prove", "prover").await;
    let fault = rig.fault(&jobs).await;
    rig.s.s3.restart(Duration::from_secs(3)).unwrap();
    rig.report("S3 server (cold store) killed mid-job, back after 3 s", &jobs, fault).await.check();
}
