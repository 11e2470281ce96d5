//! The cluster at a glance (`GET /admin/overview`), what the status page ([`crate::ui`]) shows:
//! running and recently ended jobs with their progress, the agents and what they work on, the
//! queues that hold work, and the latest failures with their error codes — one admin request
//! per refresh instead of one per job.
//!
//! [`Snapshot::overview`] is pure: the handler reads the TaskDB, the tenant store and the agent
//! registry into a [`Snapshot`], and the overview is built (and unit-tested) from that alone.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tiffin_taskdb::{JobFilter, JobId, JobState, JobStatus, JobSummary, StreamInfo};
use tiffin_workflow::Progress;

use crate::agent_liveness::Registered;
use crate::auth::Admin;
use crate::error::ApiError;
use crate::openapi::answers;
use crate::registry;
use crate::session::{JobKind, job_kind};
use crate::state::AppState;
use crate::status::{error_message, status_name};

/// Most running jobs listed (newest first).
pub const MAX_RUNNING: u32 = 100;
/// Ended jobs listed after the running ones (newest first).
pub const RECENT_ENDED: usize = 20;
/// Failed jobs listed under failures (newest first).
pub const RECENT_FAILURES: u32 = 10;

/// `GET /admin/overview`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Overview {
    /// When it was read (the ages below are relative to it).
    pub at: DateTime<Utc>,
    /// Running jobs, then recently ended ones; newest first within each.
    pub jobs: Vec<JobRow>,
    /// Every registered agent, most recently seen first.
    pub agents: Vec<AgentRow>,
    /// Streams (tenant, kind) with tasks ready or running.
    pub queues: Vec<QueueRow>,
    /// The latest failed jobs.
    pub failures: Vec<FailureRow>,
}

/// One job and where it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobRow {
    /// The job (session or snark id).
    #[schema(value_type = String, format = Uuid)]
    pub id: JobId,
    /// Its tenant's name (its id if the tenant was deleted).
    pub tenant: String,
    /// `prove`, `execute` (execute-only session), `snark`, or `other`.
    pub kind: String,
    /// Bonsai's status: `RUNNING`, `SUCCEEDED`, `FAILED`, `ABORTED` or `TIMED_OUT`.
    pub status: String,
    /// The stage while it runs (`Setup`, `Executor`, `ProveSegments: 0/1`, …).
    pub stage: Option<String>,
    /// Segments proven, of `segments` produced so far.
    pub proven: i64,
    /// Segments produced so far.
    pub segments: i64,
    /// Steps done (execution, segment proofs, joins), of `steps_total` planned.
    pub steps_done: u64,
    /// Steps planned so far (grows while the guest executes).
    pub steps_total: u64,
    /// Seconds since it was created.
    pub age_secs: f64,
    /// Why it ended, when it did not succeed.
    pub error: Option<String>,
}

/// One agent and the tasks it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentRow {
    /// Its id.
    pub agent: String,
    /// The worker kinds it serves.
    pub kinds: Vec<String>,
    /// The host it said it runs on.
    pub host: Option<String>,
    /// Whether it still reports ([`crate::agent_liveness::is_alive`]).
    pub alive: bool,
    /// Seconds since its last heartbeat.
    pub seconds_since_seen: f64,
    /// The tasks it holds leases on now.
    pub tasks: Vec<AgentTask>,
}

/// A task an agent works on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentTask {
    /// The job.
    pub job: String,
    /// The task's key within the job.
    pub task: String,
    /// Its worker kind.
    pub kind: String,
}

/// The work of one tenant for one worker kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueRow {
    /// The tenant's name (its id if the tenant was deleted).
    pub tenant: String,
    /// The worker kind.
    pub kind: String,
    /// Tasks ready to be claimed.
    pub ready: i64,
    /// Tasks leased to agents.
    pub running: i64,
}

/// A failed job and its first failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailureRow {
    /// The job.
    #[schema(value_type = String, format = Uuid)]
    pub job: JobId,
    /// Its tenant's name.
    pub tenant: String,
    /// The stable error code the message starts with or names (`TIFFIN-ZKVM-003`), if any.
    pub code: Option<String>,
    /// The first failed task's error (else the job's).
    pub error: String,
    /// The kind of the task that failed, if one did.
    pub task_kind: Option<String>,
    /// Seconds since the job ended.
    pub ended_secs_ago: Option<f64>,
}

/// What the overview is built from.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// When it was read.
    pub now: DateTime<Utc>,
    /// Running jobs and recent ended ones, in any order, possibly repeated.
    pub jobs: Vec<JobStatus>,
    /// The latest failed jobs.
    pub failed: Vec<JobStatus>,
    /// Tenant id → name.
    pub tenants: HashMap<String, String>,
    /// The agent registry.
    pub agents: Vec<Registered>,
    /// Leases held now by agent id, as [`registry`] lists them (`job`, `task`, `kind`).
    pub leases: BTreeMap<String, Vec<Value>>,
    /// The TaskDB's streams (tenant ids).
    pub streams: Vec<StreamInfo>,
}

