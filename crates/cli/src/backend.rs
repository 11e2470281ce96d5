//! The flags every cluster process shares: where the task database and the stores are. The
//! embedded defaults live under `--data-dir`; distributed mode names PostgreSQL, Redis and S3.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Args;
use tiffin_storage::{StoreConfig, StoreSecrets, Stores, parse_byte_size};
use tiffin_taskdb::{Config, PostgresTaskDb, SqliteTaskDb, TaskDb};

#[derive(Args, Clone, Debug)]
pub struct BackendArgs {
    /// Directory for embedded-mode state (SQLite database, local stores, receipts).
    #[arg(long, env = "TIFFIN_DATA_DIR", default_value = "./tiffin-data")]
    pub data_dir: PathBuf,
    /// Task database: `postgres://…` for a cluster; default SQLite in the data dir. Over TLS:
    /// `?sslmode=verify-full` (with --ca-file, the default).
    #[arg(long, env = "TIFFIN_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// A file (mode 0600) holding the database URL with its password; wins over
    /// --database-url, which `ps` and the environment show.
    #[arg(long, env = "TIFFIN_DATABASE_URL_FILE", value_name = "FILE")]
    pub database_url_file: Option<PathBuf>,
    /// Cold store: a path, `file:///path` or `s3://bucket?endpoint=…`; default `<data-dir>/cold`.
    #[arg(long, env = "TIFFIN_STORE")]
    pub store: Option<String>,
    /// Hot store: `redis://host:port`, a path or `memory://`; default `<data-dir>/hot`.
    #[arg(long, env = "TIFFIN_HOT_STORE", alias = "redis-url")]
    pub hot_store: Option<String>,
    /// Byte budget of the hot store (e.g. `2GiB`); the executor pauses when it is full.
    /// Default: half the free disk (local) or available memory (`memory://`); none on Redis.
    #[arg(long, env = "TIFFIN_HOT_BUDGET")]
    pub hot_budget: Option<String>,
    /// A file (mode 0600) holding the Redis password (put into the --hot-store URL).
    #[arg(long, env = "TIFFIN_REDIS_PASSWORD_FILE", value_name = "FILE")]
    pub redis_password_file: Option<PathBuf>,
    /// A file (mode 0600) holding the S3 access key id (over the URL's and AWS_ACCESS_KEY_ID).
    #[arg(long, env = "TIFFIN_S3_ACCESS_KEY_FILE", value_name = "FILE")]
    pub s3_access_key_file: Option<PathBuf>,
    /// A file (mode 0600) holding the S3 secret key (over the URL's and AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "TIFFIN_S3_SECRET_KEY_FILE", value_name = "FILE")]
    pub s3_secret_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub ca: crate::tls::CaArgs,
}

impl BackendArgs {
    /// The database URL in effect: from --database-url-file or --database-url; with --ca-file
    /// a PostgreSQL URL verifies the server against it (`sslrootcert`, and `sslmode=verify-full`
    /// unless the URL names a mode).
    pub fn database_url(&self) -> Result<Option<String>> {
        let url = crate::secret::from_file_or(
            self.database_url_file.as_deref(),
            self.database_url.as_deref(),
        )?;
        let (Some(url), Some(ca)) = (url.as_deref(), self.ca.path()) else { return Ok(url) };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Ok(Some(url.to_string()));
        }
        let has = |key: &str| {
            let query = url.split_once('?').map_or("", |(_, q)| q);
            query.split('&').any(|p| p.split('=').next() == Some(key))
        };
        let mut url = url.to_string();
        let mut add = |key: &str, value: &str| {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&format!("{key}={value}"));
        };
        if !has("sslmode") {
            add("sslmode", "verify-full");
        }
        if !has("sslrootcert") {
            add("sslrootcert", &ca.display().to_string());
        }
        Ok(Some(url))
    }

    /// The store secrets from their files.
    fn store_secrets(&self) -> Result<StoreSecrets> {
        let read = |f: &Option<PathBuf>| crate::secret::from_file_or(f.as_deref(), None);
        Ok(StoreSecrets {
            redis_password: read(&self.redis_password_file)?,
            s3_access_key_id: read(&self.s3_access_key_file)?,
            s3_secret_access_key: read(&self.s3_secret_key_file)?,
        })
    }

    pub async fn open(&self) -> Result<(Arc<dyn TaskDb>, Stores)> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data dir {:?}", self.data_dir))?;
        let db: Arc<dyn TaskDb> = match &self.database_url()? {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Arc::new(PostgresTaskDb::connect(url, Config::default()).await?)
            }
            Some(url) => Arc::new(SqliteTaskDb::open_url(url, Config::default()).await?),
            None => Arc::new(
                SqliteTaskDb::open(self.data_dir.join("taskdb.sqlite"), Config::default()).await?,
            ),
        };
        let mut cfg = StoreConfig::new(&self.data_dir);
        cfg.store = self.store.clone();
        cfg.hot_store = self.hot_store.clone();
        cfg.hot_budget_bytes = self.hot_budget.as_deref().map(parse_byte_size).transpose()?;
        cfg.ca_file = self.ca.ca_file.clone();
        cfg.secrets = self.store_secrets()?;
        Ok((db, cfg.open().await?))
    }
}
