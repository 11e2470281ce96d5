//! The agent registry as operators see it (`GET /admin/agents`): every agent TaskDB knows, what
//! it said about its host (its [`AgentProfile`]), whether it is alive, and the leases it holds.
//!
//! An agent is dead once it has missed [`DEAD_AFTER_HEARTBEATS`] of its own heartbeat periods
//! (and at least [`MIN_DEAD_AFTER_SECS`]); the housekeeper drops it from the registry after
//! `--agent-retention-hours` (a day by default), until then it is listed as dead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tiffin_taskdb::{AgentInfo, JobFilter, JobState, TaskState};
use tiffin_workflow::AgentProfile;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::openapi::answers;
use crate::state::AppState;

/// Heartbeat periods an agent may miss before it is listed as dead.
pub const DEAD_AFTER_HEARTBEATS: f64 = 3.0;
/// The shortest silence that makes an agent dead, whatever its heartbeat: one slow database
/// round trip must not kill an agent that reports every half second.
pub const MIN_DEAD_AFTER_SECS: f64 = 15.0;
/// The heartbeat assumed for agents that do not announce theirs (older agents).
pub const DEFAULT_HEARTBEAT_SECS: f64 = 5.0;

/// Seconds of silence after which an agent with this heartbeat period is dead.
pub fn dead_after_secs(heartbeat_secs: Option<f64>) -> f64 {
    let beat = heartbeat_secs.filter(|s| s.is_finite() && *s > 0.0);
    (beat.unwrap_or(DEFAULT_HEARTBEAT_SECS) * DEAD_AFTER_HEARTBEATS).max(MIN_DEAD_AFTER_SECS)
}

/// Whether an agent last seen `silent_secs` ago, reporting every `heartbeat_secs`, is alive.
pub fn is_alive(silent_secs: f64, heartbeat_secs: Option<f64>) -> bool {
    silent_secs <= dead_after_secs(heartbeat_secs)
}

/// One registered agent with its profile (when it announced one it could read) and liveness.
#[derive(Clone, Debug)]
pub struct Registered {
    /// The registry row.
    pub agent: AgentInfo,
    /// What it said about itself, if it is a profile.
    pub profile: Option<AgentProfile>,
    /// Seconds since its last report.
    pub silent_secs: f64,
}

impl Registered {
    fn new(agent: AgentInfo, now: DateTime<Utc>) -> Self {
        let profile = serde_json::from_value(agent.info.clone()).ok();
        let silent_secs = (now - agent.last_seen).num_milliseconds().max(0) as f64 / 1000.0;
        Registered { agent, profile, silent_secs }
    }

    /// Whether it still reports.
    pub fn alive(&self) -> bool {
        is_alive(self.silent_secs, self.profile.as_ref().map(|p| p.heartbeat_secs))
    }

    /// Tasks it works on at once (1 when it did not say).
    pub fn slots(&self) -> u64 {
        self.profile.as_ref().map_or(1, |p| u64::from(p.concurrency.max(1)))
    }

    /// Whether it serves `kind`.
    pub fn serves(&self, kind: &str) -> bool {
        self.agent.kinds.iter().any(|k| k == kind)
    }
}

/// Every agent in the registry, most recently seen first.
pub async fn registered(st: &AppState) -> Result<Vec<Registered>, ApiError> {
    let now = Utc::now();
    let agents = st.db().agents(Duration::MAX).await?;
    Ok(agents.into_iter().map(|a| Registered::new(a, now)).collect())
}

/// The leases running jobs hold now, by agent id (leases name `<agent>/<slot>`).
pub(crate) async fn leases(st: &AppState) -> Result<BTreeMap<String, Vec<Value>>, ApiError> {
    let running = JobFilter { state: Some(JobState::Running), limit: 1000, ..Default::default() };
    let mut leases: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for job in st.db().list_jobs(running).await? {
        for t in st.db().tasks(job.id).await? {
            if t.state == TaskState::Leased
                && let Some(slot) = &t.agent
            {
                let id = slot.rsplit_once('/').map_or(slot.as_str(), |(id, _)| id).to_string();
                leases.entry(id).or_default().push(json!({
                    "job": job.id, "task": t.key, "kind": t.kind, "attempt": t.attempt, "slot": slot,
                }));
            }
        }
    }
    Ok(leases)
}

