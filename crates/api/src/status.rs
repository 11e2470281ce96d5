//! How a TaskDB job looks to a Bonsai client: the five statuses, the `state` progress string
//! while it runs, `elapsed_time` and `stats`. Pure functions of the job's status, so every
//! mapping is unit-tested without a server.

use serde::{Deserialize, Serialize};
use tiffin_taskdb::{JobState, JobStatus};
use tiffin_workflow::Progress;
use tiffin_workflow::spec::ExecuteOutput;

/// `stats` of a finished session (Bonsai's field names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionStats {
    /// Segments the guest was split into.
    pub segments: u64,
    /// All cycles, including paging and padding.
    pub total_cycles: u64,
    /// Cycles the guest itself ran.
    pub cycles: u64,
}

/// `GET /sessions/status/{id}` (Bonsai's `SessionStatusRes`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionStatus {
    /// `RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED`.
    pub status: String,
    /// Where to download the receipt (proving sessions that succeeded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt_url: Option<String>,
    /// Why it failed, was aborted or timed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
    /// Progress while running: `Setup`, `Executor`, `ProveSegments: N/M`, `RecursionJoin: N/M`,
    /// `Resolve`, `Finalize`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Seconds since the session was created (until it ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_time: Option<f64>,
    /// Cycle counts once execution finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<SessionStats>,
    /// Tiffin extension, for sessions created with a `deadline`: whether it ended (or, still
    /// running, is now) past it. A session is never stopped for its deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_missed: Option<bool>,
}

/// `GET /snark/status/{id}` (Bonsai's `SnarkStatusRes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SnarkStatus {
    /// `RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED`.
    pub status: String,
    /// Where to download the Groth16 receipt once it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<String>,
}

/// Bonsai's name for a job state.
pub fn status_name(state: JobState) -> &'static str {
    match state {
        JobState::Running => "RUNNING",
        JobState::Succeeded => "SUCCEEDED",
        JobState::Failed => "FAILED",
        JobState::Cancelled => "ABORTED",
        JobState::TimedOut => "TIMED_OUT",
    }
}

/// The progress string of a running job, from its task counts ([`Progress::stage`]).
pub fn progress_state(job: &JobStatus) -> String {
    Progress::of(job).stage().to_string()
}

/// Why a job that did not succeed ended, in words a user can act on.
pub fn error_message(job: &JobStatus) -> Option<String> {
    match job.state {
        JobState::Running | JobState::Succeeded => None,
        JobState::Failed => Some(
            job.first_failure
                .as_ref()
                .map(|f| f.error.clone())
                .or_else(|| job.error.clone())
                .unwrap_or_else(|| "the session failed without an error message".into()),
        ),
        JobState::Cancelled => {
            Some(job.error.clone().unwrap_or_else(|| "the session was stopped".into()))
        }
        JobState::TimedOut => {
            Some(job.error.clone().unwrap_or_else(|| "the session passed its deadline".into()))
        }
    }
}

/// Seconds from creation to the end (or to now while running).
pub fn elapsed(job: &JobStatus) -> f64 {
    let end = job.finished_at.unwrap_or_else(chrono::Utc::now);
    (end - job.created_at).num_milliseconds().max(0) as f64 / 1000.0
}

/// The full status of a session. `receipt_url` is given for succeeded proving sessions.
pub fn session_status(
    job: &JobStatus,
    exec: Option<&ExecuteOutput>,
    receipt_url: Option<String>,
) -> SessionStatus {
    let running = job.state == JobState::Running;
    SessionStatus {
        status: status_name(job.state).into(),
        receipt_url: if job.state == JobState::Succeeded { receipt_url } else { None },
        error_msg: error_message(job),
        state: running.then(|| progress_state(job)),
        elapsed_time: Some(elapsed(job)),
        stats: exec.map(|e| SessionStats {
            segments: e.segments as u64,
            total_cycles: e.total_cycles,
            cycles: e.user_cycles,
        }),
        deadline_missed: missed_deadline(job),
    }
}

/// Whether a session created with a `deadline` ended (or, running, is now) past it.
pub fn missed_deadline(job: &JobStatus) -> Option<bool> {
    let spec: tiffin_workflow::spec::JobSpec = serde_json::from_value(job.meta.clone()).ok()?;
    spec.missed_deadline(job.finished_at.unwrap_or_else(chrono::Utc::now))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use tiffin_taskdb::TaskFailure;

    use super::*;

    fn job(state: JobState) -> JobStatus {
        let mut job = JobStatus::of_counts(state, &[]);
        job.created_at = Utc::now() - chrono::TimeDelta::seconds(3);
        job
    }

    #[test]
    fn every_end_state_has_its_bonsai_name_and_a_message_when_not_successful() {
        let names: Vec<_> = [
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
            JobState::TimedOut,
        ]
        .into_iter()
        .map(status_name)
        .collect();
        assert_eq!(names, ["RUNNING", "SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"]);
        let mut failed = job(JobState::Failed);
        failed.first_failure = Some(TaskFailure {
            task: "exec".into(),
            kind: "exec".into(),
            error: "TIFFIN-ZKVM-003 cycle limit".into(),
        });
        failed.finished_at = Some(Utc::now());
        let s = session_status(&failed, None, Some("u".into()));
        assert_eq!(s.status, "FAILED");
        assert_eq!(s.error_msg.as_deref(), Some("TIFFIN-ZKVM-003 cycle limit"));
        assert_eq!(s.receipt_url, None);
        assert_eq!(s.state, None);
        assert!(s.elapsed_time.unwrap() >= 2.9);
        assert!(session_status(&job(JobState::Cancelled), None, None).error_msg.is_some());
    }

    #[test]
    fn succeeded_sessions_carry_stats_and_the_receipt_url() {
        let exec = ExecuteOutput {
            journal_hex: String::new(),
            journal_bytes: 0,
            user_cycles: 10,
            total_cycles: 65536,
            segments: 1,
        };
        let s = session_status(&job(JobState::Succeeded), Some(&exec), Some("http://x/r".into()));
        assert_eq!(s.receipt_url.as_deref(), Some("http://x/r"));
        assert_eq!(s.stats, Some(SessionStats { segments: 1, total_cycles: 65536, cycles: 10 }));
        let json = serde_json::to_value(&s).unwrap();
        assert!(json.get("error_msg").is_none(), "absent fields are omitted: {json}");
    }
}
