//! Opening the SQLite TaskDB: one writer connection (transactions start IMMEDIATE), a pool of
//! readers, the migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};

use crate::Config;
use crate::error::Result;
use crate::notify::Notifier;

/// TaskDB on a SQLite file. Cheap to share: hold it in an `Arc<dyn TaskDb>`.
pub struct SqliteTaskDb {
    pub(super) writer: SqlitePool,
    pub(super) reader: SqlitePool,
    pub(super) config: Config,
    pub(super) notifier: Notifier,
}

impl SqliteTaskDb {
    /// Opens (creating if needed) the database file at `path` and applies the embedded
    /// migrations.
    pub async fn open(path: impl AsRef<Path>, config: Config) -> Result<Self> {
        let opts = SqliteConnectOptions::new().filename(path.as_ref()).create_if_missing(true);
        Self::open_with(opts, config).await
    }

    /// Opens a database by URL (`sqlite:///path/to/tiffin.db`).
    pub async fn open_url(url: &str, config: Config) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
        Self::open_with(opts, config).await
    }

    async fn open_with(opts: SqliteConnectOptions, config: Config) -> Result<Self> {
        let opts = opts
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk when it returns, so a session marked SUCCEEDED (or a
            // task done) survives a power loss, not only a crash of the process.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(600))
            .connect_with(opts.clone())
            .await?;
        let migrator = crate::shared_migrator(sqlx::migrate!("./migrations/sqlite"));
        migrator.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(config.max_connections.clamp(1, 8))
            .connect_with(opts)
            .await?;
        Ok(SqliteTaskDb { writer, reader, config, notifier: Notifier::default() })
    }

    pub(super) async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}
