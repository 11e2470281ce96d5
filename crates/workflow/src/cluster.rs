//! The cluster facade: what the CLI and the API use to submit a proving job, follow its
//! progress and read its results (docs/architecture.md, "The life of a session").

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tiffin_storage::{ByteStream, Stores};
use tiffin_taskdb::{JobId, JobState, JobStatus, NewJob, NewTask, TaskDb};
use tiffin_zkvm::{ImageId, Receipt, ReceiptKind, decode};

use crate::progress::Progress;
use crate::spec::{EXECUTE_KEY, ExecuteOutput, JobSpec, SNARK_KEY, SNARK_OF, TaskPayload};
use crate::{blobs, kinds};

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The program is not a valid RISC Zero program binary.
    #[error(transparent)]
    Program(#[from] tiffin_zkvm::ZkvmError),
    /// The queue failed.
    #[error(transparent)]
    Db(#[from] tiffin_taskdb::Error),
    /// A store failed.
    #[error(transparent)]
    Store(#[from] tiffin_storage::Error),
    /// The job ended without a receipt.
    #[error("TIFFIN-WORKFLOW-010 job {job} ended {state}: {error}")]
    JobEnded {
        /// The job.
        job: JobId,
        /// Its final state.
        state: String,
        /// Why.
        error: String,
    },
}

/// A proving job to submit.
#[derive(Clone, Debug)]
pub struct ProveRequest {
    /// Owner; its streams decide the job's share of the cluster.
    pub tenant: String,
    /// The `R0BF` program binary.
    pub program: Bytes,
    /// The guest input.
    pub input: Bytes,
    /// Segment size (power of two).
    pub po2: u32,
    /// Succinct or composite.
    pub receipt_kind: ReceiptKind,
    /// Stop after execute.
    pub execute_only: bool,
    /// Cycle limit.
    pub cycle_limit: Option<u64>,
}

/// A finished job's results.
#[derive(Clone, Debug)]
pub struct JobOutcome {
    /// Final status.
    pub status: JobStatus,
    /// What execute reported.
    pub execution: ExecuteOutput,
}

/// Submits jobs and reads results.
#[derive(Clone)]
pub struct Cluster {
    /// The queue.
    pub db: Arc<dyn TaskDb>,
    /// The stores.
    pub stores: Stores,
}

/// Limits a job is started under.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Refuse the job if the tenant already runs this many (checked in the TaskDB transaction
    /// that creates it, so the limit holds across API processes).
    pub running_limit: Option<i64>,
    /// Time the job out (TIMED_OUT, its tasks cancelled) this long after it is created.
    pub timeout: Option<Duration>,
}

impl Cluster {
    /// A facade over an existing queue and stores.
    pub fn new(db: Arc<dyn TaskDb>, stores: Stores) -> Self {
        Self { db, stores }
    }

    /// Stores a program under its image id (content addressed, so uploading twice is free).
    pub async fn upload_image(&self, program: Bytes) -> Result<ImageId, ClusterError> {
        let id = ImageId::of_program(&program)?;
        self.put_image(&id, program).await?;
        Ok(id)
    }

    /// Stores a program under `id`, which the caller computed from it (content addressed: a
    /// program already stored stays as it is).
    pub async fn put_image(&self, id: &ImageId, program: Bytes) -> Result<(), ClusterError> {
        let key = blobs::image(&id.to_hex());
        if !self.stores.cold.exists(&key).await? {
            self.stores.cold.put(&key, program).await?;
        }
        Ok(())
    }

    /// Whether the program with image id `image` (hex) is stored.
    pub async fn has_image(&self, image: &str) -> Result<bool, ClusterError> {
        Ok(self.stores.cold.exists(&blobs::image(image)).await?)
    }

    /// Deletes the program with image id `image` (hex); its holders decide when.
    pub async fn delete_image(&self, image: &str) -> Result<(), ClusterError> {
        Ok(self.stores.cold.delete(&blobs::image(image)).await?)
    }

    /// Stores an input and returns its key.
    pub async fn upload_input(&self, tenant: &str, input: Bytes) -> Result<String, ClusterError> {
        let key = blobs::input(tenant, &uuid::Uuid::new_v4().to_string());
        self.stores.cold.put(&key, input).await?;
        Ok(key)
    }

    /// Uploads program and input and starts the job (one execute task; it plans the rest).
    pub async fn submit(&self, req: ProveRequest) -> Result<JobId, ClusterError> {
        let image = self.upload_image(req.program).await?;
        let input_key = self.upload_input(&req.tenant, req.input).await?;
        let spec = JobSpec {
            image_id: image.to_hex(),
            input_key,
            po2: req.po2,
            receipt_kind: req.receipt_kind,
            execute_only: req.execute_only,
            cycle_limit: req.cycle_limit,
            assumptions: Vec::new(),
            max_journal_bytes: None,
            deadline: None,
            priority: 0,
        };
        self.start(&req.tenant, spec).await
    }

    /// Starts a job over an image and input already in the cold store.
    pub async fn start(&self, tenant: &str, spec: JobSpec) -> Result<JobId, ClusterError> {
        self.start_with(tenant, spec, StartOptions::default()).await
    }

    /// [`Cluster::start`] with a tenant's limits (see [`StartOptions`]).
    pub async fn start_with(
        &self,
        tenant: &str,
        spec: JobSpec,
        opts: StartOptions,
    ) -> Result<JobId, ClusterError> {
        let meta = serde_json::to_value(&spec).expect("spec serialises");
        let (deadline, priority) = (spec.deadline, spec.priority);
        let exec = NewTask::new(
            EXECUTE_KEY,
            kinds::EXEC,
            serde_json::to_value(TaskPayload::Execute(spec)).expect("payload serialises"),
        )
        .max_attempts(3);
        let mut job = NewJob::new(tenant, vec![exec]).meta(meta).priority(priority);
        if let Some(due) = deadline.and_then(|d| chrono::DateTime::from_timestamp(d as i64, 0)) {
            job = job.due(due);
        }
        job.running_limit = opts.running_limit;
        job.deadline = opts
            .timeout
            .and_then(|t| chrono::Duration::from_std(t).ok())
            .map(|t| chrono::Utc::now() + t);
        Ok(self.db.create_job(job).await?)
    }

    /// Starts a Groth16 conversion of the succeeded proving job `session` (one `snark` task,
    /// two attempts), counted against the tenant's running jobs like a session.
    pub async fn start_snark(
        &self,
        tenant: &str,
        session: JobId,
        running_limit: i64,
    ) -> Result<JobId, ClusterError> {
        let payload = serde_json::to_value(TaskPayload::Snark { session: session.to_string() })
            .expect("payload serialises");
        let task = NewTask::new(SNARK_KEY, kinds::SNARK, payload).max_attempts(2);
        let job = NewJob::new(tenant, vec![task])
            .meta(serde_json::json!({ SNARK_OF: session.to_string() }))
            .running_limit(running_limit);
        Ok(self.db.create_job(job).await?)
    }

    /// The job's status.
    pub async fn job(&self, job: JobId) -> Result<JobStatus, ClusterError> {
        Ok(self.db.job(job).await?)
    }

    /// Where the job stands.
    pub async fn progress(&self, job: JobId) -> Result<(JobStatus, Progress), ClusterError> {
        let status = self.job(job).await?;
        let p = Progress::of(&status);
        Ok((status, p))
    }

    /// Cancels a job; agents learn it at their next heartbeat.
    pub async fn cancel(&self, job: JobId) -> Result<bool, ClusterError> {
        Ok(self.db.cancel_job(job).await?)
    }

    /// Runs a failed job again from its execute task, which re-plans everything (the failed
    /// run's intermediate data was freed when it failed). `false` if the job is not failed.
    pub async fn restart(&self, job: JobId) -> Result<bool, ClusterError> {
        Ok(self.db.restart_job(job, EXECUTE_KEY).await?)
    }

    /// Polls until the job ends, calling `on_progress` after every poll. Returns the outcome
    /// of a succeeded job, or [`ClusterError::JobEnded`] with the first failure's message.
    pub async fn wait(
        &self,
        job: JobId,
        poll: Duration,
        mut on_progress: impl FnMut(&Progress),
    ) -> Result<JobOutcome, ClusterError> {
        loop {
            let (status, p) = self.progress(job).await?;
            on_progress(&p);
            if status.state.is_finished() {
                if status.state != JobState::Succeeded {
                    let error = status
                        .first_failure
                        .as_ref()
                        .map(|f| format!("{} ({}): {}", f.task, f.kind, f.error))
                        .or(status.error.clone())
                        .unwrap_or_else(|| "no error recorded".into());
                    return Err(ClusterError::JobEnded {
                        job,
                        state: status.state.as_str().into(),
                        error,
                    });
                }
                let execution = self.execution(job).await?.unwrap_or_default();
                return Ok(JobOutcome { status, execution });
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// What the job's execute task reported, once it finished (`None` before that).
    pub async fn execution(&self, job: JobId) -> Result<Option<ExecuteOutput>, ClusterError> {
        let out = self.db.task_output(job, EXECUTE_KEY).await?;
        Ok(out.and_then(|v| serde_json::from_value(v).ok()))
    }

    /// The cycles `job`'s execution recorded as it ran or when its guest failed
    /// ([`blobs::executed`]); `None` when none were recorded.
    pub async fn executed_so_far(&self, job: JobId) -> Result<Option<u64>, ClusterError> {
        let key = blobs::executed(job);
        if !self.stores.cold.exists(&key).await? {
            return Ok(None);
        }
        let bytes = self.stores.cold.get(&key).await?;
        Ok(std::str::from_utf8(&bytes).ok().and_then(|t| t.trim().parse().ok()))
    }

    /// Deletes what a tenant uploaded (inputs, receipts) and its receipt-cache entries; its
    /// jobs' data goes with the jobs, and shared images with their last holder.
    pub async fn delete_tenant_blobs(&self, tenant: &str) -> Result<(), ClusterError> {
        let prefixes =
            [blobs::input(tenant, ""), blobs::assumption(tenant, ""), blobs::cache_prefix(tenant)];
        for prefix in prefixes {
            self.stores.cold.delete_prefix(&prefix).await?;
        }
        Ok(())
    }

    /// Whether the job's final receipt is stored.
    pub async fn has_receipt(&self, job: JobId) -> Result<bool, ClusterError> {
        Ok(self.stores.cold.exists(&blobs::receipt(job)).await?)
    }

    /// The job's final receipt as stored (bincode), streamed.
    pub async fn receipt_stream(&self, job: JobId) -> Result<ByteStream, ClusterError> {
        Ok(self.stores.cold.get_stream(&blobs::receipt(job)).await?)
    }

    /// The journal an execute-only job's guest committed.
    pub async fn journal(&self, job: JobId) -> Result<Bytes, ClusterError> {
        Ok(self.stores.cold.get(&blobs::journal(job)).await?)
    }

    /// The guest's stdout and stderr, if the executor kept them (it keeps those of guests that
    /// halted normally).
    pub async fn logs(&self, job: JobId) -> Result<Option<Bytes>, ClusterError> {
        match self.stores.cold.get(&blobs::logs(job)).await {
            Ok(b) => Ok(Some(b)),
            Err(tiffin_storage::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The verified receipt of a succeeded proving job.
    pub async fn receipt(&self, job: JobId) -> Result<Receipt, ClusterError> {
        let bytes = self.stores.cold.get(&blobs::receipt(job)).await?;
        Ok(decode("receipt", &bytes)?)
    }
}
