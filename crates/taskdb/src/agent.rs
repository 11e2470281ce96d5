//! Agents as operators see them: each agent reports itself every heartbeat period, busy or
//! idle, so `tiffin admin agents` lists idle agents too, not only those holding a lease.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One agent's last report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The agent's id (its leases name `<id>/<slot>`).
    pub id: String,
    /// The worker kinds it serves.
    pub kinds: Vec<String>,
    /// When it first reported.
    pub first_seen: DateTime<Utc>,
    /// When it last reported.
    pub last_seen: DateTime<Utc>,
}