/// The first `TIFFIN-<AREA>-<digits>` code in an error message.
pub fn error_code(message: &str) -> Option<String> {
    let mut rest = message;
    while let Some(at) = rest.find("TIFFIN-") {
        let candidate: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '-')
            .collect();
        let parts: Vec<&str> = candidate.trim_end_matches('-').split('-').collect();
        if let [_, area, number] = parts.as_slice()
            && !area.is_empty()
            && area.chars().all(|c| c.is_ascii_uppercase())
            && !number.is_empty()
            && number.chars().all(|c| c.is_ascii_digit())
        {
            return Some(parts.join("-"));
        }
        rest = &rest[at + "TIFFIN-".len()..];
    }
    None
}

fn secs(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

impl Snapshot {
    fn tenant(&self, id: &str) -> String {
        self.tenants.get(id).cloned().unwrap_or_else(|| id.to_string())
    }

    fn job(&self, job: &JobStatus) -> JobRow {
        let progress = Progress::of(job);
        let (steps_done, steps_total) = progress.steps();
        let kind = match job_kind(job) {
            Some(JobKind::Snark(_)) => "snark",
            Some(JobKind::Session(spec)) if spec.execute_only => "execute",
            Some(JobKind::Session(_)) => "prove",
            None => "other",
        };
        JobRow {
            id: job.id,
            tenant: self.tenant(&job.tenant),
            kind: kind.into(),
            status: status_name(job.state).into(),
            stage: (job.state == JobState::Running).then(|| progress.stage().to_string()),
            proven: progress.proven,
            segments: progress.segments,
            steps_done,
            steps_total,
            age_secs: secs(job.created_at, self.now),
            error: error_message(job),
        }
    }

    fn agent(&self, r: &Registered) -> AgentRow {
        let field = |v: &Value, name: &str| match &v[name] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let tasks = self.leases.get(&r.agent.id).into_iter().flatten();
        AgentRow {
            agent: r.agent.id.clone(),
            kinds: r.agent.kinds.clone(),
            host: r.profile.as_ref().map(|p| p.host.clone()),
            alive: r.alive(),
            seconds_since_seen: r.silent_secs,
            tasks: tasks
                .map(|l| AgentTask {
                    job: field(l, "job"),
                    task: field(l, "task"),
                    kind: field(l, "kind"),
                })
                .collect(),
        }
    }

    fn failure(&self, job: &JobStatus) -> FailureRow {
        let error = error_message(job).unwrap_or_default();
        FailureRow {
            job: job.id,
            tenant: self.tenant(&job.tenant),
            code: error_code(&error),
            error,
            task_kind: job.first_failure.as_ref().map(|f| f.kind.clone()),
            ended_secs_ago: job.finished_at.map(|t| secs(t, self.now)),
        }
    }

    /// The overview: running jobs before ended ones (each newest first, each job once),
    /// agents as registered, queues with work by tenant name then kind, failures newest first.
    pub fn overview(&self) -> Overview {
        let mut jobs: Vec<&JobStatus> = Vec::new();
        for job in &self.jobs {
            if !jobs.iter().any(|j| j.id == job.id) {
                jobs.push(job);
            }
        }
        jobs.sort_by(|a, b| {
            (a.state != JobState::Running)
                .cmp(&(b.state != JobState::Running))
                .then(b.created_at.cmp(&a.created_at))
        });
        let mut queues: Vec<QueueRow> = self
            .streams
            .iter()
            .filter(|s| s.ready > 0 || s.running > 0)
            .map(|s| QueueRow {
                tenant: self.tenant(&s.tenant),
                kind: s.kind.clone(),
                ready: s.ready,
                running: s.running,
            })
            .collect();
        queues.sort_by(|a, b| (&a.tenant, &a.kind).cmp(&(&b.tenant, &b.kind)));
        let mut failed: Vec<&JobStatus> =
            self.failed.iter().filter(|j| j.state == JobState::Failed).collect();
        failed.sort_by_key(|j| std::cmp::Reverse(j.finished_at));
        Overview {
            at: self.now,
            jobs: jobs.into_iter().map(|j| self.job(j)).collect(),
            agents: self.agents.iter().map(|a| self.agent(a)).collect(),
            queues,
            failures: failed.into_iter().map(|j| self.failure(j)).collect(),
        }
    }
}

/// Job reads in flight at once: enough to be quick, few enough to leave the pool to sessions.
const READS_AT_ONCE: usize = 8;

/// The statuses of listed jobs; jobs collected since they were listed are left out.
async fn statuses(st: &AppState, listed: &[JobSummary]) -> Result<Vec<JobStatus>, ApiError> {
    let ids: Vec<JobId> = listed.iter().map(|j| j.id).collect();
    let reads: Vec<_> = futures::stream::iter(ids)
        .map(|id| {
            let db = st.db().clone();
            async move { db.job(id).await }
        })
        .buffered(READS_AT_ONCE)
        .collect()
        .await;
    let mut found = Vec::with_capacity(reads.len());
    for read in reads {
        match read {
            Ok(job) => found.push(job),
            Err(tiffin_taskdb::Error::JobNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(found)
}

/// `GET /admin/overview`.
#[utoipa::path(get, path = "/admin/overview", tag = "admin", security(("admin_key" = [])),
    responses(
        (status = 200, description = "What the status page shows: running and recent jobs with their progress, agents with their tasks, queues, recent failures", body = Overview),
        answers::DbOrTenantsError,
    ))]
pub async fn overview(
    State(st): State<Arc<AppState>>,
    _: Admin,
) -> Result<Json<Overview>, ApiError> {
    let db = st.db();
    let running =
        JobFilter { state: Some(JobState::Running), limit: MAX_RUNNING, ..Default::default() };
    let running = db.list_jobs(running).await?;
    // Newest first whatever their state: enough to find the latest ended ones past the running.
    let recent = JobFilter { limit: MAX_RUNNING + RECENT_ENDED as u32, ..Default::default() };
    let ended: Vec<JobSummary> = db
        .list_jobs(recent)
        .await?
        .into_iter()
        .filter(|j| j.state != JobState::Running)
        .take(RECENT_ENDED)
        .collect();
    let failed =
        JobFilter { state: Some(JobState::Failed), limit: RECENT_FAILURES, ..Default::default() };
    let failed = db.list_jobs(failed).await?;
    let tenants = st.tenants.tenants().await?.into_iter().map(|t| (t.id, t.name)).collect();
    let snapshot = Snapshot {
        now: Utc::now(),
        jobs: statuses(&st, &[running, ended].concat()).await?,
        failed: statuses(&st, &failed).await?,
        tenants,
        agents: registry::registered(&st).await?,
        leases: registry::leases(&st).await?,
        streams: db.streams().await?,
    };
    Ok(Json(snapshot.overview()))
}

#[cfg(test)]
mod tests {
    use tiffin_taskdb::TaskState::*;
    use tiffin_taskdb::{AgentInfo, StreamConfig, TaskFailure};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn error_codes_are_found_where_messages_name_them() {
        assert_eq!(
            error_code("TIFFIN-ZKVM-003 guest exceeded").as_deref(),
            Some("TIFFIN-ZKVM-003")
        );
        assert_eq!(
            error_code("task exec failed: TIFFIN-WORKFLOW-005 journal of 17 bytes").as_deref(),
            Some("TIFFIN-WORKFLOW-005")
        );
        assert_eq!(error_code("TIFFIN-API-020: x").as_deref(), Some("TIFFIN-API-020"));
        for none in ["", "no code", "TIFFIN-", "TIFFIN-ZKVM", "TIFFIN-zkvm-003", "TIFFIN-ZKVM-x"] {
            assert_eq!(error_code(none), None, "{none:?}");
        }
        assert_eq!(error_code("TIFFIN-bad then TIFFIN-API-001").as_deref(), Some("TIFFIN-API-001"));
    }

    fn at(now: DateTime<Utc>, secs_ago: i64) -> DateTime<Utc> {
        now - chrono::Duration::seconds(secs_ago)
    }

    fn job(
        now: DateTime<Utc>,
        tenant: &str,
        state: JobState,
        age: i64,
        counts: &[(&str, tiffin_taskdb::TaskState, i64)],
    ) -> JobStatus {
        let mut j = JobStatus::of_counts(state, counts);
        j.id = Uuid::new_v4();
        j.tenant = tenant.into();
        j.created_at = at(now, age);
        j.started_at = Some(at(now, age));
        j.finished_at = state.is_finished().then(|| at(now, 1));
        j.meta = serde_json::json!({ "snark_of": "x" });
        j
    }

    fn snapshot(now: DateTime<Utc>) -> Snapshot {
        Snapshot {
            now,
            jobs: Vec::new(),
            failed: Vec::new(),
            tenants: HashMap::from([("t-1".to_string(), "alice".to_string())]),
            agents: Vec::new(),
            leases: BTreeMap::new(),
            streams: Vec::new(),
        }
    }

    #[test]
    fn running_jobs_come_first_with_their_stage_and_tenant_name() {
        let now = Utc::now();
        let proving = [("exec", Done, 1), ("prove", Done, 1), ("prove", Ready, 2)];
        let old_running = job(now, "t-1", JobState::Running, 60, &proving);
        let new_ended = job(now, "t-gone", JobState::Cancelled, 5, &[("exec", Cancelled, 1)]);
        let mut s = snapshot(now);
        s.jobs = vec![new_ended.clone(), old_running.clone(), old_running.clone()];
        let o = s.overview();
        assert_eq!(o.jobs.len(), 2, "each job once");
        let (first, second) = (&o.jobs[0], &o.jobs[1]);
        assert_eq!((first.id, first.tenant.as_str()), (old_running.id, "alice"));
        assert_eq!(first.stage.as_deref(), Some("ProveSegments: 1/3"));
        assert_eq!((first.proven, first.segments, first.status.as_str()), (1, 3, "RUNNING"));
        assert_eq!((first.steps_done, first.steps_total), (2, 4));
        assert_eq!(
            (first.age_secs, first.kind.as_str(), first.error.as_deref()),
            (60.0, "snark", None)
        );
        assert_eq!((second.tenant.as_str(), second.status.as_str()), ("t-gone", "ABORTED"));
        assert_eq!(second.stage, None, "no stage once ended");
        assert!(second.error.is_some(), "why it ended");
    }

    #[test]
    fn agents_show_their_current_tasks_and_queues_only_streams_with_work() {
        let now = Utc::now();
        let agent = |id: &str, silent: i64| {
            let info = AgentInfo {
                id: id.into(),
                kinds: vec!["prove".into(), "join".into()],
                info: Value::Null,
                first_seen: at(now, 100),
                last_seen: at(now, silent),
            };
            Registered { agent: info, profile: None, silent_secs: silent as f64 }
        };
        let mut s = snapshot(now);
        s.agents = vec![agent("gpu-1", 1), agent("gpu-2", 60)];
        let lease = serde_json::json!({ "job": "j-1", "task": "prove-0", "kind": "prove",
                                        "attempt": 1, "slot": "gpu-1/0" });
        s.leases = BTreeMap::from([("gpu-1".to_string(), vec![lease])]);
        let stream = |tenant: &str, kind: &str, ready, running| StreamInfo {
            tenant: tenant.into(),
            kind: kind.into(),
            config: StreamConfig::default(),
            running,
            ready,
        };
        s.streams = vec![
            stream("t-1", "prove", 3, 1),
            stream("t-1", "exec", 0, 0),
            stream("t-1", "join", 0, 2),
            stream("t-old", "aux", 1, 0),
        ];
        let o = s.overview();
        let busy = &o.agents[0];
        assert!(busy.alive && busy.host.is_none());
        let task = AgentTask { job: "j-1".into(), task: "prove-0".into(), kind: "prove".into() };
        assert_eq!(busy.tasks, vec![task]);
        assert!(!o.agents[1].alive && o.agents[1].tasks.is_empty(), "silent 60 s: dead, idle");
        let queues: Vec<(&str, &str, i64, i64)> = o
            .queues
            .iter()
            .map(|q| (q.tenant.as_str(), q.kind.as_str(), q.ready, q.running))
            .collect();
        assert_eq!(
            queues,
            [("alice", "join", 0, 2), ("alice", "prove", 3, 1), ("t-old", "aux", 1, 0)]
        );
    }

    #[test]
    fn failures_carry_the_first_failures_code_newest_first() {
        let now = Utc::now();
        let mut s = snapshot(now);
        let mut older = job(now, "t-1", JobState::Failed, 30, &[("exec", Failed, 1)]);
        older.finished_at = Some(at(now, 20));
        older.first_failure = Some(TaskFailure {
            task: "exec".into(),
            kind: "exec".into(),
            error: "TIFFIN-ZKVM-003 guest exceeded the cycle limit".into(),
        });
        let mut newer = job(now, "t-1", JobState::Failed, 10, &[("join", Failed, 1)]);
        newer.error = Some("lost".into());
        let cancelled = job(now, "t-1", JobState::Cancelled, 10, &[]);
        s.failed = vec![older.clone(), newer.clone(), cancelled];
        let o = s.overview();
        assert_eq!(o.failures.len(), 2, "failed jobs only");
        assert_eq!((o.failures[0].job, o.failures[0].code.as_deref()), (newer.id, None));
        assert_eq!(o.failures[0].error, "lost");
        let f = &o.failures[1];
        assert_eq!((f.job, f.code.as_deref()), (older.id, Some("TIFFIN-ZKVM-003")));
        assert_eq!((f.task_kind.as_deref(), f.ended_secs_ago), (Some("exec"), Some(20.0)));
        assert_eq!(f.tenant, "alice");
    }
}
