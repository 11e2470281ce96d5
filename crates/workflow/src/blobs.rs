//! Where each artefact lives. Every key of a job's intermediate data starts with
//! [`job_prefix`], so GC removes a job's blobs with one prefix delete; outputs are keyed by
//! (job, task key) so a retried task overwrites, never duplicates.

use tiffin_taskdb::JobId;

/// Cold: an uploaded program binary, content addressed by image id.
pub fn image(image_id: &str) -> String {
    format!("images/{image_id}")
}

/// Cold: an uploaded input.
pub fn input(tenant: &str, id: &str) -> String {
    format!("inputs/{tenant}/{id}")
}

/// Prefix of everything a job owns, hot and cold.
pub fn job_prefix(job: JobId) -> String {
    format!("jobs/{job}/")
}

/// Hot: segment `index` of a job.
pub fn segment(job: JobId, index: u32) -> String {
    format!("jobs/{job}/segments/{index}")
}

/// Hot: the output of a task (lifted, joined or segment receipt).
pub fn task_output(job: JobId, task_key: &str) -> String {
    format!("jobs/{job}/out/{}", task_key.replace(':', "_"))
}

/// Cold: the final receipt (bincode `risc0_zkvm::Receipt`).
pub fn receipt(job: JobId) -> String {
    format!("jobs/{job}/receipt")
}

/// Cold: the journal the job's guest committed.
pub fn journal(job: JobId) -> String {
    format!("jobs/{job}/journal")
}

/// Cold: the guest's stdout and stderr.
pub fn logs(job: JobId) -> String {
    format!("jobs/{job}/logs")
}
