//! Test support (feature `testing`): throwaway **real** servers, so storage is tested against the
//! protocols it runs on in production, never against mocks.
//!
//! - [`RedisServer`]: a `redis-server` on a free loopback port with a temporary dir, no
//!   persistence, `noeviction` (or any policy, to test refusal). Needs `redis-server` on `PATH`
//!   (Debian package `redis-server`, installed by `scripts/setup`).
//! - [`S3Server`]: `s3s-fs` 0.14.1 serving a temporary dir with SigV4 auth and one bucket. Found
//!   via `$TIFFIN_S3S_FS`, else `$HOME/.cache/tiffin-tools/bin/s3s-fs` (installed by
//!   `scripts/setup`, see `scripts/lib/s3s-fs.sh`).
//!
//! Both are killed when dropped. A server that cannot start is an error, never a skipped test.
//!
//! Use from another crate's tests with a dev-dependency
//! `tiffin-storage = { path = "../storage", features = ["testing"] }`:
//! ```no_run
//! # async fn demo() -> tiffin_storage::Result<()> {
//! use tiffin_storage::{open_cold, open_hot, testing::{RedisServer, S3Server}};
//! let redis = RedisServer::start()?;
//! let hot = open_hot(&redis.url(), Some(64 << 20)).await?;
//! let s3 = S3Server::start()?;
//! let cold = open_cold(&s3.store_url())?;
//! # Ok(()) }
//! ```

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{Error, Result};

/// How long a server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A free TCP port on 127.0.0.1 (bound and released; a race with other processes is possible,
/// so the servers below retry on another port if theirs fails to start).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::TestServer(format!("cannot bind a free port on 127.0.0.1: {e}")))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| Error::TestServer(e.to_string()))
}

fn temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| Error::TestServer(format!("cannot create a temporary directory: {e}")))
}

