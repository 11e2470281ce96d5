//! Schemas of answers that have no Rust type of their own elsewhere in this crate: bodies the
//! handlers build with `json!` or assemble from several tables ([`TenantView`]), and the
//! TaskDB's and the agents' types as the admin routes show them.
//! All but [`TenantView`] exist only to describe those answers; the API tests check real answers against them,
//! so they cannot drift from what the handlers send.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::tenants::{KeyInfo, Tenant};

/// A tenant as the admin sees it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantView {
    /// Quotas, usage and priority.
    #[serde(flatten)]
    pub tenant: Tenant,
    /// Reserved tasks per kind (only kinds with a reservation).
    pub reservations: BTreeMap<String, i32>,
    /// What each reservation's pinned agents do while the tenant has nothing of the kind
    /// ready: `serve-others` or `wait` (kinds with a reservation or set to `wait`).
    #[serde(default)]
    pub reservation_idle: BTreeMap<String, String>,
    /// Its keys.
    pub keys: Vec<KeyInfo>,
}

/// A new session or SNARK job (Bonsai's `CreateSessRes`).
#[derive(ToSchema)]
pub struct Created {
    /// Its id.
    pub uuid: String,
    /// Tiffin extension: `true` when the session is an earlier one of this tenant that proved
    /// the same image, input, assumptions and receipt kind (the receipt cache); absent otherwise.
    pub cached: Option<bool>,
}

/// A stopped session.
#[derive(ToSchema)]
pub struct Stopped {
    /// `ABORTED`.
    pub status: String,
}

/// The risc0-zkvm versions the cluster proves with (Bonsai's `VersionInfo`).
#[derive(ToSchema)]
pub struct Version {
    /// Versions, e.g. `3.1.0-rc.1`.
    pub risc0_zkvm: Vec<String>,
}

/// `/health`: `ok` for each dependency, else its error.
#[derive(ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    /// `ok` or why the task database is unreachable.
    pub taskdb: String,
    /// `ok` or why the cold store is unreachable.
    pub cold_store: String,
    /// The server's version.
    pub version: String,
}

/// A created tenant with its first key.
#[derive(ToSchema)]
pub struct TenantCreated {
    /// The tenant.
    pub tenant: TenantView,
    /// Its first API key (shown only now).
    pub key: String,
    /// That key's id.
    pub key_id: String,
}

/// A created API key.
#[derive(ToSchema)]
pub struct KeyCreated {
    /// The key (shown only now).
    pub key: String,
    /// Its id.
    pub id: String,
    /// Its tenant's name.
    pub tenant: String,
}

/// A cancelled job.
#[derive(ToSchema)]
pub struct Cancelled {
    /// `true`.
    pub cancelled: bool,
}

/// A restarted job.
#[derive(ToSchema)]
pub struct Restarted {
    /// `true`.
    pub restarted: bool,
}

/// A job's lifecycle state.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
}

/// A task's state.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    Ready,
    Leased,
    Done,
    Failed,
    Cancelled,
}

/// Tasks of one kind in one state.
#[derive(ToSchema)]
pub struct TaskCount {
    /// Task kind.
    pub kind: String,
    /// Task state.
    pub state: TaskState,
    /// How many.
    pub count: i64,
}

/// The first failed task of a job.
#[derive(ToSchema)]
pub struct TaskFailure {
    /// Task key.
    pub task: String,
    /// Task kind.
    pub kind: String,
    /// The error the agent reported.
    pub error: String,
}

/// A job (a session is a job) as the TaskDB knows it.
#[derive(ToSchema)]
pub struct Job {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its tenant's id.
    pub tenant: String,
    /// Lifecycle state.
    pub state: JobState,
    /// What the job is (a session's spec, or `snark_of`).
    pub meta: Value,
    /// Its output, if any.
    pub output: Option<Value>,
    /// Why it failed, was cancelled or timed out.
    pub error: Option<String>,
    /// The first task that failed.
    pub first_failure: Option<TaskFailure>,
    /// Tasks not yet done.
    pub remaining: i64,
    /// Task counts per kind and state.
    pub counts: Vec<TaskCount>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its first task was claimed.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its deadline, if any.
    pub deadline: Option<DateTime<Utc>>,
}

/// One line of the job listing.
#[derive(ToSchema)]
pub struct JobSummary {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its tenant's id.
    pub tenant: String,
    /// Lifecycle state.
    pub state: JobState,
    /// What the job is (a session's spec, or `snark_of`).
    pub meta: Value,
    /// Why it failed, was cancelled or timed out.
    pub error: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A stream's scheduling settings.
#[derive(ToSchema)]
pub struct StreamConfig {
    /// Weight in the fair share (> 0).
    pub priority_multiplier: f64,
    /// Concurrent tasks reserved ahead of the shared pool.
    pub reserved: i32,
}

/// One stream (tenant, worker kind) of the queue.
#[derive(ToSchema)]
pub struct Stream {
    /// The tenant's name (its id if it has none).
    pub tenant: String,
    /// Worker kind.
    pub kind: String,
    /// Settings.
    pub config: StreamConfig,
    /// Tasks leased now.
    pub running: i64,
    /// Tasks ready to be claimed.
    pub ready: i64,
}

/// A task an agent holds now.
#[derive(ToSchema)]
pub struct Lease {
    /// Its job.
    pub job: uuid::Uuid,
    /// Task key.
    pub task: String,
    /// Task kind.
    pub kind: String,
    /// Attempt number.
    pub attempt: i32,
    /// The agent's slot (`<agent>/<n>`).
    pub slot: String,
}

/// A registered agent: its registry row, what it said about its host, liveness and leases.
/// An agent that holds leases but never registered has only `agent`, `kinds: null`,
/// `last_seen: null` and `leases`.
#[derive(ToSchema)]
pub struct Agent {
    /// Its id.
    pub agent: String,
    /// Worker kinds it serves.
    pub kinds: Option<Vec<String>>,
    /// `alive` or `dead`.
    pub status: Option<String>,
    /// Its last report.
    pub last_seen: Option<DateTime<Utc>>,
    /// Its first report.
    pub first_seen: Option<DateTime<Utc>>,
    /// Seconds since its last report.
    pub seconds_since_seen: Option<f64>,
    /// Seconds of silence after which it is dead.
    pub dead_after_secs: Option<f64>,
    /// The tasks it holds.
    pub leases: Vec<Lease>,
    /// Host name.
    pub host: Option<String>,
    /// Its Tiffin version.
    pub version: Option<String>,
    /// CPU cores it may use.
    pub cores: Option<u32>,
    /// The host's memory in bytes (0 when unknown).
    pub memory_bytes: Option<u64>,
    /// GPU models (`none` without a GPU).
    pub gpu: Option<String>,
    /// Number of GPUs.
    pub gpus: Option<u32>,
    /// Largest segment (po2) it accepts.
    pub max_po2: Option<u32>,
    /// Tasks it works on at once.
    pub concurrency: Option<u32>,
    /// How often it reports, seconds.
    pub heartbeat_secs: Option<f64>,
    /// What an agent that announced no profile said about itself.
    pub info: Option<Value>,
}
