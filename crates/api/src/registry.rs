//! The agent registry as operators see it (`GET /admin/agents`): every agent TaskDB knows, what
//! it said about its host (its [`AgentProfile`]), whether it is alive, and the leases it holds.
//!
//! An agent is dead once it has missed [`crate::agent_liveness::DEAD_AFTER_HEARTBEATS`] of its own
//! heartbeat periods (and at least [`crate::agent_liveness::MIN_DEAD_AFTER_SECS`]); the housekeeper drops it from the registry after
//! `--agent-retention-hours` (a day by default), until then it is listed as dead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};
use tiffin_taskdb::{JobFilter, JobState, TaskState};

use crate::agent_liveness::{Registered, dead_after_secs};
use crate::auth::Admin;
use crate::error::ApiError;
use crate::openapi::answers;
use crate::state::AppState;

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
    use crate::agent_liveness::{MIN_DEAD_AFTER_SECS, is_alive};
    use tiffin_taskdb::AgentInfo;
    use tiffin_workflow::AgentProfile;

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
