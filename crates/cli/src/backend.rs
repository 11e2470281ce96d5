//! The flags every cluster process shares: where the task database and the stores are. The
//! embedded defaults live under `--data-dir`; distributed mode names PostgreSQL, Redis and S3.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Args;
use tiffin_storage::{StoreConfig, Stores, parse_byte_size};
use tiffin_taskdb::{Config, PostgresTaskDb, SqliteTaskDb, TaskDb};

#[derive(Args, Clone, Debug)]
pub struct BackendArgs {
    /// Directory for embedded-mode state (SQLite database, local stores, receipts).
    #[arg(long, env = "TIFFIN_DATA_DIR", default_value = "./tiffin-data")]
    pub data_dir: PathBuf,
    /// Task database: `postgres://…` for a cluster; default SQLite in the data dir.
    #[arg(long, env = "TIFFIN_DATABASE_URL")]
    pub database_url: Option<String>,
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
}

impl BackendArgs {
    pub async fn open(&self) -> Result<(Arc<dyn TaskDb>, Stores)> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data dir {:?}", self.data_dir))?;
        let db: Arc<dyn TaskDb> = match &self.database_url {
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
        Ok((db, cfg.open().await?))
    }
}
