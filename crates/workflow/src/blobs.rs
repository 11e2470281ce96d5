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

/// Cold: an uploaded receipt, which sessions of its tenant may assume (composition).
pub fn assumption(tenant: &str, id: &str) -> String {
    format!("assumptions/{tenant}/{id}")
}

/// Cold: the SHA-256 (hex) of the uploaded blob at `key` (an input or a receipt), stored
/// beside it for the API's receipt cache.
pub fn digest(key: &str) -> String {
    format!("{key}.sha256")
}

/// Cold: prefix of a tenant's receipt-cache entries (deleted with the tenant).
pub fn cache_prefix(tenant: &str) -> String {
    format!("cache/{tenant}/")
}

/// Cold: the tenant's receipt-cache entry named `digest` (it holds the id of the session).
pub fn cache_entry(tenant: &str, digest: &str) -> String {
    format!("{}{digest}", cache_prefix(tenant))
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

/// Cold: the cycles a job's execution ran so far (decimal text), written as it runs and when it
/// fails, so a session that fails or is stopped mid-execution is still charged for them.
pub fn executed(job: JobId) -> String {
    format!("jobs/{job}/executed")
}

/// Cold: the guest's stdout and stderr.
pub fn logs(job: JobId) -> String {
    format!("jobs/{job}/logs")
}
