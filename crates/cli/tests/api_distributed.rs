//! The Bonsai API of a distributed cluster: a `tiffin api` process and `tiffin agent`
//! processes over a real PostgreSQL, Redis and S3 (s3s-fs), driven by the unmodified
//! `bonsai-sdk` client — a real proof, an execute-only session, and tenant isolation across
//! processes (the tenant tables live in PostgreSQL, not in the API's memory).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bonsai_sdk::non_blocking::{Client, SessionId};
use common::{Proc, Services};
use serde_json::{Value, json};
use tiffin_guests::ECHO;
use tiffin_zkvm::{ImageId, Receipt, decode, verify};

const ADMIN_KEY: &str = "distributed-admin-key";

/// Starts `tiffin api` on a free port and returns it with its URL (read from its stdout).
fn api(s: &Services, name: &str) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiffin"))
        .arg("api")
        .args(["--listen", "127.0.0.1:0", "--po2", "16", "--admin-key", ADMIN_KEY])
        .args(s.backend_args(name))
        .stdin(Stdio::null())
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
async fn bonsai_sdk_against_api_and_agent_processes_on_postgres_redis_s3() {
    let s = Services::start().await;
    let _exec = s.agent("exec-1", "exec,aux,snark");
    let _prover1 = s.agent("prover-1", "prove,join,aux");
    let _prover2 = s.agent("prover-2", "prove,join,aux");
    let (_api1, url1) = api(&s, "api-1");
    let (_api2, url2) = api(&s, "api-2");

    // A tenant created through one API process authenticates on the other.
    let key = create_tenant(&url1, "dist").await;
    let other = create_tenant(&url2, "other").await;
    let c1 = Client::from_parts(url1.clone(), key.clone(), "3.1.0-rc.1").unwrap();
    let c2 = Client::from_parts(url2.clone(), key.clone(), "3.1.0-rc.1").unwrap();

    c1.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    assert!(c2.has_img(&ECHO.image_id_hex()).await.unwrap(), "the image is in S3, seen by both");
    let input = c2.upload_input(b"distributed bonsai".to_vec()).await.unwrap();

    let preflight =
        c1.create_session(ECHO.image_id_hex(), input.clone(), vec![], true).await.unwrap();
    let proof = c1.create_session(ECHO.image_id_hex(), input, vec![], false).await.unwrap();
    assert_eq!(wait(&c2, &preflight).await.status, "SUCCEEDED");
    assert_eq!(preflight.exec_only_journal(&c2).await.unwrap(), b"distributed bonsai");

    let status = wait(&c2, &proof).await;
    assert_eq!(status.status, "SUCCEEDED", "{:?}", status.error_msg);
    let bytes = c2.download(&status.receipt_url.unwrap()).await.unwrap();
    let receipt: Receipt = decode("receipt", &bytes).unwrap();
    assert_eq!(receipt.journal.bytes, b"distributed bonsai");
    verify(&receipt, ImageId::from_words(ECHO.image_id)).unwrap();

    // Another tenant sees none of it, through either process.
    let stranger = Client::from_parts(url2, other, "3.1.0-rc.1").unwrap();
    let err = proof.status(&stranger).await.err().expect("other tenant refused").to_string();
    assert!(err.contains("TIFFIN-API-020"), "{err}");
    assert!(stranger.receipt_download(&proof).await.is_err());
}
