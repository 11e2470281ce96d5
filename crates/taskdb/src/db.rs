//! The [`TaskDb`] trait both backends implement, and their shared [`Config`].

use std::time::Duration;

use async_trait::async_trait;

use crate::agent::AgentInfo;
use crate::backlog::{Backlog, Served};
use crate::error::{Error, Result};
use crate::job::{JobFilter, JobId, JobState, JobStatus, JobSummary, NewJob};
use crate::lease::{Completion, FailOutcome, FailureKind, HeartbeatOutcome, Lease};
use crate::pin;
use crate::policy::{self, Backoff};
use crate::stream::{StreamConfig, StreamInfo};
use crate::task::{Kind, NewTask, TaskInfo};

/// Tuning shared by both backends.
#[derive(Debug, Clone)]
pub struct Config {
    /// Retry delay after a transient failure.
    pub backoff: Backoff,
    /// Fallback poll of [`TaskDb::wait_for_work`], for lost notifications; wake-ups normally come
    /// from notifications within milliseconds.
    pub poll_interval: Duration,
    /// Connection pool size.
    pub max_connections: u32,
    /// How fast the fair share forgets what a stream was served: a claimed task counts half
    /// as much after this long ([`policy::SERVICE_HALF_LIFE`] by default).
    pub service_half_life: Duration,
    /// An agent that reported within this long is live: reservations pin live agents only,
    /// so an agent that stopped reporting hands its pin to the next one after this long.
    pub agent_alive: Duration,
    /// How long a task of a kind takes when none of that kind finished lately, for judging
    /// whether a job is at risk of missing its due time ([`policy::at_risk`]).
    pub assumed_task_time: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backoff: Backoff::default(),
            poll_interval: Duration::from_secs(5),
            max_connections: 16,
            service_half_life: policy::SERVICE_HALF_LIFE,
            agent_alive: pin::AGENT_ALIVE,
            assumed_task_time: policy::ASSUMED_TASK_TIME,
        }
    }
}

/// `migrator` for a database whose migration table another migrator shares: the TaskDB's
/// (`migrations/`, versions below 10000) and the API's tenant tables (versions from 10001)
/// each ignore the versions the other applied.
pub fn shared_migrator(mut migrator: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    migrator.set_ignore_missing(true);
    migrator
}

