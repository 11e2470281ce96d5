//! The agent registry on SQLite: presence reports, the listing, and forgetting agents that
//! stopped reporting.

use std::time::Duration;

use serde_json::Value;
use sqlx::Row;

use super::open::SqliteTaskDb;
use super::sql::{json, kinds_json, now_us, ts};
use crate::agent::{AgentInfo, micros};
use crate::error::{Error, Result};
use crate::pin::{AgentPin, LiveAgent, Reservation, describe};
use crate::stream::ReservationIdle;
use crate::task::Kind;

/// Records a report: a new row, or the latest kinds, info and time on the agent's row.
pub(super) async fn seen(
    db: &SqliteTaskDb,
    agent: &str,
    kinds: &[Kind],
    info: &Value,
) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO agents (id, kinds, info, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?4) \
         ON CONFLICT (id) DO UPDATE SET kinds = excluded.kinds, info = excluded.info, \
                                        last_seen = excluded.last_seen",
    )
    .bind(agent)
    .bind(kinds_json(kinds))
    .bind(info.to_string())
    .bind(now_us())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Agents seen within `within`, latest first.
pub(super) async fn list(db: &SqliteTaskDb, within: Duration) -> Result<Vec<AgentInfo>> {
    let rows = sqlx::query(
        "SELECT id, kinds, info, first_seen, last_seen FROM agents WHERE last_seen >= ?1 \
          ORDER BY last_seen DESC, id",
    )
    .bind(now_us() - micros(within))
    .fetch_all(&db.reader)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AgentInfo {
                id: r.get(0),
                kinds: serde_json::from_str(&r.get::<String, _>(1))
                    .map_err(|e| Error::Corrupt(format!("agent kinds: {e}")))?,
                info: json(&r.get::<String, _>(2))?,
                first_seen: ts(r.get(3)),
                last_seen: ts(r.get(4)),
            })
        })
        .collect()
}

/// Deletes agents not seen for longer than `unseen_for`.
pub(super) async fn forget(db: &SqliteTaskDb, unseen_for: Duration) -> Result<u64> {
    let mut tx = db.begin().await?;
    let gone = sqlx::query("DELETE FROM agents WHERE last_seen < ?1")
        .bind(now_us() - micros(unseen_for))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(gone)
}

/// The pins of the live agents (see `TaskDb::pins`).
pub(super) async fn pins(db: &SqliteTaskDb, alive: Duration) -> Result<Vec<AgentPin>> {
    let rows = sqlx::query(
        "SELECT id, tenant, kind, reserved, reserved_idle FROM streams WHERE reserved > 0",
    )
    .fetch_all(&db.reader)
    .await?;
    let reservations: Vec<(Reservation, String)> = rows
        .iter()
        .map(|r| {
            let idle = ReservationIdle::parse(r.get::<&str, _>(4));
            let res = Reservation { stream_id: r.get(0), kind: r.get(2), reserved: r.get(3), idle };
            (res, r.get(1))
        })
        .collect();
    let agents = live_agents(&db.reader, now_us() - micros(alive)).await?;
    Ok(describe(&reservations, &agents))
}

/// The agents that reported since `since` (µs), oldest registration first.
pub(super) async fn live_agents<'c>(
    conn: impl sqlx::SqliteExecutor<'c>,
    since: i64,
) -> Result<Vec<LiveAgent>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, kinds FROM agents WHERE last_seen >= ?1 ORDER BY first_seen, id",
    )
    .bind(since)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, kinds)| LiveAgent {
            id,
            kinds: serde_json::from_str(&kinds).unwrap_or_default(),
        })
        .collect())
}
