//! Where a running job stands, from its task counts: how many segments are proven and joined,
//! and the stage it is in. Pure: the API's `state` string, `tiffin prove`'s progress bar and
//! `session submit --wait` all read it.

use std::fmt;

use tiffin_taskdb::{JobStatus, TaskState};

use crate::kinds;

/// Counts of a job's work, done and planned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Whether an executor picked the job up.
    pub started: bool,
    /// Whether execution finished.
    pub executed: bool,
    /// Segments produced so far.
    pub segments: i64,
    /// Segments proven.
    pub proven: i64,
    /// Joins of the recursion tree planned so far.
    pub joins: i64,
    /// Joins done.
    pub joined: i64,
    /// Whether a resolve step (discharging assumptions) is planned and not done.
    pub resolving: bool,
    /// Whether the job ended.
    pub finished: bool,
}

/// The stage a running job is in (what Bonsai calls its `state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Queued: no executor has it yet.
    Setup,
    /// Executing (segments may already be proving).
    Executor,
    /// Proving segments: done, of total.
    ProveSegments(i64, i64),
    /// Joining segment proofs: done, of total.
    RecursionJoin(i64, i64),
    /// Discharging the assumptions the guest verified.
    Resolve,
    /// Writing the receipt.
    Finalize,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Setup => f.write_str("Setup"),
            Stage::Executor => f.write_str("Executor"),
            Stage::ProveSegments(done, of) => write!(f, "ProveSegments: {done}/{of}"),
            Stage::RecursionJoin(done, of) => write!(f, "RecursionJoin: {done}/{of}"),
            Stage::Resolve => f.write_str("Resolve"),
            Stage::Finalize => f.write_str("Finalize"),
        }
    }
}

impl Stage {
    /// Reads a stage back from its `state` string (what a Bonsai client sees).
    pub fn parse(state: &str) -> Option<Self> {
        let counted = |rest: &str| -> Option<(i64, i64)> {
            let (done, of) = rest.trim().split_once('/')?;
            Some((done.parse().ok()?, of.parse().ok()?))
        };
        Some(match state {
            "Setup" => Stage::Setup,
            "Executor" => Stage::Executor,
            "Resolve" => Stage::Resolve,
            "Finalize" => Stage::Finalize,
            s => match s.split_once(':')? {
                ("ProveSegments", rest) => {
                    counted(rest).map(|(d, o)| Stage::ProveSegments(d, o))?
                }
                ("RecursionJoin", rest) => {
                    counted(rest).map(|(d, o)| Stage::RecursionJoin(d, o))?
                }
                _ => return None,
            },
        })
    }

    /// The stage's name and, for counted stages, (done, of).
    pub fn parts(&self) -> (&'static str, Option<(i64, i64)>) {
        match *self {
            Stage::Setup => ("Setup", None),
            Stage::Executor => ("Executor", None),
            Stage::ProveSegments(d, o) => ("ProveSegments", Some((d, o))),
            Stage::RecursionJoin(d, o) => ("RecursionJoin", Some((d, o))),
            Stage::Resolve => ("Resolve", None),
            Stage::Finalize => ("Finalize", None),
        }
    }
}

impl Progress {
    /// The progress of a job from its status. A resolve task has the worker kind `join`; it is
    /// told from the tree's joins by number: a tree over N segments has N - 1 joins, and resolve
    /// is planned only after the last segment.
    pub fn of(status: &JobStatus) -> Self {
        let all = |kind: &str| -> i64 {
            status.counts.iter().filter(|c| c.kind == kind).map(|c| c.count).sum()
        };
        let executed = status.count(kinds::EXEC, TaskState::Done) > 0;
        let segments = all(kinds::PROVE);
        let (join_kind, join_done) = (all(kinds::JOIN), status.count(kinds::JOIN, TaskState::Done));
        let tree = if executed { join_kind.min((segments - 1).max(0)) } else { join_kind };
        Self {
            started: status.started_at.is_some() || executed,
            executed,
            segments,
            proven: status.count(kinds::PROVE, TaskState::Done),
            joins: tree,
            joined: join_done.min(tree),
            resolving: join_kind > tree && join_done < join_kind,
            finished: status.state.is_finished(),
        }
    }

