//! A cluster across test hosts: `scripts/hosts-up` puts PostgreSQL, Redis and S3 on a `db`
//! host, `tiffin api` on an `api` host and agents on agent hosts `h1` … `hN`, each a network
//! namespace on a private subnet (scripts/lib/hosts.sh). The test watches from this machine's
//! own namespace through the bridge, and cuts links with `scripts/hosts-link`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Hosts started by `scripts/hosts-up`; dropping them runs `scripts/hosts-down` (so a failing
/// test leaves no namespace, link or server behind).
pub struct Hosts {
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
    _tmp: tempfile::TempDir,
}

/// Why hosts in network namespaces cannot run here, if they cannot: they need root and a
/// working `ip netns`.
pub fn unavailable() -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self belongs to this process's effective user
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        return Some("not root: network namespaces need root".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`ip netns` fails: {}", String::from_utf8_lossy(&out.stderr))),
        Err(e) => Some(format!("no `ip` command (iproute2; run scripts/setup): {e}")),
    }
}

impl Hosts {
    /// `scripts/hosts-up AGENTS` with these variables (e.g. lease settings) in its environment,
    /// or `None` after printing why hosts cannot run here (the test then skips).
    pub fn up_or_skip(agents: u32, env: &[(&str, &str)]) -> Option<Self> {
        if let Some(why) = unavailable() {
            eprintln!("SKIPPED: hosts in network namespaces unavailable: {why}");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hosts");
        let mut cmd = script("hosts-up", &dir);
        cmd.arg(agents.to_string()).envs(env.iter().copied());
        let mut hosts = Self { dir, env: HashMap::new(), _tmp: tmp };
        super::ok(cmd); // on failure, Drop runs hosts-down
        let text = std::fs::read_to_string(hosts.dir.join("env")).expect("hosts-up writes env");
        hosts.env = text
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        Some(hosts)
    }

    pub fn var(&self, key: &str) -> &str {
        self.env.get(key).unwrap_or_else(|| panic!("hosts env lacks {key}: {:?}", self.env))
    }

    /// `scripts/hosts-link ARGS` (cut, heal, block, unblock).
    pub fn link(&self, args: &[&str]) {
        let mut cmd = script("hosts-link", &self.dir);
        cmd.args(args);
        super::ok(cmd);
    }

    /// The log of a role (`api`, `agent-prove-h2`, …).
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }

    /// The process id of a role.
    pub fn pid(&self, name: &str) -> u32 {
        let path = self.dir.join("pids").join(format!("{name}.pid"));
        std::fs::read_to_string(&path).unwrap().trim().parse().unwrap()
    }

    /// The contents of the secret file that `key` names.
    pub fn secret(&self, key: &str) -> String {
        std::fs::read_to_string(self.var(key)).unwrap().trim().to_string()
    }

    /// The CA that signed every server's certificate.
    pub fn ca(&self) -> PathBuf {
        PathBuf::from(self.var("TIFFIN_CA_FILE"))
    }

    /// An HTTPS client that trusts the hosts' CA only.
    pub fn http(&self, timeout: std::time::Duration) -> reqwest::Client {
        let ca = self.ca();
        tiffin_tls::reqwest_client(Some(&ca)).unwrap().timeout(timeout).build().unwrap()
    }

    /// A cluster handle on the hosts' database and stores, from this machine, over TLS
    /// (PostgreSQL verify-full, rediss, https S3) with the secrets from their files.
    pub async fn cluster(&self) -> tiffin_workflow::Cluster {
        use tiffin_taskdb::{Config, PostgresTaskDb, TaskDb};
        let ca = self.ca();
        let url = self.secret("TIFFIN_DATABASE_URL_FILE");
        let url = format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display());
        let db: std::sync::Arc<dyn TaskDb> =
            std::sync::Arc::new(PostgresTaskDb::connect(&url, Config::default()).await.unwrap());
        let mut cfg = tiffin_storage::StoreConfig::new(self.dir.join("data/observer"));
        cfg.store = Some(self.var("TIFFIN_STORE").to_string());
        cfg.hot_store = Some(self.var("TIFFIN_HOT_STORE").to_string());
        cfg.ca_file = Some(ca);
        cfg.secrets.redis_password = Some(self.secret("TIFFIN_REDIS_PASSWORD_FILE"));
        cfg.secrets.s3_access_key_id = Some(self.secret("TIFFIN_S3_ACCESS_KEY_FILE"));
        cfg.secrets.s3_secret_access_key = Some(self.secret("TIFFIN_S3_SECRET_KEY_FILE"));
        tiffin_workflow::Cluster::new(db, cfg.open().await.unwrap())
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // hosts-down deletes the directory: keep the roles' logs of a failed test
            let kept =
                std::env::temp_dir().join(format!("tiffin-hosts-logs-{}", std::process::id()));
            let copied =
                Command::new("cp").arg("-r").arg(self.dir.join("logs")).arg(&kept).status();
            if copied.is_ok_and(|s| s.success()) {
                eprintln!("the hosts' logs: {}", kept.display());
            }
        }
        let _ = script("hosts-down", &self.dir).output();
    }
}

/// One of the repository's scripts on the hosts of `dir`, starting the binary under test.
fn script(name: &str, dir: &Path) -> Command {
    let mut cmd = super::script(name);
    cmd.env("TIFFIN_HOSTS_DIR", dir);
    cmd.env("TIFFIN_HOSTS_OWNER_PID", std::process::id().to_string());
    cmd
}
