//! Helpers the SQLite backend's statements share: time in microseconds, row decoding.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{Error, Result};
pub(super) use crate::rows::{job_state, task_state};
use crate::task::Kind;

pub(super) fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

pub(super) fn ts(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(super) fn ots(us: Option<i64>) -> Option<DateTime<Utc>> {
    us.map(ts)
}

pub(super) fn json(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("bad JSON in database: {e}")))
}

pub(super) fn ojson(s: Option<String>) -> Result<Option<Value>> {
    s.as_deref().map(json).transpose()
}

pub(super) fn uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| Error::Corrupt(format!("bad job id {s:?}: {e}")))
}

pub(super) fn kinds_json(kinds: &[Kind]) -> String {
    serde_json::to_string(&kinds.iter().map(Kind::as_str).collect::<Vec<_>>())
        .expect("strings serialize")
}
