//! The order database (SQLite): orders, the event cursor and a mirror of the market's events.
//!
//! Every state change is a guarded `UPDATE … WHERE state = <expected>`, so two workers (or a
//! worker and the reaper) never both move one order.

use std::path::Path;
use std::str::FromStr;

use alloy::primitives::{Address, B256, Bytes, U256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::error::{BrokerError, Result};
use crate::order::{Order, OrderState, decode_request};
use crate::pricing::FulfillmentType;

/// What the market's events said about one request.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The request, when it was submitted on-chain.
    pub request: Option<Vec<u8>>,
    pub locker: Option<Address>,
    pub fulfilled: bool,
    /// Who fulfilled it (absent for events mirrored before this was kept).
    pub fulfiller: Option<Address>,
}

#[derive(Debug, Clone)]
pub struct Db {
    pool: SqlitePool,
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // A lock must never be forgotten after a power loss: every commit is durable.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        // Two processes opening one database at once (the broker starting while `tiffin broker
        // status` reads it) must not both apply a migration: one migrates at a time.
        let _migrating = MigrationLock::take(path).await?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| BrokerError::Db(format!("migrating {}: {e}", path.display())))?;
        Ok(Self { pool })
    }

    /// Inserts a new order; false when one with the same key exists already.
    pub async fn insert(&self, order: &Order) -> Result<bool> {
        let query = sqlx::query(
            "INSERT INTO orders (key, request_id, kind, request, signature, journal, input_sha256, \
             state, cycles, lock_price, expiry, session_id, attempts, error, updated_at, times, \
             input_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(order.key())
        .bind(format!("{:#x}", order.id()))
        .bind(kind_name(order.kind))
        .bind(order.encoded_request())
        .bind(order.signature.to_vec())
        .bind(order.journal.clone())
        .bind(order.input_sha256.map(|d| d.to_vec()));
        let done = bind_progress(query, order).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Writes `order` (its state included) if it is still in state `from`; false otherwise.
    pub async fn update(&self, order: &Order, from: OrderState) -> Result<bool> {
        let query = sqlx::query(
            "UPDATE orders SET state = ?, cycles = ?, lock_price = ?, expiry = ?, session_id = ?, \
             attempts = ?, error = ?, updated_at = ?, times = ?, input_id = ? WHERE key = ? AND state = ?",
        );
        let done = bind_progress(query, order)
            .bind(order.key())
            .bind(from.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn get(&self, key: &str) -> Result<Option<Order>> {
        let row = sqlx::query("SELECT * FROM orders WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// Orders in any of `states`, the oldest change first.
    pub async fn in_states(&self, states: &[OrderState]) -> Result<Vec<Order>> {
        let marks = vec!["?"; states.len()].join(", ");
        let sql = format!("SELECT * FROM orders WHERE state IN ({marks}) ORDER BY updated_at, key");
        let mut query = sqlx::query(&sql);
        for s in states {
            query = query.bind(s.as_str());
        }
        query.fetch_all(&self.pool).await?.iter().map(from_row).collect()
    }

    /// Every order the broker must still see through.
    pub async fn committed(&self) -> Result<Vec<Order>> {
        self.in_states(&OrderState::COMMITTED).await
    }

    /// The newest orders, for `tiffin broker status`.
    pub async fn recent(&self, limit: u32) -> Result<Vec<Order>> {
        sqlx::query("SELECT * FROM orders ORDER BY updated_at DESC, key LIMIT ?")
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(from_row)
            .collect()
    }

    /// The newest `limit` finished proofs (cycles, and milliseconds from proving to proved).
    pub async fn proof_samples(&self, limit: u32) -> Result<Vec<crate::speed::Sample>> {
        let rows = sqlx::query(
            "SELECT cycles, times FROM orders WHERE state IN ('Proved', 'Fulfilling', 'Done') \
             ORDER BY updated_at DESC, key LIMIT ?",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let times: crate::order::StageTimes =
                    serde_json::from_str(&r.get::<String, _>("times")).ok()?;
                let millis = times.proved?.checked_sub(times.proving?)?;
                Some(crate::speed::Sample { cycles: r.get::<i64, _>("cycles") as u64, millis })
            })
            .collect())
    }

    /// The calibration proof's speed (kHz), if one was measured.
    pub async fn calibration(&self) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT khz FROM calibration WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<i64, _>("khz") as u64))
    }

    pub async fn set_calibration(&self, khz: u64, now: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO calibration (id, khz, measured_at) VALUES (1, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET khz = excluded.khz, measured_at = excluded.measured_at",
        )
        .bind(khz as i64)
        .bind(now as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many orders are in each state.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM orders GROUP BY state ORDER BY state")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>("state"), r.get::<i64, _>("n"))).collect())
    }

    /// Forgets skipped orders older than `before` (seconds since the epoch): they are only
    /// kept to tell operators why.
    pub async fn prune_skipped(&self, before: u64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM orders WHERE state = 'Skipped' AND updated_at < ?")
            .bind(before as i64)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Forgets the mirrored events of requests last heard of before `before` (seconds since
    /// the epoch) that no committed order needs: the mirror stays bounded whatever the market
    /// sends.
    pub async fn prune_requests(&self, before: u64) -> Result<u64> {
        let committed = OrderState::COMMITTED.map(|s| format!("'{}'", s.as_str())).join(", ");
        let sql = format!(
            "DELETE FROM requests WHERE noted_at < ? AND request_id NOT IN \
             (SELECT request_id FROM orders WHERE state IN ({committed}))"
        );
        let done = sqlx::query(&sql).bind(before as i64).execute(&self.pool).await?;
        Ok(done.rows_affected())
    }

    // ---- the event cursor ----

    pub async fn cursor(&self, chain_id: u64) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT block FROM cursor WHERE chain_id = ?")
            .bind(chain_id as i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<i64, _>("block") as u64))
    }

    pub async fn set_cursor(&self, chain_id: u64, block: u64) -> Result<()> {
        sqlx::query(
            "INSERT INTO cursor (chain_id, block) VALUES (?, ?) \
             ON CONFLICT (chain_id) DO UPDATE SET block = excluded.block",
        )
        .bind(chain_id as i64)
        .bind(block as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- the mirror of market events ----

    pub async fn note_submitted(&self, id: U256, request: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO requests (request_id, request, noted_at) VALUES (?, ?, unixepoch()) \
             ON CONFLICT (request_id) DO UPDATE SET request = excluded.request, \
             noted_at = excluded.noted_at",
        )
        .bind(format!("{id:#x}"))
        .bind(request)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn note_locked(&self, id: U256, locker: Address) -> Result<()> {
        sqlx::query(
            "INSERT INTO requests (request_id, locker, noted_at) VALUES (?, ?, unixepoch()) \
             ON CONFLICT (request_id) DO UPDATE SET locker = excluded.locker, \
             noted_at = excluded.noted_at",
        )
        .bind(format!("{id:#x}"))
        .bind(locker.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn note_fulfilled(&self, id: U256, prover: Address) -> Result<()> {
        sqlx::query(
            "INSERT INTO requests (request_id, fulfilled, fulfiller, noted_at) \
             VALUES (?, 1, ?, unixepoch()) ON CONFLICT (request_id) DO UPDATE SET fulfilled = 1, \
             fulfiller = excluded.fulfiller, noted_at = excluded.noted_at",
        )
        .bind(format!("{id:#x}"))
        .bind(prover.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn request_info(&self, id: U256) -> Result<RequestInfo> {
        let row = sqlx::query(
            "SELECT request, locker, fulfilled, fulfiller FROM requests WHERE request_id = ?",
        )
        .bind(format!("{id:#x}"))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(RequestInfo::default()) };
        let address = |column: &str| {
            row.get::<Option<String>, _>(column).and_then(|a| Address::from_str(&a).ok())
        };
        Ok(RequestInfo {
            request: row.get("request"),
            locker: address("locker"),
            fulfilled: row.get::<i64, _>("fulfilled") != 0,
            fulfiller: address("fulfiller"),
        })
    }
}

/// An exclusive `flock` on `<database>.lock`, held while migrating; released when dropped.
struct MigrationLock {
    _held: std::fs::File,
}

impl MigrationLock {
    async fn take(db: &Path) -> Result<Self> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = std::path::PathBuf::from(name);
        let locked = tokio::task::spawn_blocking(move || {
            use std::os::fd::AsRawFd as _;
            let file =
                std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
            // SAFETY: flock on a descriptor this function owns; it blocks until granted.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(file)
        })
        .await
        .map_err(|e| BrokerError::Db(format!("locking for migration: {e}")))?;
        let file = locked.map_err(|e| BrokerError::Db(format!("locking for migration: {e}")))?;
        Ok(Self { _held: file })
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds what changes as an order moves on, in the column order both `insert` and `update`
/// name them: state, cycles, lock_price, expiry, session_id, attempts, error, updated_at, times,
/// input_id.
fn bind_progress<'q>(query: Query<'q>, order: &Order) -> Query<'q> {
    query
        .bind(order.state.as_str())
        .bind(order.cycles as i64)
        .bind(order.lock_price.to_string())
        .bind(order.expiry as i64)
        .bind(order.session_id.clone())
        .bind(order.attempts as i64)
        .bind(order.error.clone())
        .bind(order.updated_at as i64)
        .bind(serde_json::to_string(&order.times).expect("stage times serialise"))
        .bind(order.input_id.clone())
}

fn kind_name(kind: FulfillmentType) -> &'static str {
    match kind {
        FulfillmentType::LockAndFulfill => "lock",
        FulfillmentType::FulfillAfterLockExpire => "race",
    }
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Order> {
    let key: String = row.get("key");
    let bad = |what: &str| BrokerError::Db(format!("order {key}: bad {what}"));
    let request =
        decode_request(&row.get::<Vec<u8>, _>("request")).ok_or_else(|| bad("request"))?;
    let kind = match row.get::<String, _>("kind").as_str() {
        "lock" => FulfillmentType::LockAndFulfill,
        "race" => FulfillmentType::FulfillAfterLockExpire,
        _ => return Err(bad("kind")),
    };
    let state = OrderState::parse(&row.get::<String, _>("state")).ok_or_else(|| bad("state"))?;
    let lock_price =
        U256::from_str(&row.get::<String, _>("lock_price")).map_err(|_| bad("lock price"))?;
    Ok(Order {
        request,
        signature: Bytes::from(row.get::<Vec<u8>, _>("signature")),
        journal: row.get("journal"),
        input_id: row.get("input_id"),
        input_sha256: row
            .get::<Option<Vec<u8>>, _>("input_sha256")
            .map(|d| B256::try_from(d.as_slice()).map_err(|_| bad("input digest")))
            .transpose()?,
        kind,
        state,
        cycles: row.get::<i64, _>("cycles") as u64,
        lock_price,
        expiry: row.get::<i64, _>("expiry") as u64,
        session_id: row.get("session_id"),
        attempts: row.get::<i64, _>("attempts") as u32,
        error: row.get("error"),
        updated_at: row.get::<i64, _>("updated_at") as u64,
        times: serde_json::from_str(&row.get::<String, _>("times")).map_err(|_| bad("times"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiffin_market::{Input, Offer, Predicate, ProofRequest};

    fn request(index: u32) -> ProofRequest {
        let offer = Offer {
            minPrice: U256::from(1),
            maxPrice: U256::from(2),
            biddingStart: 100,
            rampUpPeriod: 0,
            lockTimeout: 60,
            timeout: 120,
            lockCollateral: U256::from(3),
        };
        ProofRequest::new(
            tiffin_market::request::request_id(Address::repeat_byte(7), index),
            B256::repeat_byte(1),
            Predicate::any(),
            "file:///echo",
            Input::inline(vec![1, 2, 3]),
            offer,
        )
    }

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("broker.db")).await.unwrap();
        (dir, db)
    }

    /// Failed before the fix: a second process opening the database while the first migrated
    /// it applied a migration twice ("duplicate column name") and gave up.
    #[tokio::test]
    async fn databases_opened_at_once_migrate_once() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("broker.db");
            let opens: Vec<_> = (0..4)
                .map(|_| {
                    let path = path.clone();
                    tokio::spawn(async move { Db::open(&path).await.map(drop) })
                })
                .collect();
            for open in opens {
                open.await.unwrap().unwrap();
            }
        }
    }

    #[tokio::test]
    async fn an_order_survives_a_reopen_with_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.db");
        let mut order =
            Order::new(request(1), Bytes::from(vec![9; 65]), FulfillmentType::LockAndFulfill, 50);
        order.state = OrderState::Proving;
        order.session_id = Some("s-1".into());
        order.lock_price = U256::from(123_456_789u64);
        order.cycles = 1 << 20;
        order.journal = Some(b"the journal".to_vec());
        order.input_id = Some("input-1".into());
        order.input_sha256 = Some(alloy::primitives::B256::repeat_byte(5));
        order.times.seen = Some(1_000);
        order.times.proved = Some(9_000);
        {
            let db = Db::open(&path).await.unwrap();
            assert!(db.insert(&order).await.unwrap());
            assert!(!db.insert(&order).await.unwrap(), "a second insert is refused");
        }
        let db = Db::open(&path).await.unwrap();
        let back = db.get(&order.key()).await.unwrap().unwrap();
        assert_eq!(back.request, order.request);
        assert_eq!(back.signature, order.signature);
        assert_eq!(back.state, OrderState::Proving);
        assert_eq!(back.session_id.as_deref(), Some("s-1"));
        assert_eq!(back.lock_price, order.lock_price);
        assert_eq!(back.cycles, 1 << 20);
        assert_eq!(back.journal, order.journal);
        assert_eq!(back.input_id, order.input_id);
        assert_eq!(back.input_sha256, order.input_sha256);
        assert_eq!(back.expiry, 160);
        assert_eq!(back.times, order.times);
        assert_eq!(db.committed().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_update_only_moves_an_order_from_the_expected_state() {
        let (_dir, db) = db().await;
        let mut order = Order::new(request(2), Bytes::new(), FulfillmentType::LockAndFulfill, 1);
        db.insert(&order).await.unwrap();
        order.state = OrderState::Proving;
        assert!(db.update(&order, OrderState::PendingProving).await.unwrap());
        order.state = OrderState::Failed;
        assert!(!db.update(&order, OrderState::PendingProving).await.unwrap(), "stale");
        assert_eq!(db.get(&order.key()).await.unwrap().unwrap().state, OrderState::Proving);
        assert!(db.update(&order, OrderState::Proving).await.unwrap());
        assert!(db.committed().await.unwrap().is_empty());
        assert_eq!(db.counts().await.unwrap(), vec![("Failed".to_string(), 1)]);
    }

    #[tokio::test]
    async fn skipped_orders_are_pruned_and_events_mirrored() {
        let (_dir, db) = db().await;
        let mut old = Order::new(request(3), Bytes::new(), FulfillmentType::LockAndFulfill, 10);
        old.state = OrderState::Skipped;
        let mut new = Order::new(request(4), Bytes::new(), FulfillmentType::LockAndFulfill, 90);
        new.state = OrderState::Skipped;
        db.insert(&old).await.unwrap();
        db.insert(&new).await.unwrap();
        assert_eq!(db.prune_skipped(50).await.unwrap(), 1);
        assert_eq!(db.recent(10).await.unwrap().len(), 1);

        let id = request(5).id;
        assert!(db.request_info(id).await.unwrap().request.is_none());
        db.note_submitted(id, b"req").await.unwrap();
        db.note_locked(id, Address::repeat_byte(2)).await.unwrap();
        db.note_fulfilled(id, Address::repeat_byte(3)).await.unwrap();
        // Heard of just now: not pruned by a cut in the past, pruned by one in the future.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert_eq!(db.prune_requests(now.as_secs() - 60).await.unwrap(), 0);
        let info = db.request_info(id).await.unwrap();
        assert_eq!(info.request.as_deref(), Some(&b"req"[..]));
        assert_eq!(info.locker, Some(Address::repeat_byte(2)));
        assert!(info.fulfilled);
        assert_eq!(info.fulfiller, Some(Address::repeat_byte(3)));
        let later = now.as_secs() + 60;
        assert_eq!(db.prune_requests(later).await.unwrap(), 1, "no order needs it");
        assert!(db.request_info(id).await.unwrap().request.is_none());

        assert_eq!(db.cursor(31337).await.unwrap(), None);
        db.set_cursor(31337, 12).await.unwrap();
        db.set_cursor(31337, 15).await.unwrap();
        assert_eq!(db.cursor(31337).await.unwrap(), Some(15));
    }
}
