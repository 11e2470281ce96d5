//! Tasks: the units of work of a job, with prerequisites inside the same job.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::JobId;

/// The worker kind a task needs (`exec`, `prove`, `join`, `aux`, `snark`, …). Agents claim tasks
/// of the kinds they serve; a stream is (tenant, kind).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Kind(String);

impl Kind {
    /// A kind by name.
    pub fn new(name: impl Into<String>) -> Self {
        Kind(name.into())
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Kind {
    fn from(s: &str) -> Self {
        Kind(s.to_string())
    }
}

impl From<String> for Kind {
    fn from(s: String) -> Self {
        Kind(s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lifecycle of a task: `pending → ready → leased → done | failed | cancelled`
/// (a leased task goes back to `ready` when its lease expires or it fails transiently).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for prerequisites.
    Pending,
    /// Claimable (possibly after `not_before`).
    Ready,
    /// Held by an agent under a lease.
    Leased,
    /// Finished successfully; its output is stored.
    Done,
    /// Failed permanently or ran out of attempts.
    Failed,
    /// Cancelled because its job failed or was cancelled.
    Cancelled,
}

impl TaskState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Ready => "ready",
            TaskState::Leased => "leased",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => TaskState::Pending,
            "ready" => TaskState::Ready,
            "leased" => TaskState::Leased,
            "done" => TaskState::Done,
            "failed" => TaskState::Failed,
            "cancelled" => TaskState::Cancelled,
            _ => return None,
        })
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task to add to a job.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Caller-chosen key, unique within the job (e.g. `"prove:17"`), so outputs are keyed by
    /// (job, task) and a retried producer finds the same key.
    pub key: String,
    /// Worker kind.
    pub kind: Kind,
    /// Input description for the agent.
    pub payload: serde_json::Value,
    /// Keys of tasks of the same job that must be done first (added earlier, or earlier in the
    /// same batch).
    pub prerequisites: Vec<String>,
    /// Attempts before the task (and its job) fails; at least 1.
    pub max_attempts: i32,
    /// Distance from the root of the DAG: inside a job, smaller depth is claimed first, so joins
    /// near the root drain before new leaves start.
    pub depth: i32,
    /// How much work the task is, in a unit the caller chooses (the workflow: proving cycles),
    /// if known; [`crate::TaskDb::backlog`] sums it over ready tasks. Never read otherwise.
    pub work: Option<i64>,
}

impl NewTask {
    /// A task with no prerequisites, 3 attempts, depth 0 and no declared work.
    pub fn new(key: impl Into<String>, kind: impl Into<Kind>, payload: serde_json::Value) -> Self {
        NewTask {
            key: key.into(),
            kind: kind.into(),
            payload,
            prerequisites: Vec::new(),
            max_attempts: 3,
            depth: 0,
            work: None,
        }
    }

    /// Sets the prerequisites.
    pub fn after<I, S>(mut self, prerequisites: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.prerequisites = prerequisites.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the attempt budget.
    pub fn max_attempts(mut self, n: i32) -> Self {
        self.max_attempts = n;
        self
    }

    /// Sets the depth hint.
    pub fn depth(mut self, depth: i32) -> Self {
        self.depth = depth;
        self
    }

    /// Declares the task's work (see [`NewTask::work`]).
    pub fn work(mut self, work: i64) -> Self {
        self.work = Some(work);
        self
    }
}

/// What the task list of a job shows for one task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Key within the job.
    pub key: String,
    /// Worker kind.
    pub kind: String,
    /// State.
    pub state: TaskState,
    /// Attempts started so far.
    pub attempt: i32,
    /// Attempt budget.
    pub max_attempts: i32,
    /// Depth hint.
    pub depth: i32,
    /// Unfinished prerequisites.
    pub waiting: i32,
    /// Input.
    pub payload: serde_json::Value,
    /// Output once done.
    pub output: Option<serde_json::Value>,
    /// Last error reported.
    pub error: Option<String>,
    /// Agent holding (or last holding) the lease.
    pub agent: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Finished (done/failed/cancelled).
    pub finished_at: Option<DateTime<Utc>>,
}

/// A prerequisite that already exists in the database: its row id and whether it is done.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExistingTask {
    pub id: i64,
    pub done: bool,
}

