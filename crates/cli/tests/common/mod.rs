//! What the multi-process tests share: throwaway PostgreSQL/Redis/S3 services on loopback and
//! `tiffin` child processes that die with the test.

#![allow(dead_code)]

pub mod hosts;

use std::borrow::BorrowMut;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use tiffin_storage::testing::{RedisServer, S3Server};

/// A child process killed (SIGKILL) and reaped when dropped, so a failing test leaks nothing.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh database, Redis and S3 server, and a scratch directory for the processes.
pub struct Services {
    pub database_url: String,
    pub redis: RedisServer,
    pub s3: S3Server,
    pub dir: tempfile::TempDir,
}

impl Services {
    pub async fn start() -> Self {
        Self {
            database_url: tiffin_taskdb::testing::fresh_database_url().await,
            redis: RedisServer::start().expect("redis-server starts (run scripts/setup)"),
            s3: S3Server::start().expect("s3s-fs starts (run scripts/setup)"),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The flags that point a `tiffin` process at these services.
    pub fn backend_args(&self, name: &str) -> Vec<String> {
        vec![
            "--database-url".into(),
            self.database_url.clone(),
            "--store".into(),
            self.s3.store_url(),
            "--hot-store".into(),
            self.redis.url(),
            "--data-dir".into(),
            self.dir.path().join(name).display().to_string(),
        ]
    }

    /// An embedded-API handle on the services (tests submit and watch jobs through it).
    pub async fn cluster(&self) -> tiffin_workflow::Cluster {
        use tiffin_taskdb::{Config, PostgresTaskDb, TaskDb};
        let db: std::sync::Arc<dyn TaskDb> = std::sync::Arc::new(
            PostgresTaskDb::connect(&self.database_url, Config::default()).await.unwrap(),
        );
        let mut cfg = tiffin_storage::StoreConfig::new(self.dir.path());
        cfg.store = Some(self.s3.store_url());
        cfg.hot_store = Some(self.redis.url());
        tiffin_workflow::Cluster::new(db, cfg.open().await.unwrap())
    }

    /// Starts a `tiffin agent` serving `kinds` with short leases (6 s) and 1 s heartbeats, so
    /// a killed agent's task is redone quickly.
    pub fn agent(&self, name: &str, kinds: &str) -> Proc {
        let child = Command::new(env!("CARGO_BIN_EXE_tiffin"))
            .arg("agent")
            .args(["--id", name, "--kinds", kinds])
            .args(["--lease-secs", "6", "--heartbeat-secs", "1", "--housekeeping-secs", "1"])
            .args(self.backend_args(name))
            .env("TIFFIN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tiffin agent");
        Proc(child)
    }
}

/// The value printed after `label` on one of `out`'s lines (the CLI's `label: value` output).
pub fn field(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{out}"))
        .trim()
        .to_string()
}

/// A `tiffin` command with these arguments (stdin closed, no admin key inherited).
pub fn tiffin(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tiffin"));
    cmd.args(args).stdin(Stdio::null()).env_remove("TIFFIN_ADMIN_KEY");
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// One of the repository's scripts, told to run the `tiffin` binary under test (`TIFFIN_BIN`:
/// a script the tests run then neither checks the setup nor builds), stdin closed.
pub fn script(name: &str) -> Command {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut cmd = Command::new(root.join("scripts").join(name));
    cmd.env("TIFFIN_BIN", env!("CARGO_BIN_EXE_tiffin")).stdin(Stdio::null());
    cmd
}

/// Runs `cmd`, asserts it succeeded, returns its stdout.
pub fn ok(mut cmd: impl BorrowMut<Command>) -> String {
    let cmd = cmd.borrow_mut();
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed:\n{}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// Runs `cmd`, asserts it failed, returns its stderr.
pub fn fails(mut cmd: impl BorrowMut<Command>) -> String {
    let cmd = cmd.borrow_mut();
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} should fail:\n{}", stdout(&out));
    stderr(&out)
}

/// `tiffin up` in the background (segments of 2^`po2` cycles, `agents` proving agents besides
/// the executor): its URL and the default tenant's key from its stdout.
pub struct Up {
    pub proc: Proc,
    pub url: String,
    pub key: String,
    /// Where `--metrics-listen` serves, when given.
    pub metrics_url: Option<String>,
}

pub fn up(data: &Path, po2: u32, agents: u32) -> Up {
    up_with(data, po2, agents, &[])
}

/// [`up`] with more flags.
pub fn up_with(data: &Path, po2: u32, agents: u32, extra: &[&str]) -> Up {
    start_up(up_command(data, po2, agents, extra), true)
}

/// The `tiffin up` command [`up_with`] runs (stderr inherited; override it to keep a log).
pub fn up_command(data: &Path, po2: u32, agents: u32, extra: &[&str]) -> Command {
    let (po2, agents) = (po2.to_string(), agents.to_string());
    let mut cmd = tiffin(&["up", "--listen", "127.0.0.1:0", "--agents", &agents, "--po2", &po2]);
    cmd.args(extra).arg("--data-dir").arg(data).stdout(Stdio::piped()).stderr(Stdio::inherit());
    cmd
}

/// Spawns a `tiffin up` command and reads its URL and, on a first start (`new_key`), the key
/// of the default tenant it creates from its stdout (`key` stays empty otherwise).
pub fn start_up(mut cmd: Command, new_key: bool) -> Up {
    let mut child = cmd.spawn().expect("spawn tiffin up");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut key, mut metrics_url) = (None, None, None);
    if !new_key {
        key = Some(String::new());
    }
    while url.is_none() || key.is_none() {
        let line = lines.next().expect("tiffin up exited early").unwrap();
        if let Some(u) = line.strip_prefix("Tiffin API listening on ") {
            url = Some(u.trim().to_string());
        }
        if let Some(k) = line.trim().strip_prefix("export BONSAI_API_KEY=") {
            key = Some(k.to_string());
        }
        metrics_url = metrics_url.or_else(|| metrics_line(&line));
    }
    std::thread::spawn(move || for _ in lines {});
    Up { proc: Proc(child), url: url.unwrap(), key: key.unwrap(), metrics_url }
}

/// The URL in a `metrics on URL` line (what `--metrics-listen` prints).
pub fn metrics_line(line: &str) -> Option<String> {
    line.strip_prefix("metrics on ").map(|u| u.trim().to_string())
}

/// GETs `url` until `done` accepts the body (10 s at most; counters of a task that just
/// finished are recorded a moment after its session reads as done); returns the last body.
pub fn scrape_until(url: &str, done: impl Fn(&str) -> bool) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let body = rt.block_on(async {
            let res = reqwest::get(url).await.unwrap();
            assert_eq!(res.status(), 200, "GET {url}");
            res.text().await.unwrap()
        });
        if done(&body) || std::time::Instant::now() > deadline {
            return body;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
