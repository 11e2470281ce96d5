//! The Bonsai API of a distributed cluster, brought up the way an operator does it:
//! `scripts/cluster-up` (PostgreSQL, Redis, S3 and `tiffin agent` processes), two `tiffin api`
//! processes in front of it, a proof submitted with `tiffin session submit --wait`, the
//! unmodified `bonsai-sdk` client on the other API process (composition: a receipt verified
//! inside the guest, its assumption resolved; a snark refused with its code), tenant isolation across processes
//! (the tenant tables live in PostgreSQL, not in an API's memory), and `scripts/cluster-down`,
//! which must leave no process behind.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bonsai_sdk::non_blocking::{Client, SessionId};
use common::{Proc, field};
use serde_json::{Value, json};
use tiffin_guests::{COMPOSE, ECHO};
use tiffin_zkvm::{ImageId, Receipt, decode, verify};

const ADMIN_KEY: &str = "distributed-admin-key";

/// Runs one of the repository's scripts on the cluster directory `dir`, to success.
fn script(name: &str, args: &[&str], dir: &Path) {
    common::ok(common::script(name).args(args).env("TIFFIN_CLUSTER_DIR", dir));
}

/// A cluster started by `scripts/cluster-up`; dropping it runs `scripts/cluster-down` (so a
/// failing test leaves nothing running).
struct ScriptCluster {
    dir: PathBuf,
    env: HashMap<String, String>,
    _tmp: tempfile::TempDir,
}

impl ScriptCluster {
    fn up(provers: u32) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cluster");
        script("cluster-up", &[&provers.to_string()], &dir);
        let text = std::fs::read_to_string(dir.join("env")).expect("cluster-up writes env");
        let env = text
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        Self { dir, env, _tmp: tmp }
    }

    /// Every process the cluster runs: agents, Redis, s3s-fs and the PostgreSQL postmaster.
    fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = std::fs::read_dir(self.dir.join("pids"))
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()?.trim().parse().ok())
            .collect();
        let pg = std::fs::read_to_string(self.dir.join("pg/data/postmaster.pid")).unwrap();
        pids.push(pg.lines().next().unwrap().trim().parse().unwrap());
        pids
    }

    fn down(&self) {
        script("cluster-down", &[], &self.dir);
    }

    /// `tiffin <args>` with the cluster's environment.
    fn tiffin(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tiffin"));
        cmd.args(args).envs(&self.env).stdin(Stdio::null());
        cmd
    }

    /// Starts `tiffin api` on a free port and returns it with its URL (read from its stdout).
    fn api(&self, name: &str) -> (Proc, String) {
        let data = self.dir.join(format!("data-{name}"));
        let mut child = self
            .tiffin(&["api", "--listen", "127.0.0.1:0", "--po2", "16", "--admin-key", ADMIN_KEY])
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tiffin api");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines.next().expect("tiffin api exited before listening").unwrap();
            if let Some(url) = line.strip_prefix("Tiffin API listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        (Proc(child), url)
    }
}

