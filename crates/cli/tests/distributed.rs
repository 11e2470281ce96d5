//! The distributed cluster across hosts: `scripts/hosts-up 3` puts PostgreSQL, Redis and S3
//! (s3s-fs) on a `db` host, `tiffin api` on an `api` host and `tiffin agent` processes on three
//! agent hosts, each a network namespace on a private subnet joined by veth links to a bridge,
//! and they prove real receipts over real sockets between those hosts. Skips (saying why) where
//! network namespaces are not available (not root, no `ip netns`). (Agents killed, frozen and
//! partitioned, restarted services: the chaos suite's, `tests/chaos/`.)

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use common::hosts::Hosts;
use tiffin_guests::{ECHO, SPIN, spin_input};
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
async fn agents_on_three_hosts_prove_through_postgres_redis_and_s3_on_another() {
    let Some(hosts) = Hosts::up_or_skip(3, &[]) else { return };
    let c = hosts.cluster().await;
    // The API host serves HTTPS across the bridge, under the hosts' CA only.
    let health = format!("{}/health", hosts.var("TIFFIN_API_URL"));
    assert!(health.starts_with("https://"), "{health}");
    let res = hosts.http(Duration::from_secs(10)).get(&health).send().await.unwrap();
    assert!(res.status().is_success(), "{health}");
    assert!(reqwest::get(&health).await.is_err(), "the system's roots do not trust the API");

    // Composite receipts: this test is about hosts, PostgreSQL, Redis and S3; the succinct
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

    // The prover agents of all three hosts took part, and the receipts live in S3 on the db
    // host, not on an agent host's disk.
    let spin_tasks = c.db.tasks(spin).await.unwrap();
    assert_eq!(spin_tasks.iter().filter(|t| t.kind == kinds::PROVE).count(), 4);
    let mut tasks = spin_tasks;
    tasks.extend(c.db.tasks(echo).await.unwrap());
    let provers: HashSet<_> = tasks
        .iter()
        .filter(|t| t.kind == kinds::PROVE)
        .filter_map(|t| t.agent.as_deref().map(|a| a.split('/').next().unwrap().to_string()))
        .collect();
    let all: HashSet<_> = ["prove-h1", "prove-h2", "prove-h3"].map(String::from).into();
    assert_eq!(provers, all, "the agents of all three hosts proved segments");
    let stored = hosts.dir.join("s3/tiffin/jobs").join(echo.to_string());
    assert!(stored.exists(), "{stored:?}");
    every_link_is_tls(&hosts).await;
}

/// No link carries a secret or a receipt in plain text: each server refuses a plain
/// connection, and the roles' environment files hold no secret (the units' command lines name
/// the secret files).
async fn every_link_is_tls(hosts: &Hosts) {
    use tiffin_taskdb::{Config, PostgresTaskDb};
    let url = hosts.secret("TIFFIN_DATABASE_URL_FILE");
    let plain = format!("{url}?sslmode=disable");
    let plain = PostgresTaskDb::connect(&plain, Config::default()).await;
    assert!(plain.is_err(), "PostgreSQL refuses a connection without TLS");
    let redis = hosts.var("TIFFIN_HOT_STORE").replace("rediss://", "redis://");
    let mut cfg = tiffin_storage::StoreConfig::new(hosts.dir.join("data/plain"));
    cfg.hot_store = Some(redis);
    cfg.secrets.redis_password = Some("not-the-password".into()); // never the real one in plain
    assert!(cfg.open().await.is_err(), "Redis refuses a connection without TLS");
    for url in [
        hosts.var("TIFFIN_API_URL"),
        &hosts.var("TIFFIN_STORE").replace("s3://tiffin?endpoint=", ""),
    ] {
        let plain = url.replace("https://", "http://");
        let res = reqwest::get(format!("{}/", plain.split('&').next().unwrap())).await;
        assert!(
            res.is_err() || !res.unwrap().status().is_success(),
            "{plain} served in plain text"
        );
    }
    let mut env = String::new();
    for file in std::fs::read_dir(hosts.dir.join("etc")).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e == "env") {
            env.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    assert!(env.contains("TIFFIN_KINDS=prove"), "the agents' environment files: {env}");
    for key in ["TIFFIN_REDIS_PASSWORD_FILE", "TIFFIN_S3_SECRET_KEY_FILE", "TIFFIN_ADMIN_KEY_FILE"]
    {
        assert!(!env.contains(&hosts.secret(key)), "{key}'s secret in the roles' environment");
    }
    assert!(!env.contains(url.split('@').next().unwrap()), "the database password");
}
