//! Which agents are alive, and an agent of the registry as the API reports it: the rule that
//! the agents list, the queue report and the capacity report share.

use chrono::{DateTime, Utc};
use tiffin_taskdb::AgentInfo;
use tiffin_workflow::AgentProfile;

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
    pub(crate) fn new(agent: AgentInfo, now: DateTime<Utc>) -> Self {
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