impl Drop for ScriptCluster {
    fn drop(&mut self) {
        if self.dir.join("env").exists() {
            let _ = common::script("cluster-down").env("TIFFIN_CLUSTER_DIR", &self.dir).output();
        }
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

async fn create_tenant(url: &str, name: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{url}/admin/tenants"))
        .header("x-admin-key", ADMIN_KEY)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    v["key"].as_str().unwrap().to_string()
}

async fn wait(client: &Client, session: &SessionId) -> bonsai_sdk::responses::SessionStatusRes {
    let start = Instant::now();
    loop {
        let s = session.status(client).await.unwrap();
        if s.status != "RUNNING" {
            return s;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "still running: {:?}", s.state);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_up_two_api_processes_a_cli_session_and_cluster_down() {
    let cluster = ScriptCluster::up(1);
    for key in ["TIFFIN_DATABASE_URL", "TIFFIN_HOT_STORE", "TIFFIN_STORE"] {
        assert!(cluster.env.contains_key(key), "cluster env lacks {key}: {:?}", cluster.env);
    }
    let (mut api1, url1) = cluster.api("api-1");
    let (mut api2, url2) = cluster.api("api-2");

    // A tenant created through one API process authenticates on the other.
    let key = create_tenant(&url1, "dist").await;
    let other = create_tenant(&url2, "other").await;
    let c2 = Client::from_parts(url2.clone(), key.clone(), "3.1.0-rc.1").unwrap();

    // The user's path: `tiffin session submit --wait` proves, verifies and saves the receipt.
    let tmp = tempfile::tempdir().unwrap();
    let saved = tmp.path().join("echo.receipt");
    let input_hex = hex::encode(b"distributed bonsai");
    let out = cluster
        .tiffin(&["session", "--url", &url1, "--api-key", &key, "submit", "--sample", "echo"])
        .args(["--input-hex", &input_hex, "--wait", "--out"])
        .arg(&saved)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(field(&stdout, "journal (hex):"), input_hex);
    assert!(stdout.contains("verified against image"), "{stdout}");
    let session = SessionId::new(field(&stdout, "session:"));

    // The image is in S3 and the session in PostgreSQL: the other process serves both.
    assert!(c2.has_img(&ECHO.image_id_hex()).await.unwrap(), "the image is seen by both");
    let status = wait(&c2, &session).await;
    assert_eq!(status.status, "SUCCEEDED", "{:?}", status.error_msg);
    let bytes = c2.download(&status.receipt_url.unwrap()).await.unwrap();
    assert_eq!(bytes, std::fs::read(&saved).unwrap(), "the CLI saved the served receipt");
    let receipt: Receipt = decode("receipt", &bytes).unwrap();
    assert_eq!(receipt.journal.bytes, b"distributed bonsai");
    verify(&receipt, ImageId::from_words(ECHO.image_id)).unwrap();
    assert!(receipt.inner.succinct().is_ok(), "a session's receipt is succinct");

    // Composition across processes: the `compose` guest verifies echo's receipt inside the
    // zkVM (SYS_VERIFY_INTEGRITY); the uploaded receipt (named twice: loaded once) is its
    // assumption, which a resolve task discharges, so the final receipt is one succinct
    // receipt that verifies on its own.
    let assumption = c2.upload_receipt(bytes.clone()).await.unwrap();
    c2.upload_img(&COMPOSE.image_id_hex(), COMPOSE.program.to_vec()).await.unwrap();
    let claim = [ImageId::from_words(ECHO.image_id).0.as_bytes(), b"distributed bonsai"].concat();
    let input = c2.upload_input(claim.clone()).await.unwrap();
    let composed = c2
        .create_session(COMPOSE.image_id_hex(), input, vec![assumption.clone(), assumption], false)
        .await
        .unwrap();
    let status = wait(&c2, &composed).await;
    assert_eq!(status.status, "SUCCEEDED", "{:?}", status.error_msg);
    let composed: Receipt =
        decode("receipt", &c2.download(&status.receipt_url.unwrap()).await.unwrap()).unwrap();
    assert_eq!(composed.journal.bytes, claim);
    verify(&composed, ImageId::from_words(COMPOSE.image_id)).unwrap();
    assert!(composed.inner.succinct().is_ok(), "resolved into one succinct receipt");

    // SNARK: this host has no Groth16 backend (no Docker engine), so the exec agent's snark
    // task fails at once with the clear TIFFIN-ZKVM-009 message instead of pretending.
    let snark = c2.create_snark(session.uuid.clone()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let res = loop {
        let r = snark.status(&c2).await.unwrap();
        if r.status != "RUNNING" {
            break r;
        }
        assert!(Instant::now() < deadline, "snark still running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(res.status, "FAILED");
    assert!(res.error_msg.unwrap().contains("TIFFIN-ZKVM-009"));

    // An execute-only session through the SDK on the second process.
    let input = c2.upload_input(b"preflight".to_vec()).await.unwrap();
    let preflight = c2.create_session(ECHO.image_id_hex(), input, vec![], true).await.unwrap();
    assert_eq!(wait(&c2, &preflight).await.status, "SUCCEEDED");
    assert_eq!(preflight.exec_only_journal(&c2).await.unwrap(), b"preflight");

    // Another tenant sees none of it, through either process.
    for url in [&url1, &url2] {
        let stranger = Client::from_parts(url.clone(), other.clone(), "3.1.0-rc.1").unwrap();
        let Err(err) = session.status(&stranger).await else { panic!("other tenant served") };
        assert!(err.to_string().contains("TIFFIN-API-020"), "{err}");
        assert!(stranger.receipt_download(&session).await.is_err());
    }

    // cluster-up's Prometheus config names every agent's metrics listener, and each serves.
    let prom = std::fs::read_to_string(cluster.dir.join("prometheus.yml")).unwrap();
    let targets: Vec<&str> = prom.split('"').skip(1).step_by(2).collect();
    assert_eq!(targets.len(), 2, "the exec agent and one prover: {prom}");
    for t in targets {
        let text = reqwest::get(format!("http://{t}/metrics")).await.unwrap().text().await.unwrap();
        assert!(text.contains("tiffin_agent_tasks_completed_total"), "{t}: {text}");
    }

    // cluster-down stops every process cluster-up started and removes its directory.
    let pids = cluster.pids();
    assert!(pids.len() >= 5, "agents, redis, s3 and postgres: {pids:?}");
    assert!(pids.iter().all(|p| alive(*p)), "all running before cluster-down");
    api1.0.kill().unwrap();
    api2.0.kill().unwrap();
    let _ = (api1.0.wait(), api2.0.wait());
    cluster.down();
    let deadline = Instant::now() + Duration::from_secs(20);
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "still running after cluster-down: {pids:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!cluster.dir.exists(), "cluster-down removes the cluster directory");
}