/// The task database: everything the API, agents and housekeeper need from the queue.
///
/// Object safe, so the cluster holds it as `Arc<dyn TaskDb>` and picks the backend at start-up.
#[async_trait]
pub trait TaskDb: Send + Sync + 'static {
    /// Creates a running job with its first tasks in one transaction. Tasks without unfinished
    /// prerequisites are ready at once. Fails with [`Error::InvalidArgument`] if `tasks` is empty.
    async fn create_job(&self, job: NewJob) -> Result<JobId>;

    /// Adds a batch of tasks to a running job in one transaction. Prerequisites may name tasks
    /// added earlier or earlier in this batch; tasks whose prerequisites are all done are ready at
    /// once. Fails with [`Error::JobNotRunning`] if the job ended (e.g. was cancelled).
    async fn add_tasks(&self, job: JobId, tasks: Vec<NewTask>) -> Result<()>;

    /// Sets a stream's multiplier and reservation, creating the stream if needed.
    async fn set_stream(&self, tenant: &str, kind: &Kind, config: StreamConfig) -> Result<()>;

    /// Claims the best ready task of the given kinds (see [`policy`]) in one round trip, leasing
    /// it to `agent` for `lease`. `None` when nothing is claimable. The default is a
    /// [`TaskDb::claim_batch`] of one.
    async fn claim(&self, agent: &str, kinds: &[Kind], lease: Duration) -> Result<Option<Lease>> {
        Ok(self.claim_batch(agent, kinds, lease, 1).await?.pop())
    }

    /// Extends a lease to now + `extend`. Says [`HeartbeatOutcome::Cancelled`] when the job was
    /// failed or cancelled; [`Error::LeaseLost`] when the lease expired or was superseded.
    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<HeartbeatOutcome>;

    /// Marks the leased attempt done with its output, readies dependents whose last
    /// prerequisite this was, and completes the job when nothing remains. Only the current,
    /// unexpired attempt may complete ([`Error::LeaseLost`], [`Error::TaskCancelled`] otherwise).
    async fn complete(&self, lease: &Lease, output: serde_json::Value) -> Result<Completion>;

    /// Claims up to `max` ready tasks of the given kinds in one round trip, for agents whose
    /// tasks are short enough that a claim per task would cost more than the work. Each task
    /// is the one [`TaskDb::claim`] would pick after the claims before it in the batch (policy
    /// first, then the order inside a stream), so reservations and fair share hold; the leases
    /// come back in that order. Empty when nothing is claimable; `max == 0` claims nothing.
    /// May return fewer than `max` while other agents hold the next tasks. Keep `max` to what
    /// the agent finishes well within `lease` (tens, not thousands: PostgreSQL looks at up to
    /// `max` ready tasks per stream to rank them).
    async fn claim_batch(
        &self,
        agent: &str,
        kinds: &[Kind],
        lease: Duration,
        max: usize,
    ) -> Result<Vec<Lease>>;

    /// [`TaskDb::claim_batch`] for an agent that can take only tasks declaring at most
    /// `max_work` of work ([`NewTask::work`]; the workflow declares a segment's 2^po2 cycles, so
    /// an agent started with `--max-po2 20` passes 2^20). Larger tasks are left for other agents
    /// as if they were not there; a task that declares no work fits every agent. Among the
    /// tasks that fit, the policy and the order are those of `claim_batch`.
    async fn claim_batch_within(
        &self,
        agent: &str,
        kinds: &[Kind],
        lease: Duration,
        max: usize,
        max_work: i64,
    ) -> Result<Vec<Lease>>;

    /// Completes several leased attempts together, as [`TaskDb::complete`] would each, and says
    /// what became of each, in order: a lost or cancelled lease gets its error and changes
    /// nothing, the others are done. The backends do it in one transaction (one commit, one
    /// flush of the log for the whole batch); the default completes one at a time. An `Err`
    /// means the database failed, and the outcome of the batch is unknown: completing a lease
    /// again reports [`Error::LeaseLost`] if its first completion went through.
    async fn complete_batch(
        &self,
        done: Vec<(Lease, serde_json::Value)>,
    ) -> Result<Vec<Result<Completion>>> {
        let mut out = Vec::with_capacity(done.len());
        for (lease, output) in done {
            match self.complete(&lease, output).await {
                Err(e @ Error::Database(_)) => return Err(e),
                r => out.push(r),
            }
        }
        Ok(out)
    }

    /// Reports a failed attempt. Transient failures are retried after a backoff while attempts
    /// remain; permanent ones (or the last attempt) fail the task and its job, cancelling the rest.
    async fn fail(&self, lease: &Lease, error: &str, kind: FailureKind) -> Result<FailOutcome>;

    /// Hands a live lease back without counting the attempt as a failure: an agent shutting
    /// down gracefully gives its unfinished task back, and the task is ready again at once
    /// with its attempt budget unchanged (restarts of the cluster never fail a session). The
    /// attempt number still advances on the next claim, so the handed-back lease stays fenced.
    /// [`Error::LeaseLost`] if the lease expired or was superseded (then the expiry counts, as
    /// a crash does); [`Error::TaskCancelled`] if the job ended meanwhile.
    async fn release(&self, lease: &Lease) -> Result<()>;

    /// Makes tasks whose lease expired ready again, or fails them (and their job) when their
    /// attempts are used up. Safe to run from several processes at once. Returns how many tasks
    /// it handled.
    async fn requeue_expired(&self) -> Result<u64>;

    /// Moves running jobs past their deadline to `timed_out`, cancelling their tasks.
    async fn expire_jobs(&self) -> Result<Vec<JobId>>;

    /// Reclaims the dead row versions every claim and completion leaves behind, so the heads
    /// of the "ready" indexes that claims walk stay short. The housekeeper calls it each pass:
    /// PostgreSQL's autovacuum visits a database at most once per `autovacuum_naptime` (a
    /// minute by default), and a busy queue fills its heads with dead entries much sooner
    /// (a claim's pick cost ~18 ms instead of ~0.1 ms with 1,000 agents). It also refreshes
    /// the planner's statistics: a new database is not analysed for a minute or more, and
    /// plans made while it thought the queue empty cost a claim 166 ms at 100,000 tasks. Safe
    /// to call from many processes at once: a table another vacuum holds is skipped. SQLite
    /// keeps no old row versions and plans by index, so there it does nothing.
    async fn vacuum(&self) -> Result<()>;

    /// Cancels a running job and all its unfinished tasks. `false` if it had already ended.
    async fn cancel_job(&self, job: JobId) -> Result<bool> {
        self.end_job(job, JobState::Cancelled, "cancelled by request").await
    }

    /// Ends a running job in `state` (cancelled, failed or timed out) with `reason` as its
    /// error, cancelling every unfinished task, in one transaction. `false` if it had already
    /// ended; [`Error::InvalidArgument`] for `running` or `succeeded`.
    async fn end_job(&self, job: JobId, state: JobState, reason: &str) -> Result<bool>;

    /// Runs a failed job again from its task `from` (the one that plans the rest): every other
    /// task is deleted, `from` becomes ready with a fresh attempt budget and no output, and the
    /// job is running again, in one transaction. Nothing else of the failed run is kept, since
    /// the cluster frees a failed job's intermediate data when it ends. Leases of the failed run
    /// stay fenced (attempt numbers keep counting). `false` if the job is not failed;
    /// [`Error::InvalidArgument`] if it has no task `from`.
    async fn restart_job(&self, job: JobId, from: &str) -> Result<bool>;

    /// Records that `agent`, serving `kinds`, is alive now, and what it says about itself
    /// (`info`, stored as is; see [`AgentInfo::info`]). Agents call it every heartbeat period,
    /// idle or busy.
    async fn agent_seen(&self, agent: &str, kinds: &[Kind], info: &serde_json::Value)
    -> Result<()>;

    /// Agents that reported within `within`, most recently seen first.
    async fn agents(&self, within: Duration) -> Result<Vec<AgentInfo>>;

    /// Which live agents the reservations pin now ([`pin`]), in pin order.
    async fn pins(&self) -> Result<Vec<pin::AgentPin>>;

    /// Deletes the agents that have not reported for longer than `unseen_for`, returning how
    /// many. An agent that reports again afterwards is recorded anew.
    async fn forget_agents(&self, unseen_for: Duration) -> Result<u64>;

    /// The backlog of every kind that has a stream, in kind order: ready and running tasks,
    /// the oldest ready task, the declared work waiting, and the mean duration of the last
    /// `sample` tasks of the kind that finished successfully.
    async fn backlog(&self, sample: u32) -> Result<Vec<Backlog>>;

    /// What was finished over the last `window`, per worker kind and value of the jobs' meta
    /// field `meta_key` ([`Served`]), in kind then group order. Reads done tasks by their
    /// finish time; jobs deleted by [`TaskDb::gc`] leave the window early. Fails with
    /// [`Error::InvalidArgument`] unless [`crate::backlog::valid_meta_key`] accepts `meta_key`.
    async fn served(&self, window: Duration, meta_key: &str) -> Result<Vec<Served>>;

    /// Stores the job's output (e.g. where its receipt is).
    async fn set_job_output(&self, job: JobId, output: serde_json::Value) -> Result<()>;

    /// Blocks until a task of `kinds` may be claimable (`true`) or `timeout` passes (`false`).
    /// Woken by notifications within milliseconds, with a slow fallback poll.
    async fn wait_for_work(&self, kinds: &[Kind], timeout: Duration) -> Result<bool>;

    /// Status of a job with task counts per kind and state.
    async fn job(&self, job: JobId) -> Result<JobStatus>;

    /// All tasks of a job, in creation order.
    async fn tasks(&self, job: JobId) -> Result<Vec<TaskInfo>>;

    /// Output of a done task (`None` if it is not done).
    async fn task_output(&self, job: JobId, key: &str) -> Result<Option<serde_json::Value>>;

    /// All streams with their settings and ready/running counts.
    async fn streams(&self) -> Result<Vec<StreamInfo>>;

    /// Jobs, newest first, filtered and paginated.
    async fn list_jobs(&self, filter: JobFilter) -> Result<Vec<JobSummary>>;

    /// Deletes up to `batch_size` jobs that ended more than `retention` ago (with their tasks),
    /// returning their ids so the caller can delete their blobs. Call repeatedly until empty.
    async fn gc(&self, retention: Duration, batch_size: u32) -> Result<Vec<JobId>>;
}
