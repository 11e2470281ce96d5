//! What an ended session costs its tenant: the cycles it executed, whatever its outcome.
//! A pure function of what the task database knows, so it is table-tested.

use tiffin_taskdb::JobStatus;
use tiffin_workflow::kinds;
use tiffin_workflow::spec::JobSpec;

/// The stable code of the executor's cycle-limit failure.
const CYCLE_LIMIT_CODE: &str = "TIFFIN-ZKVM-003";

/// Cycles to charge for an ended session. `executed` is what its execute task reported
/// (present once execution finished). Without it the session ended mid-execution: over its
/// cycle limit it ran exactly up to the limit; otherwise (its guest failed, or it was stopped
/// or timed out) it ran at least what its execution recorded as it went (`so_far`: every
/// segment of an execute-only session, a failed guest's cycles) and every segment it had
/// already handed to the provers (2^po2 cycles each, an upper bound per segment).
pub fn cycles_to_charge(
    executed: Option<u64>,
    so_far: Option<u64>,
    spec: Option<&JobSpec>,
    job: &JobStatus,
) -> i64 {
    if let Some(cycles) = executed {
        return clamp(cycles);
    }
    let Some(spec) = spec else { return clamp(so_far.unwrap_or(0)) };
    let over_limit = job.first_failure.as_ref().is_some_and(|f| f.error.contains(CYCLE_LIMIT_CODE));
    if over_limit {
        return clamp(spec.cycle_limit.unwrap_or(0));
    }
    let segments: i64 = job.counts.iter().filter(|c| c.kind == kinds::PROVE).map(|c| c.count).sum();
    segments.saturating_mul(1i64 << spec.po2.min(40)).max(clamp(so_far.unwrap_or(0)))
}

fn clamp(cycles: u64) -> i64 {
    i64::try_from(cycles).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use tiffin_taskdb::{JobState, TaskFailure, TaskState};
    use tiffin_workflow::spec::JobSpec;

    use super::*;

    fn spec() -> JobSpec {
        JobSpec {
            image_id: "00".into(),
            input_key: "k".into(),
            po2: 16,
            receipt_kind: tiffin_zkvm::ReceiptKind::Succinct,
            execute_only: false,
            cycle_limit: Some(1_000_000),
            assumptions: Vec::new(),
            max_journal_bytes: None,
            deadline: None,
            priority: 0,
        }
    }

    fn job(state: JobState, failure: Option<&str>, proves: &[(TaskState, i64)]) -> JobStatus {
        let counts: Vec<_> = proves.iter().map(|(s, n)| ("prove", *s, *n)).collect();
        let mut job = JobStatus::of_counts(state, &counts);
        job.first_failure = failure.map(|e| TaskFailure {
            task: "execute".into(),
            kind: "exec".into(),
            error: e.into(),
        });
        job
    }

    #[test]
    fn each_outcome_is_charged_what_it_ran() {
        let s = spec();
        let limit = "TIFFIN-ZKVM-003 guest exceeded the cycle limit of 1000000 cycles";
        let panicked = "TIFFIN-ZKVM-002 guest exited with code 1";
        let cases = [
            // finished execution: what it reported, whatever happened after
            (Some(123_456), None, job(JobState::Succeeded, None, &[]), 123_456),
            (Some(99), Some(5), job(JobState::Cancelled, None, &[(TaskState::Cancelled, 3)]), 99),
            // over the cycle limit: the limit
            (
                None,
                None,
                job(JobState::Failed, Some(limit), &[(TaskState::Cancelled, 2)]),
                1_000_000,
            ),
            // stopped mid-execution: the segments it had emitted, 2^16 each
            (
                None,
                None,
                job(JobState::Cancelled, None, &[(TaskState::Done, 1), (TaskState::Cancelled, 2)]),
                3 << 16,
            ),
            // stopped before any segment: nothing known to have run
            (None, None, job(JobState::Cancelled, None, &[]), 0),
            // another failure mid-execution: its segments
            (None, None, job(JobState::Failed, Some(panicked), &[(TaskState::Done, 1)]), 1 << 16),
            // Failed before the fix (charged 0): execute-only sessions that failed or were
            // stopped mid-execution are charged what their execution recorded.
            (None, Some(7_000_000), job(JobState::Failed, Some(panicked), &[]), 7_000_000),
            (None, Some(3 << 20), job(JobState::Cancelled, None, &[]), 3 << 20),
            (None, Some(1 << 20), job(JobState::TimedOut, None, &[]), 1 << 20),
            // both known: the larger
            (
                None,
                Some(10),
                job(JobState::Failed, Some(panicked), &[(TaskState::Done, 1)]),
                1 << 16,
            ),
        ];
        for (executed, so_far, job, want) in cases {
            assert_eq!(cycles_to_charge(executed, so_far, Some(&s), &job), want, "{job:?}");
        }
        let failed = job(JobState::Failed, Some(limit), &[]);
        assert_eq!(cycles_to_charge(None, None, None, &failed), 0);
    }
}
