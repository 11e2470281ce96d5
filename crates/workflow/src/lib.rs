//! The proving workflow on top of TaskDB and the stores (docs/architecture.md, "Components" and
//! "The life of a session"): the [`planner`] that shapes each job's DAG, one handler per task
//! kind ([`handlers`]), the [`agent`] loop that claims, heartbeats and completes tasks
//! (announcing its [`profile`]), the [`crew`] of agents a process runs in itself, the
//! [`housekeeper`], the [`cluster`] facade that submits jobs and reads their results, the
//! killable proving [`worker`] and the process's one [`metrics`] recorder.

pub mod agent;
pub mod blobs;
pub mod cluster;
pub mod completions;
pub mod crew;
pub mod error;
pub mod handlers;
pub mod housekeeper;
pub mod kinds;
pub mod metrics;
pub mod planner;
pub mod profile;
pub mod progress;
pub mod repair;
pub mod spec;
pub mod worker;

pub use agent::{Agent, AgentConfig};
pub use cluster::{Cluster, JobOutcome, ProveRequest, StartOptions};
pub use crew::{Crew, Role, Roster};
pub use error::TaskError;
pub use housekeeper::Housekeeper;
pub use profile::AgentProfile;
pub use progress::{Progress, Stage};
pub use spec::{JobSpec, TaskPayload};
pub use worker::Isolation;
