//! The chaos suite (docs/reliability.md): real jobs through the distributed cluster —
//! `tiffin agent` processes over PostgreSQL, Redis and S3 on loopback — while one fault is
//! injected at a time. Each scenario reports the jobs lost (goal 0), tasks completed twice
//! (goal 0, counted from every agent's log of accepted completions), late results refused and
//! the time to recover, and verifies every receipt. `scripts/chaos` runs them all and prints
//! the table; `scripts/test` runs the cheaper ones (the others are `#[ignore]`d).

#[path = "../common/mod.rs"]
mod common;
mod processes;
mod rig;

use std::time::{Duration, Instant};

use rig::Rig;
use tiffin_taskdb::TaskState;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
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

/// A prover frozen past its lease: another agent redoes its task, and the frozen one's result,
/// when it wakes, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prover_stopped_past_its_lease() {
    let mut rig = Rig::start(false).await;
    rig.standard_agents();
    let jobs = rig.submit(1).await;
    let task = rig.leased(jobs[0], "prove", "prover-1").await;
    let fault = rig.fault_on(jobs[0], &task);
    rig.signal("prover-1", "STOP");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !matches!(rig.task(jobs[0], &task).await, Some((TaskState::Done, _))) {
        assert!(Instant::now() < deadline, "nobody redid the frozen prover's task");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, by) = rig.task(jobs[0], &task).await.unwrap();
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
