//! Jobs the housekeeper must end because nothing will ever finish them: a job with no task
//! ready or running (a stuck DAG: every task done or waiting on one that never ends), and a
//! snark job no live agent serves (a cluster without a Groth16 prover would otherwise keep it
//! RUNNING forever). The verdict is a pure function of the job's task counts, the kinds live
//! agents serve and the job's age, so it is table-tested; the housekeeper does the I/O.

use std::collections::HashSet;
use std::time::Duration;

use tiffin_taskdb::{JobStatus, TaskState};

use crate::kinds;

/// What to do with one running job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It can still progress.
    Fine,
    /// Nothing can progress: fail it if it is still so at the next pass.
    Stuck(String),
    /// Its snark task waits for an agent no one runs: fail it now.
    Unserved(String),
}

/// How long a snark task may wait without a live agent serving `snark` before its job fails
/// (the housekeeper's default).
pub const SNARK_UNSERVED_AFTER: Duration = Duration::from_secs(60);

/// Judges a running job `age` old, given the kinds live agents serve; a snark task may wait
/// `snark_grace` for one.
pub fn judge(
    job: &JobStatus,
    served: &HashSet<String>,
    age: Duration,
    snark_grace: Duration,
) -> Verdict {
    let in_state = |s: TaskState| job.count_state(s);
    let (ready, leased) = (in_state(TaskState::Ready), in_state(TaskState::Leased));
    if ready == 0 && leased == 0 {
        return Verdict::Stuck(format!(
            "TIFFIN-WORKFLOW-007 the job stopped making progress: no task is ready or running \
             ({} done, {} waiting on others); the housekeeper failed it (an operator may \
             restart it)",
            in_state(TaskState::Done),
            in_state(TaskState::Pending)
        ));
    }
    let snark_waits = job.count(kinds::SNARK, TaskState::Ready) > 0;
    if snark_waits && !served.contains(kinds::SNARK) && age >= snark_grace {
        return Verdict::Unserved(format!(
            "TIFFIN-WORKFLOW-008 no agent serves snark (Groth16) tasks: none has reported in \
             {} s; run an agent with --kinds snark on a host with the Groth16 prover",
            age.as_secs()
        ));
    }
    Verdict::Fine
}

/// How many times one job is run again after losing its hot data.
pub const MAX_REPLAYS: i32 = 2;

/// Whether a failed job failed only because its intermediate data vanished from the hot store
/// (a Redis restarted without persistence, a wiped local hot directory): nothing about the
/// job is wrong, so it is run again from execution, at most [`MAX_REPLAYS`] times (its
/// execute task's attempts count the runs).
pub fn lost_hot_data(job: &JobStatus, execute_attempts: i32) -> bool {
    let lost = job
        .first_failure
        .as_ref()
        .is_some_and(|f| f.error.contains("TIFFIN-STORAGE-010") && f.error.contains("hot store"));
    lost && job.state == tiffin_taskdb::JobState::Failed && execute_attempts <= MAX_REPLAYS
}

#[cfg(test)]
mod tests {
    use tiffin_taskdb::JobState;

    use super::*;

    fn job(counts: &[(&str, TaskState, i64)]) -> JobStatus {
        JobStatus::of_counts(JobState::Running, counts)
    }

    #[test]
    fn only_jobs_that_lost_hot_data_are_replayed_and_only_twice() {
        let failed = |error: &str| {
            let mut j = JobStatus::of_counts(JobState::Failed, &[]);
            j.first_failure = Some(tiffin_taskdb::TaskFailure {
                task: "prove:3".into(),
                kind: "prove".into(),
                error: error.into(),
            });
            j
        };
        let lost = "TIFFIN-STORAGE-010: blob \"jobs/x/segments/3\" not found in the hot store; it \
                    was never written, or was deleted or garbage-collected";
        assert!(lost_hot_data(&failed(lost), 1));
        assert!(lost_hot_data(&failed(lost), MAX_REPLAYS));
        assert!(!lost_hot_data(&failed(lost), MAX_REPLAYS + 1), "replays are bounded");
        let cold = lost.replace("hot store", "cold store");
        assert!(!lost_hot_data(&failed(&cold), 1), "a missing input is the user's");
        assert!(!lost_hot_data(&failed("TIFFIN-ZKVM-003 cycle limit"), 1));
        let mut running = failed(lost);
        running.state = JobState::Running;
        assert!(!lost_hot_data(&running, 1));
    }

    #[test]
    fn only_jobs_that_cannot_progress_are_ended() {
        let none = HashSet::new();
        let snark_served: HashSet<String> = [kinds::SNARK.to_string()].into();
        let minute = SNARK_UNSERVED_AFTER;
        let early = Duration::from_secs(5);
        use TaskState::*;
        let cases: Vec<(JobStatus, &HashSet<String>, Duration, &str)> = vec![
            (job(&[("prove", Ready, 3), ("join", Pending, 2)]), &none, minute, "fine"),
            (job(&[("prove", Leased, 1), ("join", Pending, 1)]), &none, minute, "fine"),
            (job(&[("exec", Done, 1), ("join", Pending, 1)]), &none, early, "stuck"),
            (job(&[("exec", Done, 1), ("finalize", Done, 1)]), &none, early, "stuck"),
            (job(&[("snark", Ready, 1)]), &none, minute, "unserved"),
            (job(&[("snark", Ready, 1)]), &none, early, "fine"),
            (job(&[("snark", Ready, 1)]), &snark_served, minute, "fine"),
            (job(&[("snark", Leased, 1)]), &none, minute, "fine"),
        ];
        for (j, served, age, want) in cases {
            let got = match judge(&j, served, age, SNARK_UNSERVED_AFTER) {
                Verdict::Fine => "fine",
                Verdict::Stuck(m) => {
                    assert!(m.starts_with("TIFFIN-WORKFLOW-007"), "{m}");
                    "stuck"
                }
                Verdict::Unserved(m) => {
                    assert!(m.starts_with("TIFFIN-WORKFLOW-008"), "{m}");
                    "unserved"
                }
            };
            assert_eq!(got, want, "{:?} with {served:?} at {age:?}", j.counts);
        }
    }
}