/// Kills and reaps a child process.
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until `ready` succeeds, failing early if the child exits.
fn wait_ready(
    child: &mut Child,
    what: &str,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(Error::TestServer(format!(
                "{what} exited at start ({status}): {}",
                log.trim()
            )));
        }
        if ready() {
            return Ok(());
        }
        if start.elapsed() > START_TIMEOUT {
            stop(child);
            let log = std::fs::read_to_string(log).unwrap_or_default();
            return Err(Error::TestServer(format!(
                "{what} did not accept connections within {START_TIMEOUT:?}: {}",
                log.trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A throwaway `redis-server` on 127.0.0.1, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    policy: String,
    tls: Option<RedisTls>,
    _dir: tempfile::TempDir,
}

/// The certificate, key and CA (PEM files) of a Redis serving TLS only, and the password it
/// asks for (`requirepass`), if any.
#[derive(Debug, Clone)]
pub struct RedisTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
    pub password: Option<String>,
}

impl RedisServer {
    /// Starts a server with `maxmemory-policy noeviction` (what Tiffin requires).
    pub fn start() -> Result<Self> {
        Self::start_with_policy("noeviction")
    }

    /// Starts a server with the given `maxmemory-policy` (e.g. `allkeys-lru`, to test refusal).
    pub fn start_with_policy(policy: &str) -> Result<Self> {
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(policy) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Starts a `noeviction` server that speaks only TLS (`rediss://`), with `tls`'s
    /// certificate; clients need no certificate of their own.
    pub fn start_tls(tls: RedisTls) -> Result<Self> {
        let dir = temp_dir("tiffin-redis-")?;
        let port = free_port()?;
        let child = Self::spawn("noeviction", port, dir.path(), Some(&tls))?;
        Ok(Self { child, port, policy: "noeviction".into(), tls: Some(tls), _dir: dir })
    }

    fn try_start(policy: &str) -> Result<Self> {
        let dir = temp_dir("tiffin-redis-")?;
        let port = free_port()?;
        let child = Self::spawn(policy, port, dir.path(), None)?;
        Ok(Self { child, port, policy: policy.into(), tls: None, _dir: dir })
    }

    /// Stops the server (SIGKILL: what it held in memory is lost, as with a crashed Redis
    /// without persistence), waits `down`, and starts it again on the same port.
    pub fn restart(&mut self, down: Duration) -> Result<()> {
        stop(&mut self.child);
        std::thread::sleep(down);
        self.child = Self::spawn(&self.policy, self.port, self._dir.path(), self.tls.as_ref())?;
        Ok(())
    }

    fn spawn(policy: &str, port: u16, dir: &Path, tls: Option<&RedisTls>) -> Result<Child> {
        let log = dir.join("redis.log");
        let mut command = Command::new("redis-server");
        match tls {
            None => command.args(["--port", &port.to_string()]),
            Some(t) => command
                .args(["--port", "0", "--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
                .arg("--tls-cert-file")
                .arg(&t.cert)
                .arg("--tls-key-file")
                .arg(&t.key)
                .arg("--tls-ca-cert-file")
                .arg(&t.ca)
                .args(t.password.iter().flat_map(|p| ["--requirepass", p.as_str()])),
        };
        let mut child = command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--maxmemory-policy", policy, "--protected-mode", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                Error::TestServer(format!(
                    "cannot run redis-server ({e}); install it with scripts/setup (Debian package redis-server)"
                ))
            })?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listening = || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
        wait_ready(&mut child, "redis-server", &log, || {
            if tls.is_some() { listening() } else { ping(port) }
        })?;
        Ok(child)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, `redis://127.0.0.1:PORT/` (`rediss://` when it serves TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// Its URL with a key namespace, `redis://127.0.0.1:PORT/?namespace=NS`.
    pub fn url_with_namespace(&self, namespace: &str) -> String {
        format!("{}?namespace={namespace}", self.url())
    }
}

/// Whether a Redis server answers PING on `port`.
fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// The s3s-fs binary: `$TIFFIN_S3S_FS`, else `$HOME/.cache/tiffin-tools/bin/s3s-fs`.
pub fn s3s_fs_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("TIFFIN_S3S_FS") {
        Some(p) => PathBuf::from(p),
        None => {
            let home = std::env::var_os("HOME")
                .ok_or_else(|| Error::TestServer("HOME is not set".into()))?;
            PathBuf::from(home).join(".cache/tiffin-tools/bin/s3s-fs")
        }
    };
    if !path.is_file() {
        return Err(Error::TestServer(format!(
            "s3s-fs not found at {}; run scripts/setup (it calls ensure_s3s_fs from scripts/lib/s3s-fs.sh) \
             or set TIFFIN_S3S_FS to the binary",
            path.display()
        )));
    }
    Ok(path)
}

/// A throwaway S3-protocol server (`s3s-fs`) on 127.0.0.1 with SigV4 auth, killed on drop.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl S3Server {
    /// Access key the server accepts.
    pub const ACCESS_KEY: &'static str = "tiffin-test-access";
    /// Secret key the server accepts.
    pub const SECRET_KEY: &'static str = "tiffin-test-secret-0123456789";
    /// The bucket created at start.
    pub const BUCKET: &'static str = "tiffin-test";
    /// The region clients should sign for (s3s-fs accepts any).
    pub const REGION: &'static str = "us-east-1";

    /// Starts a server with bucket [`S3Server::BUCKET`].
    pub fn start() -> Result<Self> {
        let binary = s3s_fs_binary()?;
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(&binary) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn try_start(binary: &Path) -> Result<Self> {
        let dir = temp_dir("tiffin-s3-")?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)
            .map_err(|e| Error::TestServer(format!("mkdir {}: {e}", data.display())))?;
        let port = free_port()?;
        let child = Self::spawn(binary, port, dir.path())?;
        let server = Self { child, port, dir };
        server.create_bucket(Self::BUCKET)?;
        Ok(server)
    }

    /// Stops the server (SIGKILL), waits `down`, and starts it again on the same port and
    /// data (s3s-fs keeps objects as files, so nothing stored is lost).
    pub fn restart(&mut self, down: Duration) -> Result<()> {
        stop(&mut self.child);
        std::thread::sleep(down);
        self.child = Self::spawn(&s3s_fs_binary()?, self.port, self.dir.path())?;
        Ok(())
    }

    fn spawn(binary: &Path, port: u16, dir: &Path) -> Result<Child> {
        let data = dir.join("data");
        let log = dir.join("s3s-fs.log");
        let log_file = std::fs::File::create(&log).map_err(|e| Error::TestServer(e.to_string()))?;
        let log_err = log_file.try_clone().map_err(|e| Error::TestServer(e.to_string()))?;
        let mut child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", Self::ACCESS_KEY, "--secret-key", Self::SECRET_KEY])
            .arg(&data)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| {
                Error::TestServer(format!(
                    "cannot run {}: {e}; run scripts/setup",
                    binary.display()
                ))
            })?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        wait_ready(&mut child, "s3s-fs", &log, || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        })?;
        Ok(child)
    }

    /// Creates another bucket (s3s-fs keeps each bucket as a subdirectory of its root).
    pub fn create_bucket(&self, bucket: &str) -> Result<()> {
        let path = self.dir.path().join("data").join(bucket);
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::TestServer(format!("mkdir {}: {e}", path.display())))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id (to freeze it with SIGSTOP, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A cold-store URL for [`S3Server::BUCKET`] with the right keys.
    pub fn store_url(&self) -> String {
        self.store_url_with(Self::BUCKET, Self::SECRET_KEY)
    }

    /// A cold-store URL for `bucket` signing with `secret_key` (pass a wrong one to test refusal).
    pub fn store_url_with(&self, bucket: &str, secret_key: &str) -> String {
        format!(
            "s3://{bucket}?endpoint={}&region={}&access_key_id={}&secret_access_key={secret_key}",
            self.endpoint(),
            Self::REGION,
            Self::ACCESS_KEY
        )
    }

    /// The directory the server stores buckets in.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