    /// The stage of a running job.
    pub fn stage(&self) -> Stage {
        if !self.executed {
            return if self.started { Stage::Executor } else { Stage::Setup };
        }
        if self.proven < self.segments {
            return Stage::ProveSegments(self.proven, self.segments);
        }
        if self.joined < self.joins {
            return Stage::RecursionJoin(self.joined, self.joins);
        }
        if self.resolving { Stage::Resolve } else { Stage::Finalize }
    }

    /// Steps done and planned — execution, segment proofs and joins — for a progress bar.
    /// The total grows while the guest executes.
    pub fn steps(&self) -> (u64, u64) {
        let done = i64::from(self.executed) + self.proven + self.joined;
        let total = 1 + self.segments + self.joins;
        (done.max(0) as u64, total.max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use tiffin_taskdb::JobState;
    use tiffin_taskdb::TaskState::*;

    use super::*;

    fn stage(counts: &[(&str, TaskState, i64)]) -> String {
        let mut job = JobStatus::of_counts(JobState::Running, counts);
        job.started_at = counts.iter().any(|c| c.1 != Ready).then(chrono::Utc::now);
        Progress::of(&job).stage().to_string()
    }

    #[test]
    fn running_jobs_report_the_stage_they_are_in() {
        assert_eq!(stage(&[("exec", Ready, 1)]), "Setup");
        assert_eq!(stage(&[("exec", Leased, 1), ("prove", Done, 2)]), "Executor");
        assert_eq!(
            stage(&[("exec", Done, 1), ("prove", Done, 2), ("prove", Ready, 3)]),
            "ProveSegments: 2/5"
        );
        let joining =
            [("exec", Done, 1), ("prove", Done, 4), ("join", Done, 1), ("join", Pending, 2)];
        assert_eq!(stage(&joining), "RecursionJoin: 1/3");
        assert_eq!(stage(&[("exec", Done, 1), ("prove", Done, 1), ("aux", Ready, 1)]), "Finalize");
    }

    #[test]
    fn a_resolve_task_of_kind_join_shows_as_resolve_not_as_a_join() {
        // Two segments: one join, then resolve (also kind `join`), then finalize.
        let joining =
            [("exec", Done, 1), ("prove", Done, 2), ("join", Ready, 1), ("join", Pending, 1)];
        assert_eq!(stage(&joining), "RecursionJoin: 0/1");
        let resolving =
            [("exec", Done, 1), ("prove", Done, 2), ("join", Done, 1), ("join", Ready, 1)];
        assert_eq!(stage(&resolving), "Resolve");
        let finalizing =
            [("exec", Done, 1), ("prove", Done, 2), ("join", Done, 2), ("aux", Ready, 1)];
        assert_eq!(stage(&finalizing), "Finalize");
        // One segment: no join, so the only join-kind task is resolve.
        let alone = [("exec", Done, 1), ("prove", Done, 1), ("join", Ready, 1)];
        assert_eq!(stage(&alone), "Resolve");
    }

    #[test]
    fn stages_read_back_from_their_strings() {
        let all = [
            Stage::Setup,
            Stage::Executor,
            Stage::ProveSegments(2, 5),
            Stage::RecursionJoin(0, 3),
            Stage::Resolve,
            Stage::Finalize,
        ];
        for stage in all {
            assert_eq!(Stage::parse(&stage.to_string()), Some(stage));
        }
        for bad in ["", "Proving", "ProveSegments: x/2", "RecursionJoin: 1", "Other: 1/2"] {
            assert_eq!(Stage::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn steps_count_proofs_done_of_all_planned() {
        let mut job = JobStatus::of_counts(
            JobState::Running,
            &[
                ("exec", Done, 1),
                ("prove", Done, 3),
                ("prove", Ready, 1),
                ("join", Done, 1),
                ("join", Pending, 2),
            ],
        );
        job.started_at = Some(chrono::Utc::now());
        // 3 proven + 1 joined + execution, of 4 segments + 3 joins + execution.
        assert_eq!(Progress::of(&job).steps(), (5, 8));
    }
}
