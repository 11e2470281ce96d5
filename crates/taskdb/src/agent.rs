//! Agents as operators see them: each agent reports itself every heartbeat period, busy or
//! idle, so `tiffin admin agents` lists idle agents too, not only those holding a lease.
//!
//! Besides its kinds, a report carries a free-form JSON `info` (what the agent says about its
//! host: the workflow puts host name, version, cores, memory, GPU and limits there); TaskDB
//! stores the latest one as it is and never reads it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One agent's last report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The agent's id (its leases name `<id>/<slot>`; the workflow's agents `<id>/slots`).
    pub id: String,
    /// The worker kinds it serves.
    pub kinds: Vec<String>,
    /// What it said about itself in its last report (`null` from agents that say nothing).
    #[serde(default)]
    pub info: serde_json::Value,
    /// When it first reported.
    pub first_seen: DateTime<Utc>,
    /// When it last reported.
    pub last_seen: DateTime<Utc>,
}

/// A duration in microseconds for the backends' time arithmetic, capped at about 285 years so
/// that "everything" (`Duration::MAX`) overflows neither `now - d` nor a timestamp type.
pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX).min(i64::MAX / 1024)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn long_windows_do_not_overflow() {
        assert_eq!(super::micros(Duration::from_millis(3)), 3_000);
        assert!(super::micros(Duration::MAX) > 0);
        assert!(super::micros(Duration::MAX).checked_mul(2).is_some());
    }
}
