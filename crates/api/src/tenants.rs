//! Tenants, their API keys and quotas, and the API's own bookkeeping (image references,
//! sessions whose cycles are still to be charged), in the same database as the TaskDB
//! (tables prefixed `api_`), on PostgreSQL or SQLite.
//!
//! Keys are stored as SHA-256 hashes only: a leaked database does not leak usable keys, and
//! a key is shown once, when it is created. Bento's mistake was the opposite — the tenant *was*
//! the unauthenticated key string, and priority was smuggled inside it; here the tenant's
//! priority, reservations and quotas are rows an admin sets.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Result of tenant-store calls.
pub type Result<T> = std::result::Result<T, sqlx::Error>;

/// A tenant's quotas and scheduling weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    /// Immutable id, never reused: the TaskDB tenant of its jobs and the owner of its blobs,
    /// so a tenant created again under a deleted one's name inherits none of its data. Tenants
    /// from before ids existed have their name as id.
    #[serde(default)]
    pub id: String,
    /// Unique name: what the admin and the admin routes call it.
    pub name: String,
    /// Sessions that may run at once.
    pub concurrent_proofs: i64,
    /// Longest session, in millions of cycles (Bonsai's unit).
    pub exec_cycle_limit: i64,
    /// Total cycles this tenant may use.
    pub cycle_budget: i64,
    /// Cycles used by finished sessions.
    pub cycle_usage: i64,
    /// Weight in the TaskDB fair share (its streams' priority multiplier).
    pub priority: f64,
    /// Bytes of inputs, uploaded receipts and images this tenant may store.
    #[serde(default)]
    pub storage_quota: i64,
    /// Bytes it stores now (and uploads in flight).
    #[serde(default)]
    pub storage_usage: i64,
}

/// A deleted tenant, and the images only it held.
#[derive(Debug)]
pub struct Deleted {
    /// The tenant as it was.
    pub tenant: Tenant,
    /// Images no one holds any more.
    pub orphaned_images: Vec<String>,
}

/// The quotas a new tenant gets unless the admin says otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantDefaults {
    /// Sessions at once.
    pub concurrent_proofs: i64,
    /// Millions of cycles per session.
    pub exec_cycle_limit: i64,
    /// Total cycles.
    pub cycle_budget: i64,
    /// Bytes stored (inputs, uploaded receipts, images).
    #[serde(default = "default_storage_quota")]
    pub storage_quota: i64,
}

/// A new tenant's storage quota unless the operator sets another: 20 GiB.
pub const DEFAULT_STORAGE_QUOTA: i64 = 20 << 30;

fn default_storage_quota() -> i64 {
    DEFAULT_STORAGE_QUOTA
}

impl Default for TenantDefaults {
    fn default() -> Self {
        // Generous defaults for a self-hosted cluster: operators tighten them per tenant.
        Self {
            concurrent_proofs: 10,
            exec_cycle_limit: 100_000,
            cycle_budget: i64::MAX,
            storage_quota: DEFAULT_STORAGE_QUOTA,
        }
    }
}

/// An API key as listed (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// Short public id: the first 12 hex characters of the key's hash.
    pub id: String,
    /// Owner.
    pub tenant: String,
    /// What the admin called it.
    pub label: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
}

