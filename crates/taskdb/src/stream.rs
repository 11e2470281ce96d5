//! Streams: the scheduling unit, one per (tenant, worker kind).
//!
//! A stream has a `priority_multiplier` (its weight in fair sharing) and a `reserved` number of
//! concurrent tasks it gets ahead of the shared pool. Streams are created on first use with
//! multiplier 1 and no reservation.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Scheduling settings of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StreamConfig {
    /// Weight in fair sharing (> 0): a stream with multiplier 3 is served three times the tasks
    /// of one with multiplier 1 when both have work (counted as recent service, see
    /// [`crate::policy`]).
    pub priority_multiplier: f64,
    /// Concurrent tasks this stream gets ahead of the fair-share pool (≥ 0).
    pub reserved: i32,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig { priority_multiplier: 1.0, reserved: 0 }
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
