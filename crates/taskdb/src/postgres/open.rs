//! Opening the PostgreSQL TaskDB: the pool, the migrations, the scheduler's functions and the
//! LISTEN connection that feeds wake-ups.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tracing::warn;

use crate::Config;
use crate::error::Result;
use crate::notify::Notifier;

/// The NOTIFY channel; the payload is a comma-separated list of `kind:count` that became ready.
pub const CHANNEL: &str = "tiffin_taskdb_ready";

/// TaskDB on PostgreSQL. Cheap to share: hold it in an `Arc<dyn TaskDb>`.
pub struct PostgresTaskDb {
    pub(super) pool: PgPool,
    pub(super) config: Config,
    pub(super) notifier: Notifier,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresTaskDb {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// The scheduler's functions, one current definition each (docs/architecture.md, "TaskDB").
const FUNCTIONS: &str = include_str!("functions.sql");

/// Lock key that serialises [`FUNCTIONS`] between processes starting at once (concurrent
/// `CREATE OR REPLACE` of one function fails with "tuple concurrently updated").
const FUNCTIONS_LOCK: i64 = 7_146_221_011;

/// Applies [`FUNCTIONS`] after the migrations: idempotent, so every connect runs it.
async fn apply_functions(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(FUNCTIONS_LOCK).execute(&mut *tx).await?;
    sqlx::raw_sql(FUNCTIONS).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

impl PostgresTaskDb {
    /// Connects to `url` (`postgres://user:pass@host:port/db`), applies the embedded migrations
    /// and starts the LISTEN task that wakes [`TaskDb::wait_for_work`].
    pub async fn connect(url: &str, config: Config) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        // No JIT: every TaskDB statement is a short indexed lookup, and with PostgreSQL's
        // default (JIT above an estimated cost of 100,000) one misestimated plan would be
        // compiled for tens of milliseconds on every call. (No gain measured; a safeguard.)
        let options = options.options([("jit", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Self::from_pool(pool, config).await
    }

    /// Like [`PostgresTaskDb::connect`] with an existing pool.
    pub async fn from_pool(pool: PgPool, config: Config) -> Result<Self> {
        let migrator = crate::shared_migrator(sqlx::migrate!("./migrations/postgres"));
        migrator.run(&pool).await?;
        apply_functions(&pool).await?;
        let notifier = Notifier::default();
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let n = notifier.clone();
        let listener = tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(msg) => n.publish(msg.payload().split(',').filter(|s| !s.is_empty())),
                    Err(e) => {
                        warn!(error = %e, "TaskDB LISTEN connection failed; reconnecting");
                        // wake everyone: a notification may have been lost
                        n.publish(Vec::<String>::new());
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(PostgresTaskDb { pool, config, notifier, listener })
    }

    /// The connection pool (for health checks and metrics).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