/// The listing entry of one agent: its row, its profile's fields, liveness and leases.
fn entry(r: &Registered, held: Vec<Value>) -> Value {
    let heartbeat = r.profile.as_ref().map(|p| p.heartbeat_secs);
    let mut v = json!({
        "agent": r.agent.id, "kinds": r.agent.kinds,
        "status": if r.alive() { "alive" } else { "dead" },
        "last_seen": r.agent.last_seen, "first_seen": r.agent.first_seen,
        "seconds_since_seen": r.silent_secs, "dead_after_secs": dead_after_secs(heartbeat),
        "leases": held,
    });
    let about = match &r.profile {
        Some(p) => serde_json::to_value(p).expect("a profile serializes"),
        None => json!({ "info": r.agent.info }),
    };
    if let (Some(v), Value::Object(about)) = (v.as_object_mut(), about) {
        v.extend(about);
    }
    v
}

/// `GET /admin/agents`: every registered agent, alive ones and those that stopped reporting
/// (until the housekeeper drops them), with their host, resources and leases. An agent id that
/// holds a lease but is not registered (an older agent) is listed from its leases alone.
#[utoipa::path(get, path = "/admin/agents", tag = "admin", security(("admin_key" = [])),
    responses(
        (status = 200, description = "The agents, most recently seen first", body = Vec<crate::openapi::schemas::Agent>),
        answers::DbError,
    ))]
pub async fn agents(State(st): State<Arc<AppState>>, _: Admin) -> Result<Response, ApiError> {
    let mut leases = leases(&st).await?;
    let mut list: Vec<Value> = registered(&st)
        .await?
        .iter()
        .map(|r| entry(r, leases.remove(&r.agent.id).unwrap_or_default()))
        .collect();
    for (agent, held) in leases {
        list.push(json!({ "agent": agent, "kinds": null, "last_seen": null, "leases": held }));
    }
    Ok(Json(list).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_die_after_three_of_their_heartbeats_and_never_under_fifteen_seconds() {
        assert_eq!(dead_after_secs(Some(10.0)), 30.0);
        assert_eq!(dead_after_secs(Some(0.5)), MIN_DEAD_AFTER_SECS);
        assert_eq!(dead_after_secs(None), MIN_DEAD_AFTER_SECS, "5 s assumed: 15 s");
        assert_eq!(dead_after_secs(Some(f64::NAN)), MIN_DEAD_AFTER_SECS);
        assert!(is_alive(29.9, Some(10.0)));
        assert!(!is_alive(30.1, Some(10.0)));
        assert!(is_alive(0.0, None) && !is_alive(16.0, None));
    }

    #[test]
    fn entries_carry_the_profile_or_the_raw_info() {
        let now = Utc::now();
        let row = |info: Value| AgentInfo {
            id: "a".into(),
            kinds: vec!["prove".into()],
            info,
            first_seen: now,
            last_seen: now - chrono::Duration::seconds(40),
        };
        let profile = AgentProfile {
            host: "gpu-7".into(),
            version: "0.1.0".into(),
            cores: 16,
            memory_bytes: 1 << 36,
            gpu: "none".into(),
            gpus: 0,
            max_po2: 22,
            concurrency: 2,
            heartbeat_secs: 20.0,
        };
        let known = Registered::new(row(serde_json::to_value(&profile).unwrap()), now);
        assert!(known.alive(), "40 s is under 3 × 20 s");
        assert_eq!(known.slots(), 2);
        let v = entry(&known, Vec::new());
        assert_eq!((v["host"].as_str(), v["max_po2"].as_u64()), (Some("gpu-7"), Some(22)));
        assert_eq!(v["status"], "alive");
        let old = Registered::new(row(json!({ "some": "thing" })), now);
        assert!(!old.alive(), "40 s is over 15 s");
        let v = entry(&old, Vec::new());
        assert_eq!(
            (v["status"].as_str(), v["info"]["some"].as_str()),
            (Some("dead"), Some("thing"))
        );
        assert_eq!(old.slots(), 1);
    }
}
