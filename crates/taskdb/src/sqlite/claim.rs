//! Claims on SQLite: one task at a time by [`rank`], inside the caller's write transaction, so a
//! batch of claims is one transaction and one commit. Each claim charges its stream one task of
//! service (`streams.served`, decayed to `now` first; migration 0006). An agent pinned to a
//! reservation ([`crate::pin`]) takes that stream's tasks first, then by its idle rule.

use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::SqliteConnection;

use super::open::SqliteTaskDb;
use super::sql::{json, kinds_json, now_us, ts, uuid};
use crate::Config;
use crate::agent::micros;
use crate::error::Result;
use crate::lease::Lease;
use crate::pin::{Pin, Reservation, pin_agents, pin_of};
use crate::policy::{RECENT_TASKS, StreamSnapshot, at_risk, decayed, rank};
use crate::stream::ReservationIdle;
use crate::task::Kind;

/// Claims up to `max` tasks of `kinds` in one write transaction, one at a time by the policy,
/// each declaring at most `max_work` when given (`TaskDb::claim_batch_within`).
pub(super) async fn claim_some(
    db: &SqliteTaskDb,
    agent: &str,
    kinds: &[Kind],
    lease: Duration,
    max: usize,
    max_work: Option<i64>,
) -> Result<Vec<Lease>> {
    if max == 0 {
        return Ok(Vec::new());
    }
    let mut tx = db.begin().await?;
    let at = ClaimAt::new(lease, max_work, &db.config);
    let pin = pin_in(&mut tx, agent, kinds, at.now, db.config.agent_alive).await?;
    let kinds = kinds_json(kinds);
    let mut leases = Vec::new();
    while leases.len() < max {
        match claim_in(&mut tx, agent, &kinds, at, pin.as_ref()).await? {
            Some(l) => leases.push(l),
            None => break,
        }
    }
    tx.commit().await?;
    Ok(leases)
}

/// What a claim needs besides the agent and kinds: one instant for a whole batch (as
/// PostgreSQL's `now()` is one per transaction), the lease length, the most work a task may
/// declare (`TaskDb::claim_batch_within`) and the service half-life.
#[derive(Debug, Clone, Copy)]
struct ClaimAt {
    now: i64,
    lease: Duration,
    max_work: Option<i64>,
    half_life: Duration,
    assumed_task_time: Duration,
}

impl ClaimAt {
    fn new(lease: Duration, max_work: Option<i64>, config: &Config) -> Self {
        ClaimAt {
            now: now_us(),
            lease,
            max_work,
            half_life: config.service_half_life,
            assumed_task_time: config.assumed_task_time,
        }
    }
}

/// The reservation `agent` is pinned to among the streams of `kinds`, if any (see
/// [`crate::pin`]); reads no agent when no stream has a reservation.
async fn pin_in(
    tx: &mut SqliteConnection,
    agent: &str,
    kinds: &[Kind],
    now: i64,
    alive: Duration,
) -> Result<Option<Pin>> {
    let rows =
        sqlx::query("SELECT id, kind, reserved, reserved_idle FROM streams WHERE reserved > 0")
            .fetch_all(&mut *tx)
            .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let reservations: Vec<Reservation> = rows
        .iter()
        .map(|r| Reservation {
            stream_id: r.get(0),
            kind: r.get(1),
            reserved: r.get(2),
            idle: ReservationIdle::parse(r.get::<&str, _>(3)),
        })
        .collect();
    let agents = super::registry::live_agents(&mut *tx, now.saturating_sub(micros(alive))).await?;
    let pins = pin_agents(&reservations, &agents);
    let Some(pin) = pin_of(agent, &pins) else {
        return Ok(None);
    };
    let serves = |r: &Reservation| kinds.iter().any(|k| k.as_str() == r.kind);
    let claimable = reservations.iter().any(|r| r.stream_id == pin.stream_id && serves(r));
    Ok(claimable.then(|| pin.clone()))
}

/// Whether the stream's most urgent claimable job is [`at_risk`]: its unfinished tasks at the
/// kind's measured task time (the mean of its last [`RECENT_TASKS`] finished tasks, else the
/// configured assumption) against the time left until it is due. Streams without due jobs
/// cost one indexed lookup.
async fn stream_at_risk(tx: &mut SqliteConnection, stream: i64, at: ClaimAt) -> Result<bool> {
    let head: Option<(i64, i64)> = sqlx::query_as(
        "SELECT job_due, job_seq FROM tasks \
          WHERE stream_id = ?1 AND state = 'ready' AND not_before <= ?2 \
            AND (?3 IS NULL OR work IS NULL OR work <= ?3) AND job_due < ?4 \
          ORDER BY job_due LIMIT 1",
    )
    .bind(stream)
    .bind(at.now)
    .bind(at.max_work)
    .bind(i64::MAX)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((due, job_seq)) = head else {
        return Ok(false);
    };
    let unfinished: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tasks WHERE job_seq = ?1 AND state IN ('pending', 'ready', 'leased')",
    )
    .bind(job_seq)
    .fetch_one(&mut *tx)
    .await?;
    let mean_us: Option<f64> = sqlx::query_scalar(
        "SELECT avg(finished_at - started_at) FROM ( \
             SELECT finished_at, started_at FROM tasks \
              WHERE kind = (SELECT kind FROM streams WHERE id = ?1) AND state = 'done' \
                AND started_at IS NOT NULL AND finished_at IS NOT NULL \
              ORDER BY finished_at DESC LIMIT ?2)",
    )
    .bind(stream)
    .bind(RECENT_TASKS)
    .fetch_one(&mut *tx)
    .await?;
    let task_secs = mean_us.map_or(at.assumed_task_time.as_secs_f64(), |us| us / 1e6);
    Ok(at_risk((due - at.now) as f64 / 1e6, unfinished, task_secs))
}

