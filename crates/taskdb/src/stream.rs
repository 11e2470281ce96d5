//! Streams: the scheduling unit, one per (tenant, worker kind).
//!
//! A stream has a `priority_multiplier` (its weight in fair sharing) and a `reserved` number of
//! agents pinned to it (see [`crate::policy::pin_agents`]): while it has ready work those agents
//! take only its tasks; when it has none they serve others or wait ([`ReservationIdle`]).
//! Streams are created on first use with multiplier 1 and no reservation.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Scheduling settings of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StreamConfig {
    /// Weight in fair sharing (> 0): a stream with multiplier 3 is served three times the tasks
    /// of one with multiplier 1 when both have work (counted as recent service, see
    /// [`crate::policy`]).
    pub priority_multiplier: f64,
    /// Agents pinned to this stream (≥ 0): the first live agents of the registry serving its
    /// kind take only its tasks while it has ready work. Also a floor of concurrent tasks any
    /// agent fills first, for claimers that never report to the registry.
    pub reserved: i32,
    /// What the pinned agents do while the stream has nothing ready.
    #[serde(default)]
    pub idle: ReservationIdle,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig { priority_multiplier: 1.0, reserved: 0, idle: ReservationIdle::ServeOthers }
    }
}

/// What the agents pinned to a reservation do while its stream has no ready task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReservationIdle {
    /// They claim other streams' tasks by the fair share (the default); a task of the
    /// reserved stream that becomes ready waits for one of them to finish.
    #[default]
    ServeOthers,
    /// They claim nothing, so the reserved stream's next task starts at once.
    Wait,
}

impl ReservationIdle {
    /// The stored name: `serve-others` or `wait`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationIdle::ServeOthers => "serve-others",
            ReservationIdle::Wait => "wait",
        }
    }

    /// Parses a stored name; anything unknown serves others.
    pub fn parse(s: &str) -> Self {
        if s == "wait" { ReservationIdle::Wait } else { ReservationIdle::ServeOthers }
    }
}

impl StreamConfig {
    /// Rejects settings the scheduler cannot use.
    pub fn validate(&self) -> Result<()> {
        if !(self.priority_multiplier.is_finite() && self.priority_multiplier > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "priority_multiplier must be a finite number > 0, got {}",
                self.priority_multiplier
            )));
        }
        if self.reserved < 0 {
            return Err(Error::InvalidArgument(format!(
                "reserved must be >= 0, got {}",
                self.reserved
            )));
        }
        Ok(())
    }
}

/// A stream as shown to operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// Tenant.
    pub tenant: String,
    /// Worker kind.
    pub kind: String,
    /// Settings.
    pub config: StreamConfig,
    /// Tasks currently leased (the transactionally maintained counter).
    pub running: i64,
    /// Tasks ready to be claimed.
    pub ready: i64,
}