/// A session the API created and has not charged to its tenant's cycle usage yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uncharged {
    /// Job id.
    pub id: String,
    /// Owner.
    pub tenant: String,
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Expands `$body` once per backend, with `$pool` bound to the concrete pool; the SQL is
/// written once in the dialect both accept (`$n` placeholders, `ON CONFLICT`, `RETURNING`).
macro_rules! on_pool {
    ($self:expr, $pool:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

mod blob_usage;
mod idempotency;
mod image_refs;

/// The tenant database.
#[derive(Clone, Debug)]
pub struct TenantStore {
    pool: Pool,
}

/// The tenant tables' migrations (`crates/api/migrations/`, versions from 10001): they share
/// the TaskDB's database and its migration table ([`tiffin_taskdb::shared_migrator`]).
fn migrator() -> sqlx::migrate::Migrator {
    tiffin_taskdb::shared_migrator(sqlx::migrate!("./migrations"))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The stored form of a key: its SHA-256, hex.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random API key (`tfn_` + 64 hex characters from the OS random generator).
pub fn new_key() -> String {
    let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    format!("tfn_{}{}", a.simple(), b.simple())
}

/// Whether `name` is a usable tenant name (it appears in blob keys and URLs).
pub fn valid_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

type TenantRow = (String, String, i64, i64, i64, i64, f64, i64, i64);

fn tenant(r: TenantRow) -> Tenant {
    Tenant {
        id: r.0,
        name: r.1,
        concurrent_proofs: r.2,
        exec_cycle_limit: r.3,
        cycle_budget: r.4,
        cycle_usage: r.5,
        priority: r.6,
        storage_quota: r.7,
        storage_usage: r.8,
    }
}

const TENANT_COLS: &str = "id, name, concurrent_proofs, exec_cycle_limit, cycle_budget, \
                           cycle_usage, priority, storage_quota, storage_usage";

/// A new tenant's id: its name and a random suffix ('.' is not allowed in names, so no name
/// and no other tenant's id can collide with it).
fn new_tenant_id(name: &str) -> String {
    format!("{name}.{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl TenantStore {
    /// Opens the store in the TaskDB's PostgreSQL database, applying its migrations.
    pub async fn postgres(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new().max_connections(8).connect(url).await?;
        // sqlx's migrator holds an advisory lock while it runs, so API processes starting at
        // once apply each migration once.
        migrator().run(&pool).await?;
        Ok(Self { pool: Pool::Postgres(pool) })
    }

    /// Opens the store in an SQLite database file (the embedded TaskDB's), creating it if needed.
    pub async fn sqlite(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(30));
        Self::sqlite_with(opts).await
    }

    /// Opens the store from an `sqlite:` URL.
    pub async fn sqlite_url(url: &str) -> Result<Self> {
        let opts: SqliteConnectOptions = url.parse()?;
        Self::sqlite_with(
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30)),
        )
        .await
    }

    async fn sqlite_with(opts: SqliteConnectOptions) -> Result<Self> {
        // WAL with FULL sync: a session's owner row and its charge are on disk when the
        // create returns, so a power loss cannot leave a job no tenant owns.
        let opts = opts.synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        migrator().run(&pool).await?;
        Ok(Self { pool: Pool::Sqlite(pool) })
    }

    /// Opens by URL: `postgres://…` or an SQLite URL/path.
    pub async fn open(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::postgres(url).await
        } else if url.starts_with("sqlite:") {
            Self::sqlite_url(url).await
        } else {
            Self::sqlite(Path::new(url)).await
        }
    }

    /// Creates a tenant; `false` if the name is taken.
    pub async fn create_tenant(&self, name: &str, d: &TenantDefaults) -> Result<bool> {
        let sql = "INSERT INTO api_tenants (name, id, concurrent_proofs, exec_cycle_limit, cycle_budget, created_ms, storage_quota)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING";
        let n = on_pool!(self, p => sqlx::query(sql)
            .bind(name).bind(new_tenant_id(name)).bind(d.concurrent_proofs).bind(d.exec_cycle_limit)
            .bind(d.cycle_budget).bind(now_ms()).bind(d.storage_quota)
            .execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// A tenant by name.
    pub async fn tenant(&self, name: &str) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {TENANT_COLS} FROM api_tenants WHERE name = $1");
        let row: Option<TenantRow> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(name).fetch_optional(p).await?);
        Ok(row.map(tenant))
    }

    /// Replaces each stream's tenant id (what the TaskDB knows) by the tenant's name, for
    /// operators' views; streams of deleted tenants keep their id.
    pub async fn name_streams(
        &self,
        streams: &mut [tiffin_taskdb::StreamInfo],
    ) -> std::result::Result<(), String> {
        let tenants = self.tenants().await.map_err(|e| e.to_string())?;
        let names: std::collections::HashMap<String, String> =
            tenants.into_iter().map(|t| (t.id, t.name)).collect();
        for s in streams {
            if let Some(name) = names.get(&s.tenant) {
                s.tenant = name.clone();
            }
        }
        Ok(())
    }

    /// All tenants by name.
    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let sql = format!("SELECT {TENANT_COLS} FROM api_tenants ORDER BY name");
        let rows: Vec<TenantRow> = on_pool!(self, p => sqlx::query_as(&sql).fetch_all(p).await?);
        Ok(rows.into_iter().map(tenant).collect())
    }

    /// Overwrites a tenant's quotas and priority; `false` if it does not exist.
    pub async fn update_tenant(&self, t: &Tenant) -> Result<bool> {
        let sql = "UPDATE api_tenants SET concurrent_proofs = $2, exec_cycle_limit = $3,
                   cycle_budget = $4, priority = $5, storage_quota = $6 WHERE name = $1";
        let n = on_pool!(self, p => sqlx::query(sql)
            .bind(&t.name).bind(t.concurrent_proofs).bind(t.exec_cycle_limit).bind(t.cycle_budget).bind(t.priority)
            .bind(t.storage_quota)
            .execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Deletes a tenant and its keys, returning it (`None` if it did not exist); the caller
    /// collects its data. Its image references go with it; the images they alone held are
    /// returned in `orphaned_images` for the caller to delete.
    pub async fn delete_tenant(&self, name: &str) -> Result<Option<Deleted>> {
        let Some(t) = self.tenant(name).await? else { return Ok(None) };
        let images: Vec<(String,)> = on_pool!(self, p => sqlx::query_as(
            "SELECT image_id FROM api_images WHERE tenant = $1").bind(&t.id).fetch_all(p).await?);
        let n = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM api_keys WHERE tenant = $1").bind(name).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM api_blobs WHERE tenant = $1").bind(&t.id).execute(&mut *tx).await?;
            let n = sqlx::query("DELETE FROM api_tenants WHERE name = $1").bind(name).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            n
        });
        if n == 0 {
            return Ok(None);
        }
        let mut orphaned_images = Vec::new();
        for (image,) in images {
            if self.drop_image_ref(&image, &t.id).await?.1 == 0 {
                orphaned_images.push(image);
            }
        }
        Ok(Some(Deleted { tenant: t, orphaned_images }))
    }

    /// Creates a key for an existing tenant and returns it (the only time it is visible).
    pub async fn create_key(&self, tenant: &str, label: &str) -> Result<(String, KeyInfo)> {
        let key = new_key();
        let hash = hash_key(&key);
        let created_ms = now_ms();
        let sql = "INSERT INTO api_keys (hash, tenant, label, created_ms) VALUES ($1, $2, $3, $4)";
        on_pool!(self, p => sqlx::query(sql).bind(&hash).bind(tenant).bind(label).bind(created_ms).execute(p).await.map(drop)?);
        let info = KeyInfo {
            id: hash[..12].to_string(),
            tenant: tenant.into(),
            label: label.into(),
            created_ms,
        };
        Ok((key, info))
    }

    /// The tenant a key belongs to.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Tenant>> {
        let sql = format!(
            "SELECT {} FROM api_tenants t JOIN api_keys k ON k.tenant = t.name WHERE k.hash = $1",
            TENANT_COLS.split(", ").map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ")
        );
        let row: Option<TenantRow> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(hash_key(key)).fetch_optional(p).await?);
        Ok(row.map(tenant))
    }

    /// A tenant's keys.
    pub async fn keys(&self, tenant: &str) -> Result<Vec<KeyInfo>> {
        let sql = "SELECT hash, tenant, label, created_ms FROM api_keys WHERE tenant = $1 ORDER BY created_ms";
        let rows: Vec<(String, String, String, i64)> =
            on_pool!(self, p => sqlx::query_as(sql).bind(tenant).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(h, tenant, label, created_ms)| KeyInfo {
                id: h[..12].to_string(),
                tenant,
                label,
                created_ms,
            })
            .collect())
    }

    /// Revokes the key whose id (hash prefix) is `id`; `false` if none matched.
    pub async fn revoke_key(&self, id: &str) -> Result<bool> {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let pattern = format!("{}%", id.to_ascii_lowercase());
        let n = on_pool!(self, p => sqlx::query("DELETE FROM api_keys WHERE hash LIKE $1")
            .bind(pattern).execute(p).await?.rows_affected());
        Ok(n > 0)
    }

    /// Records a new session to charge when it ends.
    pub async fn add_session(&self, id: &str, tenant: &str) -> Result<()> {
        let sql = "INSERT INTO api_sessions (id, tenant, created_ms) VALUES ($1, $2, $3)";
        on_pool!(self, p => sqlx::query(sql).bind(id).bind(tenant).bind(now_ms()).execute(p).await.map(drop)?);
        Ok(())
    }

    /// Up to `limit` sessions not yet charged, oldest first.
    pub async fn uncharged(&self, limit: i64) -> Result<Vec<Uncharged>> {
        let sql = "SELECT id, tenant FROM api_sessions WHERE charged = FALSE ORDER BY created_ms LIMIT $1";
        let rows: Vec<(String, String)> =
            on_pool!(self, p => sqlx::query_as(sql).bind(limit).fetch_all(p).await?);
        Ok(rows.into_iter().map(|(id, tenant)| Uncharged { id, tenant }).collect())
    }

    /// Charges `cycles` to the session's tenant exactly once (several API processes may race
    /// to do it: only the one that flips `charged` adds). Returns whether this call charged.
    pub async fn charge(&self, id: &str, cycles: i64) -> Result<bool> {
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let row: Option<(String,)> = sqlx::query_as(
                "UPDATE api_sessions SET charged = TRUE WHERE id = $1 AND charged = FALSE RETURNING tenant")
                .bind(id).fetch_optional(&mut *tx).await?;
            if let Some((tenant,)) = &row {
                sqlx::query("UPDATE api_tenants SET cycle_usage = cycle_usage + $2 WHERE id = $1")
                    .bind(tenant).bind(cycles.max(0)).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(row.is_some())
        })
    }
}
