//! The distributed cluster: `tiffin agent` processes over a real PostgreSQL, Redis and S3
//! (s3s-fs), all on loopback, proving real receipts — including an agent killed with SIGKILL
//! in the middle of a proof.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Services;
use tiffin_guests::{ECHO, SPIN, spin_input};
use tiffin_storage::testing::S3Server;
use tiffin_storage::{StoreConfig, Stores};
use tiffin_taskdb::{Config, JobState, PostgresTaskDb, TaskDb, TaskState};
use tiffin_workflow::{Cluster, ProveRequest, kinds};
use tiffin_zkvm::{ImageId, ReceiptKind, verify};

/// spin cycles giving 4 segments at po2 14 (see crates/zkvm/examples/segments.rs).
const SPIN_4: u32 = 10_000;

/// An embedded-API handle on the services (the test submits and watches jobs through it).
async fn cluster(s: &Services) -> Cluster {
    let db: Arc<dyn TaskDb> =
        Arc::new(PostgresTaskDb::connect(&s.database_url, Config::default()).await.unwrap());
    let mut cfg = StoreConfig::new(s.dir.path());
    cfg.store = Some(s.s3.store_url());
    cfg.hot_store = Some(s.redis.url());
    let stores: Stores = cfg.open().await.unwrap();
    Cluster::new(db, stores)
}

fn request(program: &'static [u8], input: Vec<u8>, kind: ReceiptKind) -> ProveRequest {
    ProveRequest {
        tenant: "alice".into(),
        program: Bytes::from_static(program),
        input: Bytes::from(input),
        po2: 14,
        receipt_kind: kind,
        execute_only: false,
        cycle_limit: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_prove_through_postgres_redis_and_s3() {
    let s = Services::start().await;
    let _a = s.agent("exec-1", "exec,aux");
    let _b = s.agent("prover-1", "prove,join,aux");
    let _c = s.agent("prover-2", "prove,join,aux");
    let c = cluster(&s).await;

    // Composite receipts: this test is about processes, PostgreSQL, Redis and S3; the succinct
    // path across processes (lift in an agent, receipt through S3) is `api_distributed`'s.
    let echo = request(ECHO.program, b"distributed".to_vec(), ReceiptKind::Composite);
    let echo = c.submit(echo).await.unwrap();
    let spin =
        c.submit(request(SPIN.program, spin_input(SPIN_4), ReceiptKind::Composite)).await.unwrap();
    for job in [echo, spin] {
        c.wait(job, Duration::from_millis(250), |_| {}).await.unwrap();
    }
    let r = c.receipt(echo).await.unwrap();
    assert_eq!(r.journal.bytes, b"distributed");
    verify(&r, ImageId::from_words(ECHO.image_id)).unwrap();
    verify(&c.receipt(spin).await.unwrap(), ImageId::from_words(SPIN.image_id)).unwrap();

    // Both provers took part, and the receipts live in S3, not on an agent's disk.
    let spin_tasks = c.db.tasks(spin).await.unwrap();
    assert_eq!(spin_tasks.iter().filter(|t| t.kind == kinds::PROVE).count(), 4);
    let mut tasks = spin_tasks;
    tasks.extend(c.db.tasks(echo).await.unwrap());
    let provers: std::collections::HashSet<_> = tasks
        .iter()
        .filter(|t| t.kind == kinds::PROVE)
        .filter_map(|t| t.agent.as_deref().map(|a| a.split('/').next().unwrap().to_string()))
        .collect();
    assert_eq!(provers.len(), 2, "both prover agents proved segments: {provers:?}");
    assert!(s.s3.data_dir().join(S3Server::BUCKET).join("jobs").join(echo.to_string()).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_agent_loses_its_lease_and_another_redoes_the_task() {
    let s = Services::start().await;
    let _exec = s.agent("exec-1", "exec,aux");
    let mut victim = s.agent("victim", "prove,join");
    let c = cluster(&s).await;
    let job =
        c.submit(request(SPIN.program, spin_input(SPIN_4), ReceiptKind::Composite)).await.unwrap();

    // Wait until the victim holds a prove lease, then SIGKILL it mid-proof.
    let deadline = Instant::now() + Duration::from_secs(300);
    let killed_task = loop {
        assert!(Instant::now() < deadline, "victim never claimed a task");
        let tasks = c.db.tasks(job).await.unwrap();
        if let Some(t) = tasks.iter().find(|t| {
            t.state == TaskState::Leased
                && t.agent.as_deref().is_some_and(|a| a.starts_with("victim"))
        }) {
            break t.key.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    victim.0.kill().unwrap(); // SIGKILL: no graceful release
    victim.0.wait().unwrap();

    // A survivor (with the housekeeper) picks the work up after the lease expires.
    let _rescuer = s.agent("rescuer", "prove,join,aux");
    let out = c.wait(job, Duration::from_millis(250), |_| {}).await.unwrap();
    assert_eq!(out.status.state, JobState::Succeeded);
    verify(&c.receipt(job).await.unwrap(), ImageId::from_words(SPIN.image_id)).unwrap();

    let tasks = c.db.tasks(job).await.unwrap();
    let t = tasks.iter().find(|t| t.key == killed_task).unwrap();
    assert_eq!(t.state, TaskState::Done);
    assert!(t.attempt >= 2, "the killed attempt was retried (attempt {})", t.attempt);
    assert!(t.agent.as_deref().unwrap().starts_with("rescuer"), "done by {:?}", t.agent);
    // Every task done exactly once: all done, and the job's counter reached zero.
    assert!(tasks.iter().all(|t| t.state == TaskState::Done));
    assert_eq!(out.status.remaining, 0);
}