/// The existing tasks a batch links to, from rows of key, row id and state, by key.
pub(crate) fn existing_tasks(rows: Vec<(String, i64, String)>) -> HashMap<String, ExistingTask> {
    rows.into_iter()
        .map(|(key, id, state)| (key, ExistingTask { id, done: state == "done" }))
        .collect()
}

/// Checks a batch against the job's existing tasks and computes, for each new task, how many of
/// its prerequisites are unfinished. Shared by both backends so they validate identically.
///
/// Returns per new task: (waiting count, prerequisite references), where a reference is either an
/// existing row id or the index of an earlier task in the batch.
pub(crate) fn plan_batch(
    job: JobId,
    tasks: &[NewTask],
    existing: &HashMap<String, ExistingTask>,
) -> Result<Vec<(i32, Vec<PrereqRef>)>> {
    let mut in_batch: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(tasks.len());
    for (i, t) in tasks.iter().enumerate() {
        if t.max_attempts < 1 {
            return Err(Error::InvalidArgument(format!(
                "task {:?} has max_attempts {} (must be at least 1)",
                t.key, t.max_attempts
            )));
        }
        if existing.contains_key(&t.key) || in_batch.contains_key(t.key.as_str()) {
            return Err(Error::DuplicateTask { job, task: t.key.clone() });
        }
        let mut seen = HashSet::new();
        let mut waiting = 0;
        let mut refs = Vec::new();
        for p in &t.prerequisites {
            if !seen.insert(p.as_str()) {
                continue;
            }
            if let Some(&j) = in_batch.get(p.as_str()) {
                waiting += 1;
                refs.push(PrereqRef::Batch(j));
            } else if let Some(e) = existing.get(p) {
                if !e.done {
                    waiting += 1;
                    refs.push(PrereqRef::Row(e.id));
                }
            } else {
                return Err(Error::UnknownPrerequisite {
                    job,
                    task: t.key.clone(),
                    prerequisite: p.clone(),
                });
            }
        }
        in_batch.insert(t.key.as_str(), i);
        out.push((waiting, refs));
    }
    Ok(out)
}

/// Where an unfinished prerequisite lives: an existing row or an earlier task of the batch.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PrereqRef {
    Row(i64),
    Batch(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_counts_unfinished_prerequisites() {
        let mut existing = HashMap::new();
        existing.insert("a".to_string(), ExistingTask { id: 1, done: true });
        existing.insert("b".to_string(), ExistingTask { id: 2, done: false });
        let tasks = vec![
            NewTask::new("c", "x", serde_json::Value::Null).after(["a", "b"]),
            NewTask::new("d", "x", serde_json::Value::Null).after(["c", "a"]),
            NewTask::new("e", "x", serde_json::Value::Null).after(["a"]),
        ];
        let plan = plan_batch(JobId::nil(), &tasks, &existing).unwrap();
        assert_eq!(plan.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 1, 0]);
    }

    #[test]
    fn plan_rejects_unknown_and_duplicates() {
        let existing = HashMap::new();
        let t = vec![NewTask::new("c", "x", serde_json::Value::Null).after(["zz"])];
        assert_eq!(
            plan_batch(JobId::nil(), &t, &existing).unwrap_err().code(),
            "TIFFIN-TASKDB-012"
        );
        let t = vec![
            NewTask::new("c", "x", serde_json::Value::Null),
            NewTask::new("c", "x", serde_json::Value::Null),
        ];
        assert_eq!(
            plan_batch(JobId::nil(), &t, &existing).unwrap_err().code(),
            "TIFFIN-TASKDB-013"
        );
        // A later task in the batch cannot be a prerequisite (that is how cycles are excluded).
        let t = vec![
            NewTask::new("a", "x", serde_json::Value::Null).after(["b"]),
            NewTask::new("b", "x", serde_json::Value::Null),
        ];
        assert_eq!(
            plan_batch(JobId::nil(), &t, &existing).unwrap_err().code(),
            "TIFFIN-TASKDB-012"
        );
    }
}
