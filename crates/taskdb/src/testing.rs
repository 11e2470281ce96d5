//! Test support (cargo feature `testing`): a real, throwaway PostgreSQL server.
//!
//! Other crates use it from their tests:
//!
//! ```ignore
//! let url = tiffin_taskdb::testing::fresh_database_url().await; // new database per call
//! let db = tiffin_taskdb::PostgresTaskDb::connect(&url, Default::default()).await?;
//! ```
//!
//! One server per test process ([`shared`]) is started on first use: binaries from
//! `TIFFIN_PG_BIN` or `/usr/lib/postgresql/*/bin`, `initdb` into a temp dir, a free 127.0.0.1
//! port, `fsync=off` for speed ([`Durability::Off`]), run as the `postgres` OS user when we are
//! root. [`TestPostgres::start_with`] starts one with PostgreSQL's default durability instead,
//! which [`TestPostgres::crash`] and [`TestPostgres::restart`] can kill and bring back. A watchdog
//! process stops it and deletes the data dir when the test process exits. If
//! `TIFFIN_TEST_DATABASE_URL` is set, that server replaces the fsync-off one (databases are
//! created on it).
//! If PostgreSQL cannot start, this panics with the reason: tests must fail, never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// How a test server treats commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync`, `synchronous_commit` and `full_page_writes` off: fast, and a crash of the server
    /// may lose acknowledged commits. What the conformance suite runs on.
    Off,
    /// PostgreSQL's defaults: a commit is acknowledged only after its WAL is flushed to disk.
    Default,
}

impl Durability {
    fn server_options(self) -> &'static str {
        match self {
            Durability::Off => "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            Durability::Default => "-c fsync=on -c synchronous_commit=on -c full_page_writes=on",
        }
    }
}

/// A running throwaway PostgreSQL server (or an external one from `TIFFIN_TEST_DATABASE_URL`).
#[derive(Debug)]
pub struct TestPostgres {
    /// `postgres://…/` URL of the server's `postgres` database.
    admin_url: String,
    /// What we need to stop and start it when we started the server ourselves.
    owned: Option<Owned>,
}

/// A server this process started: its directory, binaries and start options.
#[derive(Debug)]
struct Owned {
    dir: PathBuf,
    bin: PathBuf,
    root: bool,
    opts: String,
}

impl Owned {
    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().to_string()
    }

    fn log(&self) -> String {
        self.dir.join("log").to_string_lossy().to_string()
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let data = self.data();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        run(&self.bin.join("pg_ctl"), self.root, &all)
    }

    fn start(&self) -> Result<(), String> {
        let log = self.log();
        self.pg_ctl(&["-o", &self.opts, "-l", &log, "-w", "-t", "60", "start"]).map_err(|e| {
            format!("{e}\nserver log:\n{}", std::fs::read_to_string(&log).unwrap_or_default())
        })
    }
}

