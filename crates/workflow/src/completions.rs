//! Grouped completions: the completions of one process's agents go to the TaskDB together,
//! several per transaction ([`TaskDb::complete_batch`]: one commit, one flush of the log),
//! instead of a transaction each. At PostgreSQL's default durability a commit waits for the
//! disk, so this is what lets short tasks finish faster than one commit each.
//!
//! A completion waits at most [`DEFAULT_WINDOW`] for others to join it (and not at all while a
//! group is being written: those that arrive meanwhile form the next group). Each completion
//! keeps its own outcome: `complete_batch` checks every lease as `complete` would, so a late or
//! fenced completion in a group is refused on its own ([`tiffin_taskdb::Error::LeaseLost`]) and
//! the others go through. If the database fails the whole group, each is retried alone.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tiffin_taskdb::{Completion, Error as DbError, Lease, TaskDb};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

/// How long the first completion of a group waits for others by default.
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(2);

/// The most completions in one transaction.
pub const MAX_GROUP: usize = 128;

type Reply = oneshot::Sender<Result<Completion, DbError>>;

struct Pending {
    lease: Lease,
    output: Value,
    reply: Reply,
}

/// A handle to a process's completion group; cheap to clone and share between agents.
#[derive(Clone)]
pub struct Completer {
    db: Arc<dyn TaskDb>,
    tx: mpsc::Sender<Pending>,
}

impl Completer {
    /// Starts the group writer on the current tokio runtime.
    pub fn start(db: Arc<dyn TaskDb>, window: Duration) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
        tokio::spawn(write_groups(db.clone(), rx, window));
        Completer { db, tx }
    }

    /// Completes `lease` with `output`, as [`TaskDb::complete`] would, in a group with the
    /// completions that arrive within the window.
    pub async fn complete(&self, lease: &Lease, output: Value) -> Result<Completion, DbError> {
        let (reply, rx) = oneshot::channel();
        let pending = Pending { lease: lease.clone(), output: output.clone(), reply };
        if self.tx.send(pending).await.is_ok()
            && let Ok(r) = rx.await
        {
            return r;
        }
        // the writer is gone (the runtime is shutting down): complete alone; if the group went
        // through after all, this is refused as lost and changes nothing
        self.db.complete(lease, output).await
    }
}

async fn write_groups(db: Arc<dyn TaskDb>, mut rx: mpsc::Receiver<Pending>, window: Duration) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        let until = tokio::time::Instant::now() + window;
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(p)) => group.push(p),
                        _ => break,
                    }
                }
            }
        }
        write(&db, group).await;
    }
}

async fn write(db: &Arc<dyn TaskDb>, group: Vec<Pending>) {
    debug!(completions = group.len(), "writing a completion group");
    let done = group.iter().map(|p| (p.lease.clone(), p.output.clone())).collect();
    match db.complete_batch(done).await {
        Ok(results) => {
            for (p, r) in group.into_iter().zip(results) {
                let _ = p.reply.send(r);
            }
        }
        Err(e) => {
            // outcome unknown: alone, each is done once (a second try of one that went
            // through is refused as lost, which the agent logs and moves on from)
            warn!(error = %e, completions = group.len(), "completion group failed; one by one");
            for p in group {
                let r = db.complete(&p.lease, p.output).await;
                let _ = p.reply.send(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tiffin_taskdb::{Config, Kind, NewJob, NewTask, SqliteTaskDb};

    use super::*;

    /// Three completions in one group: the one whose lease expired and was claimed again is
    /// refused alone, the others and the new attempt complete.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fenced_completion_in_a_group_is_refused_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db: Arc<dyn TaskDb> =
            Arc::new(SqliteTaskDb::open(dir.path().join("q.db"), Config::default()).await.unwrap());
        let tasks = (0..3).map(|i| NewTask::new(format!("t{i}"), "x", json!(i))).collect();
        db.create_job(NewJob::new("t", tasks)).await.unwrap();
        let kinds = [Kind::new("x")];
        let long = Duration::from_secs(60);
        let short = db.claim("a/0", &kinds, Duration::from_millis(1)).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(db.requeue_expired().await.unwrap(), 1);
        let mut live = db.claim_batch("a/1", &kinds, long, 3).await.unwrap();
        assert_eq!(live.len(), 3, "the expired task is ready again");
        let again = live.iter().position(|l| l.task_id == short.task_id).unwrap();
        let retry = live.remove(again);
        let completer = Completer::start(db.clone(), Duration::from_millis(200));
        let (stale, a, b) = tokio::join!(
            completer.complete(&short, json!("late")),
            completer.complete(&live[0], json!("a")),
            completer.complete(&live[1], json!("b")),
        );
        assert!(matches!(stale, Err(DbError::LeaseLost { .. })), "{stale:?}");
        a.unwrap();
        b.unwrap();
        assert!(completer.complete(&live[0], json!("twice")).await.is_err(), "done once");
        completer.complete(&retry, json!("retry")).await.unwrap();
        let job = live[0].job_id;
        assert_eq!(db.task_output(job, &retry.key).await.unwrap(), Some(json!("retry")));
    }
}
