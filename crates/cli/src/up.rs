//! `tiffin up` (the whole cluster in one process: API + agents + housekeeper, embedded
//! backends under `--data-dir` by default) and `tiffin api` (the API alone, in front of a
//! distributed cluster whose agents run elsewhere).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use tiffin_api::server::Server;
use tiffin_api::tenants::TenantDefaults;
use tiffin_api::{ApiConfig, AppState, TenantStore, hash_key};
use tiffin_storage::parse_byte_size;
use tiffin_workflow::handlers::Context;
use tiffin_workflow::{AgentConfig, Cluster, Crew, Role, Roster};

use crate::backend::BackendArgs;
use crate::limits::LimitArgs;

#[derive(Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub tls: crate::tls::ServerTlsArgs,
    /// Address to listen on.
    #[arg(long, env = "TIFFIN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Also serve Prometheus metrics (`/metrics`, the same as on the API's address) on this
    /// address, e.g. 127.0.0.1:9100, for a scraper that must not reach the API.
    #[arg(long, env = "TIFFIN_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Base URL clients reach this server at (set it behind a proxy); default: from each
    /// request's Host header.
    #[arg(long, env = "TIFFIN_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Most distinct assumption receipts one session may name (composition).
    #[arg(long, env = "TIFFIN_MAX_ASSUMPTIONS", default_value_t = 64)]
    pub max_assumptions: usize,
    /// Largest journal an uploaded receipt may carry, e.g. `1MiB`.
    #[arg(long, env = "TIFFIN_MAX_JOURNAL_SIZE", default_value = "1MiB")]
    pub max_journal_size: String,
    /// Admin key for /admin routes and `tiffin admin`. `tiffin up` generates one on first
    /// start (saved as <data-dir>/admin.key); without one `tiffin api` disables /admin.
    #[arg(long, env = "TIFFIN_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// A file (mode 0600) holding the admin key; wins over --admin-key / TIFFIN_ADMIN_KEY,
    /// which `ps` and the environment show.
    #[arg(long, env = "TIFFIN_ADMIN_KEY_FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// Segment size of sessions, as a power of two (14-22, but not 15).
    #[arg(long, env = "TIFFIN_PO2", default_value_t = 20, value_parser = parse_po2)]
    pub po2: u32,
    /// Concurrent sessions of a new tenant.
    #[arg(long, env = "TIFFIN_DEFAULT_CONCURRENT_PROOFS", default_value_t = 10)]
    pub default_concurrent_proofs: i64,
    /// Per-session cycle limit of a new tenant, in millions of cycles.
    #[arg(long, env = "TIFFIN_DEFAULT_EXEC_CYCLE_LIMIT", default_value_t = 100_000)]
    pub default_exec_cycle_limit: i64,
    /// A session still running this many seconds after it was created times out
    /// (TIMED_OUT), so no endless session holds an executor or a prover; 0: never.
    #[arg(long, env = "TIFFIN_SESSION_TIMEOUT_SECS", default_value_t = 86_400)]
    pub session_timeout_secs: u64,
    /// Bytes of inputs, uploaded receipts and images a new tenant may store, e.g. `20GiB`.
    #[arg(long, env = "TIFFIN_DEFAULT_STORAGE_QUOTA", default_value = "20GiB")]
    pub default_storage_quota: String,
    /// Inputs and uploaded receipts no session used for this many seconds are deleted; at
    /// least --session-timeout-secs (a running session keeps its input); 0: never.
    #[arg(long, env = "TIFFIN_BLOB_TTL_SECS", default_value_t = 7 * 86_400)]
    pub blob_ttl_secs: u64,
}

/// A segment size `execute` accepts, so a cluster configured with one it refuses (15, or one
/// out of range) fails at start-up instead of failing every session.
pub(crate) fn parse_po2(text: &str) -> Result<u32, String> {
    let po2: u32 = text.parse().map_err(|e| format!("{e}"))?;
    tiffin_zkvm::check_po2(po2).map_err(|e| e.to_string())?;
    Ok(po2)
}

impl ServeArgs {
    /// The time to live of unused uploads, checked against the session timeout.
    fn blob_ttl(&self) -> Result<Option<Duration>> {
        if self.blob_ttl_secs == 0 {
            return Ok(None);
        }
        if self.session_timeout_secs == 0 || self.blob_ttl_secs < self.session_timeout_secs {
            anyhow::bail!(
                "--blob-ttl-secs {} is shorter than sessions may run (--session-timeout-secs {}): \
                 a running session could lose its input; raise it, or set 0 to keep uploads",
                self.blob_ttl_secs,
                self.session_timeout_secs
            );
        }
        Ok(Some(Duration::from_secs(self.blob_ttl_secs)))
    }
}

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// In-process proving agents (prove, join), besides one executor (exec, aux, snark).
    #[arg(long, env = "TIFFIN_AGENTS", default_value_t = 1)]
    agents: usize,
}

#[derive(Args)]
pub struct ApiArgs {
    #[command(flatten)]
    serve: ServeArgs,
}

/// The tenant database: next to the TaskDB (same PostgreSQL database, or the same SQLite file).
async fn tenant_store(b: &BackendArgs) -> Result<TenantStore> {
    let store = match &b.database_url()? {
        Some(url) => TenantStore::open(url).await,
        None => TenantStore::sqlite(&b.data_dir.join("taskdb.sqlite")).await,
    };
    store.context("opening the tenant tables (TIFFIN-API-092)")
}