/// The streams of `kinds` (a JSON array) with claimable work, as the policy sees them: recent
/// service decayed to now, and whether their most urgent job is at risk.
async fn snapshots(
    tx: &mut SqliteConnection,
    kinds: &str,
    at: ClaimAt,
) -> Result<Vec<StreamSnapshot>> {
    let rows = sqlx::query(
        "SELECT s.id, s.running, s.reserved, s.priority_multiplier, \
                (SELECT min(t.ready_at) FROM tasks t \
                  WHERE t.stream_id = s.id AND t.state = 'ready' AND t.not_before <= ?2 \
                    AND (?3 IS NULL OR t.work IS NULL OR t.work <= ?3)), \
                s.served, s.served_at \
           FROM streams s WHERE s.kind IN (SELECT value FROM json_each(?1))",
    )
    .bind(kinds)
    .bind(at.now)
    .bind(at.max_work)
    .fetch_all(&mut *tx)
    .await?;
    let mut snaps: Vec<StreamSnapshot> = rows
        .iter()
        .filter_map(|r| {
            r.get::<Option<i64>, _>(4).map(|oldest| StreamSnapshot {
                stream_id: r.get(0),
                running: r.get(1),
                reserved: r.get(2),
                priority_multiplier: r.get(3),
                served: served_now(r.get(5), r.get(6), at),
                oldest_ready: oldest,
                at_risk: false,
            })
        })
        .collect();
    for snap in &mut snaps {
        snap.at_risk = stream_at_risk(tx, snap.stream_id, at).await?;
    }
    Ok(snaps)
}

/// Claims the best ready task of `kinds` (a JSON array) inside a write transaction, or `None`.
/// A pinned agent takes its reservation's task while there is one; otherwise it serves the
/// others, or nothing when its reservation says `wait`.
async fn claim_in(
    tx: &mut SqliteConnection,
    agent: &str,
    kinds: &str,
    at: ClaimAt,
    pin: Option<&Pin>,
) -> Result<Option<Lease>> {
    let now = at.now;
    let mut snaps = snapshots(tx, kinds, at).await?;
    rank(&mut snaps);
    let best = match pin {
        None => snaps.first(),
        Some(p) => match snaps.iter().find(|s| s.stream_id == p.stream_id) {
            Some(mine) => Some(mine),
            None if p.idle == ReservationIdle::Wait => None,
            None => snaps.first(),
        },
    };
    let Some(best) = best else {
        return Ok(None);
    };
    let expires = now + at.lease.as_micros() as i64;
    let r = sqlx::query(
        "UPDATE tasks SET state = 'leased', attempt = attempt + 1, agent = ?2, lease_expires_at = ?3, \
                started_at = coalesce(started_at, ?4) \
          WHERE id = (SELECT id FROM tasks WHERE stream_id = ?1 AND state = 'ready' AND not_before <= ?4 \
                         AND (?5 IS NULL OR work IS NULL OR work <= ?5) \
                       ORDER BY job_due, job_priority DESC, job_seq, depth, id LIMIT 1) \
         RETURNING id, job_seq, key, kind, attempt, max_attempts, payload",
    )
    .bind(best.stream_id)
    .bind(agent)
    .bind(expires)
    .bind(now)
    .bind(at.max_work)
    .fetch_one(&mut *tx)
    .await?;
    let mut charged = best.clone();
    charged.charge();
    sqlx::query(
        "UPDATE streams SET running = running + 1, served = ?2, served_at = ?3 WHERE id = ?1",
    )
    .bind(best.stream_id)
    .bind(charged.served)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let job = sqlx::query("SELECT id, tenant FROM jobs WHERE seq = ?1")
        .bind(r.get::<i64, _>(1))
        .fetch_one(&mut *tx)
        .await?;
    Ok(Some(Lease {
        task_id: r.get(0),
        job_id: uuid(job.get::<&str, _>(0))?,
        key: r.get(2),
        kind: Kind::new(r.get::<String, _>(3)),
        tenant: job.get(1),
        attempt: r.get(4),
        max_attempts: r.get(5),
        expires_at: ts(expires),
        payload: json(r.get::<&str, _>(6))?,
    }))
}

/// A stream's service as of `at.now`, from what was stored at `served_at`.
fn served_now(served: f64, served_at: i64, at: ClaimAt) -> f64 {
    let age = Duration::from_micros(u64::try_from(at.now - served_at).unwrap_or(0));
    decayed(served, age, at.half_life)
}
