//! The distributed cluster: `tiffin agent` processes over a real PostgreSQL, Redis and S3
//! (s3s-fs), all on loopback, proving real receipts. (Agents killed, frozen and restarted
//! services are the chaos suite's, `tests/chaos/`.)

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::Services;
use tiffin_guests::{ECHO, SPIN, spin_input};
use tiffin_storage::testing::S3Server;
use tiffin_workflow::{ProveRequest, kinds};
use tiffin_zkvm::{ImageId, ReceiptKind, verify};

/// spin cycles giving 4 segments at po2 14 (see crates/zkvm/examples/segments.rs).
const SPIN_4: u32 = 10_000;

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
    let c = s.cluster().await;

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