/// The admin key: given, or saved in the data dir, or (when `generate`) created and saved.
fn admin_key(args: &ServeArgs, generate: bool) -> Result<Option<(String, bool)>> {
    let given =
        crate::secret::from_file_or(args.admin_key_file.as_deref(), args.admin_key.as_deref())?;
    if let Some(k) = given {
        tiffin_api::auth::check_admin_key(&k)?;
        return Ok(Some((k, false)));
    }
    // The saved key is read the same way: a data dir others can read must not leak it.
    let path = args.backend.data_dir.join("admin.key");
    if path.exists() {
        let k = crate::secret::read(&path)?;
        tiffin_api::auth::check_admin_key(&k).with_context(|| format!("in {path:?}"))?;
        return Ok(Some((k, false)));
    }
    if !generate {
        return Ok(None);
    }
    let key = format!("tfa_{}", tiffin_api::tenants::new_key().trim_start_matches("tfn_"));
    write_secret(&path, &key)?;
    Ok(Some((key, true)))
}

fn write_secret(path: &Path, secret: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {path:?}"))?;
    writeln!(f, "{secret}")?;
    // On disk before the key is printed: a crash cannot leave a key the user saw but the
    // server cannot read back.
    f.sync_all().with_context(|| format!("syncing {path:?}"))?;
    Ok(())
}

/// The API's settings from the flags.
fn api_config(args: &ServeArgs, admin: Option<&(String, bool)>) -> Result<ApiConfig> {
    Ok(ApiConfig {
        public_url: args.public_url.clone(),
        limits: args.limits.limits()?,
        max_assumptions: args.max_assumptions,
        max_journal_bytes: usize::try_from(parse_byte_size(&args.max_journal_size)?)?,
        admin_key_hash: admin.map(|(k, _)| hash_key(k)),
        po2: args.po2,
        session_timeout: (args.session_timeout_secs > 0)
            .then(|| Duration::from_secs(args.session_timeout_secs)),
        blob_ttl: args.blob_ttl()?,
        defaults: TenantDefaults {
            concurrent_proofs: args.default_concurrent_proofs,
            exec_cycle_limit: args.default_exec_cycle_limit,
            storage_quota: i64::try_from(parse_byte_size(&args.default_storage_quota)?)?,
            ..TenantDefaults::default()
        },
        ..ApiConfig::default()
    })
}

/// Serves the API (with `agents` beside it in this process) until SIGTERM or Ctrl-C.
async fn run_server(args: ServeArgs, agents: Vec<AgentConfig>, first_start: bool) -> Result<()> {
    let tls = args.tls.load()?;
    let (db, stores) = args.backend.open().await?;
    stores.cold.check().await?;
    let tenants = tenant_store(&args.backend).await?;
    let admin = admin_key(&args, first_start)?;
    let cfg = api_config(&args, admin.as_ref())?;
    let fresh_tenant = if first_start && tenants.tenants().await?.is_empty() {
        tenants.create_tenant("default", &cfg.defaults).await?;
        Some(tenants.create_key("default", "created by tiffin up").await?.0)
    } else {
        None
    };
    let ctx = Context::new(db.clone(), stores.clone());
    let state = AppState::new(Cluster::new(db, stores), tenants, cfg);
    let mut server = Server::start_with_tls(args.listen, state, tls)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let crew = Crew::spawn(&ctx, agents);
    let url = args.public_url.clone().unwrap_or_else(|| server.url());
    println!("Tiffin API listening on {url}");
    if let Some(bind) = args.metrics_listen {
        let addr = server
            .serve_metrics(bind)
            .await
            .with_context(|| format!("serving metrics on {bind}"))?;
        println!("metrics on http://{addr}/metrics");
    }
    match &admin {
        Some((key, true)) => println!(
            "admin key (saved in {}): {key}",
            args.backend.data_dir.join("admin.key").display()
        ),
        Some(_) => {}
        None => eprintln!("no --admin-key: the /admin routes are disabled"),
    }
    if admin.is_some() {
        println!("status page: {url}/ui (it asks for the admin key)");
    }
    if let Some(key) = fresh_tenant {
        println!("API key of tenant \"default\" (shown once; store it):");
        println!("  export BONSAI_API_URL={url}");
        println!("  export BONSAI_API_KEY={key}");
    }
    crate::agent::stop_requested().await?;
    eprintln!("shutting down: finishing in-flight tasks");
    let (_, agents) = tokio::join!(server.shutdown(), crew.stop());
    agents?;
    Ok(())
}

pub fn up(args: UpArgs) -> Result<()> {
    let isolation = crate::agent::isolated_proving()?;
    let roster = Roster::new(format!("up-{}", std::process::id()), args.agents).with_snark();
    let agents = roster.agents(|role, a| match role {
        Role::Executor => a.heartbeat = Duration::from_secs(2),
        Role::Prover => {
            // A stopped session's proof is killed at the next heartbeat: within a second.
            a.heartbeat = Duration::from_secs(1);
            a.isolation = isolation.clone();
        }
    });
    tokio::runtime::Runtime::new()?.block_on(run_server(args.serve, agents, true))
}

pub fn api(args: ApiArgs) -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(run_server(args.serve, Vec::new(), false))
}
