//! Backlogs: how much work waits for each worker kind and how long its tasks take, which is
//! what an autoscaler needs (`GET /admin/queue-report`).
//!
//! A task may declare its `work` ([`crate::NewTask::work`]) in a unit its caller chooses (the
//! workflow: proving cycles); TaskDB only sums it. Durations are measured from a task's first
//! claim to its completion, so a task that was retried counts its earlier attempts and backoff.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The backlog of one worker kind, over every tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backlog {
    /// Worker kind.
    pub kind: String,
    /// Tasks ready to be claimed (including those waiting out a retry backoff).
    pub ready: i64,
    /// Tasks leased to agents now.
    pub running: i64,
    /// When the task that has been ready longest became ready (`None` when none is).
    pub oldest_ready_at: Option<DateTime<Utc>>,
    /// Sum of the declared work of the ready tasks.
    pub ready_work: i64,
    /// Ready tasks that declared no work (so `ready_work` leaves them out).
    pub ready_without_work: i64,
    /// How many recently finished tasks `mean_secs` is measured over.
    pub sampled: i64,
    /// Mean seconds from first claim to completion of those tasks (`None` when none finished).
    pub mean_secs: Option<f64>,
}

impl Backlog {
    /// An empty backlog of `kind`.
    pub fn empty(kind: impl Into<String>) -> Self {
        Backlog {
            kind: kind.into(),
            ready: 0,
            running: 0,
            oldest_ready_at: None,
            ready_work: 0,
            ready_without_work: 0,
            sampled: 0,
            mean_secs: None,
        }
    }
}

/// What the agents finished of one worker kind over a recent window, split by one field of the
/// jobs' meta (the workflow: `receipt_kind`), for `GET /admin/capacity`
/// ([`crate::TaskDb::served`]). Only tasks that declared their work are timed, so `work` and
/// `busy_secs` describe the same tasks and `work / busy_secs` is the speed of one slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Served {
    /// Worker kind.
    pub kind: String,
    /// The job meta field's value (`None` when the jobs lack it or it is not a string).
    pub group: Option<String>,
    /// Tasks finished successfully in the window.
    pub tasks: i64,
    /// Declared work of those tasks (the workflow: proving cycles).
    pub work: i64,
    /// Seconds from first claim to completion, summed over the tasks that declared work.
    pub busy_secs: f64,
}

/// Whether `key` may name a job meta field in [`crate::TaskDb::served`]: letters, digits and
/// `_`, 1 to 64 of them (it is spliced into a JSON path on SQLite).
pub fn valid_meta_key(key: &str) -> bool {
    (1..=64).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// [`valid_meta_key`] as the backends refuse a bad key: [`Error::InvalidArgument`].
pub(crate) fn check_meta_key(key: &str) -> crate::Result<()> {
    if !valid_meta_key(key) {
        return Err(crate::Error::InvalidArgument(format!("bad job meta key {key:?}")));
    }
    Ok(())
}

/// A row of the backends' served statements: kind, group, tasks, work, busy seconds.
pub(crate) type ServedRow = (String, Option<String>, i64, i64, f64);

/// The served rows as [`Served`], in the statement's order.
pub(crate) fn served_from(rows: Vec<ServedRow>) -> Vec<Served> {
    rows.into_iter()
        .map(|(kind, group, tasks, work, busy_secs)| Served { kind, group, tasks, work, busy_secs })
        .collect()
}

/// A row of the backends' ready statements: kind, count, oldest ready time, work, tasks
/// without declared work.
pub(crate) type ReadyRow = (String, i64, Option<DateTime<Utc>>, i64, i64);

/// The ready tasks of one kind, as both backends read them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadyTasks {
    pub kind: String,
    pub count: i64,
    pub oldest: Option<DateTime<Utc>>,
    pub work: i64,
    pub without_work: i64,
}

impl From<ReadyRow> for ReadyTasks {
    fn from((kind, count, oldest, work, without_work): ReadyRow) -> Self {
        ReadyTasks { kind, count, oldest, work, without_work }
    }
}

/// The recent durations of one kind: how many tasks were sampled and their mean seconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Durations {
    pub kind: String,
    pub sampled: i64,
    pub mean_secs: Option<f64>,
}

/// Puts the backends' three reads together, one backlog per kind that has a stream (`running`
/// lists those kinds), in kind order. Ready tasks and durations of other kinds are ignored.
pub(crate) fn assemble(
    running: Vec<(String, i64)>,
    ready: Vec<ReadyTasks>,
    durations: Vec<Durations>,
) -> Vec<Backlog> {
    let mut out: std::collections::BTreeMap<String, Backlog> = running
        .into_iter()
        .map(|(kind, n)| (kind.clone(), Backlog { running: n, ..Backlog::empty(kind) }))
        .collect();
    for r in ready {
        if let Some(b) = out.get_mut(&r.kind) {
            b.ready = r.count;
            b.oldest_ready_at = r.oldest;
            b.ready_work = r.work;
            b.ready_without_work = r.without_work;
        }
    }
    for d in durations {
        if let Some(b) = out.get_mut(&d.kind) {
            b.sampled = d.sampled;
            b.mean_secs = d.mean_secs.filter(|_| d.sampled > 0);
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_one_backlog_per_stream_kind() {
        let ready = |kind: &str, count| ReadyTasks {
            kind: kind.into(),
            count,
            oldest: None,
            work: 8 * count,
            without_work: 1,
        };
        let got = assemble(
            vec![("prove".into(), 3), ("exec".into(), 0)],
            vec![ready("prove", 5), ready("ghost", 1)],
            vec![
                Durations { kind: "exec".into(), sampled: 2, mean_secs: Some(1.5) },
                Durations { kind: "prove".into(), sampled: 0, mean_secs: Some(9.0) },
            ],
        );
        assert_eq!(got.iter().map(|b| b.kind.as_str()).collect::<Vec<_>>(), ["exec", "prove"]);
        assert_eq!((got[0].ready, got[0].running, got[0].mean_secs), (0, 0, Some(1.5)));
        assert_eq!((got[1].ready, got[1].running, got[1].ready_work), (5, 3, 40));
        assert_eq!(got[1].mean_secs, None, "no sample, no mean");
    }
}
