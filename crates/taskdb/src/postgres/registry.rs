//! The agent registry on PostgreSQL: presence reports, the listing, and forgetting agents that
//! stopped reporting.

use std::time::Duration;

use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgPool;

use crate::agent::{AgentInfo, micros};
use crate::error::{Error, Result};
use crate::pin::{AgentPin, LiveAgent, Reservation, describe};
use crate::stream::ReservationIdle;
use crate::task::Kind;

/// Records a report: a new row, or the latest kinds, info and time on the agent's row.
pub(super) async fn seen(pool: &PgPool, agent: &str, kinds: &[Kind], info: &Value) -> Result<()> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    sqlx::query(
        "INSERT INTO agents (id, kinds, info) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET kinds = EXCLUDED.kinds, info = EXCLUDED.info, \
                                        last_seen = now()",
    )
    .bind(agent)
    .bind(serde_json::json!(kinds))
    .bind(info)
    .execute(pool)
    .await?;
    Ok(())
}

/// Agents seen within `within`, latest first.
pub(super) async fn list(pool: &PgPool, within: Duration) -> Result<Vec<AgentInfo>> {
    let rows = sqlx::query(
        "SELECT id, kinds, info, first_seen, last_seen FROM agents \
          WHERE last_seen >= now() - $1 * interval '1 microsecond' \
          ORDER BY last_seen DESC, id",
    )
    .bind(micros(within))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AgentInfo {
                id: r.get(0),
                kinds: serde_json::from_value(r.get::<Value, _>(1))
                    .map_err(|e| Error::Corrupt(format!("agent kinds: {e}")))?,
                info: r.get(2),
                first_seen: r.get(3),
                last_seen: r.get(4),
            })
        })
        .collect()
}

/// Deletes agents not seen for longer than `unseen_for`.
pub(super) async fn forget(pool: &PgPool, unseen_for: Duration) -> Result<u64> {
    let gone =
        sqlx::query("DELETE FROM agents WHERE last_seen < now() - $1 * interval '1 microsecond'")
            .bind(micros(unseen_for))
            .execute(pool)
            .await?
            .rows_affected();
    Ok(gone)
}

/// The pins of the live agents (see `TaskDb::pins`).
pub(super) async fn pins(pool: &PgPool, alive: Duration) -> Result<Vec<AgentPin>> {
    let rows = sqlx::query(
        "SELECT id, tenant, kind, reserved, reserved_idle FROM streams WHERE reserved > 0",
    )
    .fetch_all(pool)
    .await?;
    let reservations: Vec<(Reservation, String)> = rows
        .iter()
        .map(|r| {
            let idle = ReservationIdle::parse(r.get::<&str, _>(4));
            let res = Reservation {
                stream_id: r.get(0),
                kind: r.get(2),
                reserved: r.get::<i32, _>(3).into(),
                idle,
            };
            (res, r.get(1))
        })
        .collect();
    let rows = sqlx::query(
        "SELECT id, kinds FROM agents WHERE last_seen >= now() - $1 * interval '1 microsecond' \
          ORDER BY first_seen, id",
    )
    .bind(micros(alive))
    .fetch_all(pool)
    .await?;
    let agents: Vec<LiveAgent> = rows
        .iter()
        .map(|r| LiveAgent {
            id: r.get(0),
            kinds: serde_json::from_value(r.get::<Value, _>(1)).unwrap_or_default(),
        })
        .collect();
    Ok(describe(&reservations, &agents))
}
