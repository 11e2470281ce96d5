//! Restarts of Tiffin's own server processes: `tiffin api` in front of the distributed
//! cluster, and the embedded `tiffin up`, each killed (SIGKILL) mid-session and started again.
//! The session must end SUCCEEDED with a verified receipt, every task completed once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bonsai_sdk::non_blocking::{Client, SessionId};
use serde_json::{Value, json};
use tiffin_guests::{SPIN, spin_input};
use tiffin_taskdb::{Config, SqliteTaskDb, TaskDb};
use tiffin_zkvm::{ImageId, Receipt, decode, verify};

use crate::common::{Proc, start_up, up_command};
use crate::rig::{Rig, completions};

const ADMIN_KEY: &str = "chaos-admin-key-0123456789";

/// `tiffin api` on `port`, over the rig's services; returns once it answers `/health`.
async fn api(rig: &Rig, port: u16) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_tiffin"))
        .args(["api", "--listen", &format!("127.0.0.1:{port}"), "--po2", "14"])
        .args(["--admin-key", ADMIN_KEY])
        .args(rig.s.backend_args("api"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tiffin api");
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("http://127.0.0.1:{port}/health")).await.is_err() {
        assert!(Instant::now() < deadline, "tiffin api never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    proc
}

/// Uploads spin and a four-segment input and starts a composite session; returns its id.
async fn session(url: &str, key: &str) -> String {
    let client =
        Client::from_parts(url.into(), key.into(), tiffin_zkvm::RISC0_ZKVM_VERSION).unwrap();
    client.upload_img(&SPIN.image_id_hex(), SPIN.program.to_vec()).await.unwrap();
    let input = client.upload_input(spin_input(10_000)).await.unwrap();
    let res = reqwest::Client::new()
        .post(format!("{url}/sessions/create"))
        .header("x-api-key", key)
        .json(&json!({ "img": SPIN.image_id_hex(), "input": input, "receipt_kind": "composite" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["uuid"].as_str().unwrap().to_string()
}

/// Polls the session through `url` until it ends; returns its status and the verified receipt.
async fn finished(url: &str, key: &str, id: &str) -> (String, Option<Receipt>) {
    let client =
        Client::from_parts(url.into(), key.into(), tiffin_zkvm::RISC0_ZKVM_VERSION).unwrap();
    let session = SessionId::new(id.into());
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        let s = session.status(&client).await.unwrap();
        if s.status != "RUNNING" {
            break s;
        }
        assert!(Instant::now() < deadline, "session still running: {:?}", s.state);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let receipt = match &status.receipt_url {
        Some(u) => Some(decode::<Receipt>("receipt", &client.download(u).await.unwrap()).unwrap()),
        None => None,
    };
    (status.status, receipt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn the_api_restarted_mid_session() {
    let mut rig = Rig::start(false).await;
    rig.standard_agents();
    let port = tiffin_storage::testing::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let first = api(&rig, port).await;
    let res = reqwest::Client::new()
        .post(format!("{url}/admin/tenants"))
        .header("x-admin-key", ADMIN_KEY)
        .json(&json!({ "name": "chaos" }))
        .send()
        .await
        .unwrap();
    let key = res.json::<Value>().await.unwrap()["key"].as_str().unwrap().to_string();
    let id = session(&url, &key).await;
    let job = id.parse().unwrap();
    rig.leased(job, "prove", "prover").await;
    let fault = rig.fault(&[job]).await;
    let killed = Instant::now();
    drop(first); // SIGKILL
    let _second = api(&rig, port).await;
    // Recovered when the API answers again (the agents never noticed).
    let back = killed.elapsed();
    let (status, receipt) = finished(&url, &key, &id).await;
    assert_eq!(status, "SUCCEEDED");
    verify(&receipt.unwrap(), ImageId::from_words(SPIN.image_id)).unwrap();
    let report = rig.report("tiffin api killed mid-session, restarted", &[job], fault).await;
    crate::rig::Report { recovery: back, ..report }.check();
}

/// The embedded cluster resumes a session after `tiffin up` is killed: the dead process's
/// leases expire (30 s) and the new one's agents redo those tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn tiffin_up_restarted_mid_session() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("up.log");
    let first = up_logged(&data, &log, true);
    let id = session(&first.url, &first.key).await;
    let job = id.parse().unwrap();
    let db = SqliteTaskDb::open(data.join("taskdb.sqlite"), Config::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !db.tasks(job).await.unwrap().iter().any(|t| t.kind == "prove" && t.agent.is_some()) {
        assert!(Instant::now() < deadline, "no segment was ever claimed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = Instant::now();
    let key = first.key.clone();
    drop(first); // SIGKILL: its in-process agents die with their leases held
    let second = up_logged(&data, &log, false);
    let (status, receipt) = finished(&second.url, &key, &id).await;
    let recovery = killed.elapsed();
    assert_eq!(status, "SUCCEEDED");
    verify(&receipt.unwrap(), ImageId::from_words(SPIN.image_id)).unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    let done = completions(&log);
    let tasks = db.tasks(job).await.unwrap();
    let once = tasks.iter().all(|t| done.get(&(id.clone(), t.key.clone())) == Some(&1));
    let scenario = "tiffin up killed mid-session, restarted on its data dir";
    let report = crate::rig::Report::one_session(scenario, &log, usize::from(!once), recovery);
    report.check();
}

/// `tiffin up` (one prover) on `data`, logging at info level to `log` (appended).
fn up_logged(data: &Path, log: &Path, first: bool) -> crate::common::Up {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let mut cmd = up_command(data, 14, 1, &[]);
    cmd.env("TIFFIN_LOG", "info").stderr(file);
    start_up(cmd, first)
}

/// The hot store's disk fills up (something else takes it) as a session starts: the executor
/// waits for room instead of failing, and the session succeeds once the disk is freed. The hot
/// store is an 8 MiB tmpfs (needs permission to mount: root, as CI runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn the_hot_store_disk_full_then_freed() {
    let dir = tempfile::tempdir().unwrap();
    let hot = dir.path().join("hot");
    std::fs::create_dir_all(&hot).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&hot)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a tmpfs (run as root)");
    let _unmount = Unmount(hot.clone());
    let (data, log) = (dir.path().join("data"), dir.path().join("up.log"));
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
    let mut cmd = up_command(&data, 14, 1, &["--hot-store", hot.to_str().unwrap()]);
    cmd.env("TIFFIN_LOG", "info").stderr(file);
    let up = start_up(cmd, true);
    // Another writer takes every byte left on the hot store's disk.
    let filler = hot.join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        while f.write_all(&[7u8; 64 << 10]).is_ok() {}
    }
    let id = session(&up.url, &up.key).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let client =
        Client::from_parts(up.url.clone(), up.key.clone(), tiffin_zkvm::RISC0_ZKVM_VERSION);
    let status = SessionId::new(id.clone()).status(&client.unwrap()).await.unwrap();
    assert_eq!(status.status, "RUNNING", "the session waits for room: {:?}", status.error_msg);
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let (status, receipt) = finished(&up.url, &up.key, &id).await;
    assert_eq!(status, "SUCCEEDED");
    verify(&receipt.unwrap(), ImageId::from_words(SPIN.image_id)).unwrap();
    let scenario = "hot store's disk full for 5 s as a session starts, then freed";
    let log = std::fs::read_to_string(&log).unwrap();
    let report = crate::rig::Report::one_session(scenario, &log, 0, freed.elapsed());
    drop(up);
    report.check();
}

/// Unmounts a tmpfs when dropped (also when the test fails).
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
