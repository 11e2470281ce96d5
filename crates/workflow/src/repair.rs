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

#[cfg(test)]
mod tests {
    use tiffin_taskdb::JobState;

    use super::*;

    fn job(counts: &[(&str, TaskState, i64)]) -> JobStatus {
        JobStatus::of_counts(JobState::Running, counts)
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