fn find_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("TIFFIN_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no /usr/lib/postgresql ({e}); install PostgreSQL (scripts/setup) or set TIFFIN_PG_BIN"))?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop().ok_or_else(|| {
        "no initdb under /usr/lib/postgresql/*/bin; install PostgreSQL or set TIFFIN_PG_BIN".into()
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run(bin: &Path, as_postgres: bool, args: &[&str]) -> Result<(), String> {
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {:?} failed: {}{}",
            bin.display(),
            args,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Copies a certificate and key into `dir` (owned by `postgres` when we are root: the server
/// refuses a key that others may read, or that it does not own) and names them in options.
fn tls_files(dir: &Path, cert: &Path, key: &Path, root: bool) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let (to_cert, to_key) = (dir.join("server.crt"), dir.join("server.key"));
    for (from, to) in [(cert, &to_cert), (key, &to_key)] {
        std::fs::copy(from, to).map_err(|e| format!("copying {}: {e}", from.display()))?;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("chmod {}: {e}", to.display()))?;
        if root {
            std::os::unix::fs::chown(to, Some(id_of("-u")?), Some(id_of("-g")?))
                .map_err(|e| format!("chown {}: {e}", to.display()))?;
        }
    }
    Ok(format!(
        " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
        to_cert.display(),
        to_key.display()
    ))
}

fn id_of(flag: &str) -> Result<u32, String> {
    let o = Command::new("id").args([flag, "postgres"]).output().map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .map_err(|_| "no `postgres` OS user; install PostgreSQL".to_string())
}

impl TestPostgres {
    /// Starts a new server with [`Durability::Off`]. Prefer [`shared`]; this one stops when
    /// dropped.
    pub fn start() -> Result<Self, String> {
        Self::start_with(Durability::Off)
    }

    /// Starts a new server with the given durability; it stops when dropped. With
    /// `TIFFIN_TEST_DATABASE_URL` set (`scripts/test` sets it to one fsync-off server for the
    /// whole run), [`Durability::Off`] uses that server instead; [`Durability::Default`] always
    /// starts its own, which [`Self::crash`] may kill without disturbing other tests.
    pub fn start_with(durability: Durability) -> Result<Self, String> {
        if let (Durability::Off, Ok(url)) = (durability, std::env::var("TIFFIN_TEST_DATABASE_URL"))
        {
            return Ok(TestPostgres { admin_url: url, owned: None });
        }
        Self::start_owned(durability, None)
    }

    /// Starts a new server (its own, whatever `TIFFIN_TEST_DATABASE_URL` says) with
    /// `ssl=on`, presenting the certificate `cert` with the key `key` (PEM files, copied into
    /// the server's directory). Plain connections are still accepted; a client asks for TLS
    /// with `sslmode`.
    pub fn start_tls(cert: &Path, key: &Path) -> Result<Self, String> {
        Self::start_owned(Durability::Off, Some((cert, key)))
    }

    fn start_owned(durability: Durability, tls: Option<(&Path, &Path)>) -> Result<Self, String> {
        let bin = find_bin_dir()?;
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("tiffin-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        if root {
            std::os::unix::fs::chown(&dir, Some(id_of("-u")?), Some(id_of("-g")?))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let data_s = data.to_string_lossy().to_string();
        run(
            &bin.join("initdb"),
            root,
            &["-D", &data_s, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let mut opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} {} \
             -c max_connections=400",
            dir.display(),
            durability.server_options()
        );
        if let Some((cert, key)) = tls {
            opts.push_str(&tls_files(&dir, cert, key, root)?);
        }
        let owned = Owned { dir: dir.clone(), bin: bin.clone(), root, opts };
        owned.start()?;
        // Watchdog: stop the server and delete its files when this process exits, even if the
        // server is held in a static that is never dropped.
        let pg_ctl = bin.join("pg_ctl");
        let stop = if root {
            format!(
                "runuser -u postgres -- '{}' -D '{}' stop -m immediate",
                pg_ctl.display(),
                data_s
            )
        } else {
            format!("'{}' -D '{}' stop -m immediate", pg_ctl.display(), data_s)
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = dir.display()
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        Ok(TestPostgres {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            owned: Some(owned),
        })
    }

    /// Kills the server as a crash would: an immediate shutdown, no checkpoint, so what it
    /// acknowledged must come back from the WAL. Only for a server this process started.
    pub fn crash(&self) -> Result<(), String> {
        self.owned()?.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "60"])
    }

    /// Starts the server again on the same data directory and port (after [`Self::crash`]);
    /// returns once it accepts connections, i.e. after crash recovery.
    pub fn restart(&self) -> Result<(), String> {
        self.owned()?.start()
    }

    fn owned(&self) -> Result<&Owned, String> {
        self.owned.as_ref().ok_or_else(|| {
            "this test server was not started here (TIFFIN_TEST_DATABASE_URL); it cannot be \
             crashed or restarted"
                .to_string()
        })
    }

    /// URL of the server's admin (`postgres`) database.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// Creates a new, empty database and returns its URL, so each test is independent.
    pub async fn create_database(&self) -> String {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&self.admin_url).await.unwrap_or_else(|e| {
            panic!("cannot connect to test PostgreSQL at {}: {e}", self.admin_url)
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = conn.close().await;
        match self.admin_url.rfind('/') {
            Some(i) if self.admin_url[..i].contains("://") && self.admin_url[i..].len() > 1 => {
                let (base, rest) = self.admin_url.split_at(i);
                let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
                format!("{base}/{name}{query}")
            }
            _ => format!("{}/{name}", self.admin_url.trim_end_matches('/')),
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some(owned) = self.owned.take() {
            let _ = owned.pg_ctl(&["stop", "-m", "immediate"]);
            let _ = std::fs::remove_dir_all(&owned.dir);
        }
    }
}

/// The process-wide test server, started on first use. Panics (failing the test) with the reason
/// if PostgreSQL cannot start.
pub fn shared() -> &'static TestPostgres {
    static SERVER: OnceLock<TestPostgres> = OnceLock::new();
    SERVER.get_or_init(|| {
        TestPostgres::start().unwrap_or_else(|e| {
            panic!("TIFFIN-TASKDB-040: could not start a test PostgreSQL server: {e}")
        })
    })
}

/// The process-wide test server with [`Durability::Default`] (for benchmarks), started on first
/// use. Panics with the reason if PostgreSQL cannot start.
pub fn shared_durable() -> &'static TestPostgres {
    static SERVER: OnceLock<TestPostgres> = OnceLock::new();
    SERVER.get_or_init(|| {
        TestPostgres::start_with(Durability::Default).unwrap_or_else(|e| {
            panic!("TIFFIN-TASKDB-040: could not start a test PostgreSQL server: {e}")
        })
    })
}

/// A fresh database on the [`shared`] server.
pub async fn fresh_database_url() -> String {
    fresh_database_url_with(Durability::Off).await
}

/// A fresh database on the shared server of the given durability ([`shared`] or
/// [`shared_durable`]).
pub async fn fresh_database_url_with(durability: Durability) -> String {
    let server = tokio::task::spawn_blocking(move || match durability {
        Durability::Off => shared(),
        Durability::Default => shared_durable(),
    })
    .await
    .expect("test PostgreSQL start panicked");
    server.create_database().await
}
