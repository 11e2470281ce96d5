//! What the Bonsai routes share: the state extractor, id parsing, what kind of job an id names,
//! and the tenant's own jobs and sessions (another tenant's id answers 404 exactly as an id
//! that never existed).

use std::sync::Arc;

use axum::extract::State;
use serde::Serialize;
use tiffin_taskdb::JobStatus;
use tiffin_workflow::cluster::ClusterError;
use tiffin_workflow::spec::{JobSpec, SNARK_OF};
use tiffin_zkvm::ImageId;

use crate::error::ApiError;
use crate::state::AppState;

/// The state extractor of every route.
pub(crate) type St = State<Arc<AppState>>;

/// An image id as a client writes it: 64 hex digits, either case.
pub(crate) fn parse_image_id(s: &str) -> Result<ImageId, ApiError> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::InvalidImageId(s.into()));
    }
    s.to_ascii_lowercase().parse().map_err(|_| ApiError::InvalidImageId(s.into()))
}

/// A UUID as a client writes it; `what` names it in the error.
pub(crate) fn parse_uuid(what: &'static str, s: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(s).map_err(|_| ApiError::InvalidUuid { what, id: s.into() })
}

/// What a job is, from its meta: sessions carry their [`JobSpec`], snark jobs `snark_of`.
pub enum JobKind {
    /// A proving or execute-only session.
    Session(JobSpec),
    /// A Groth16 conversion of another session.
    Snark(String),
}

/// Reads a job's kind from its meta.
pub fn job_kind(job: &JobStatus) -> Option<JobKind> {
    if let Some(s) = job.meta.get(SNARK_OF).and_then(|v| v.as_str()) {
        return Some(JobKind::Snark(s.to_string()));
    }
    serde_json::from_value(job.meta.clone()).ok().map(JobKind::Session)
}

/// The tenant's job `id`, or 404 for unknown ids and other tenants' jobs alike.
pub(crate) async fn owned_job(
    state: &AppState,
    tenant: &str,
    what: &'static str,
    id: &str,
) -> Result<JobStatus, ApiError> {
    let uuid = parse_uuid(what, id)?;
    match state.cluster.job(uuid).await {
        Ok(job) if job.tenant == tenant => Ok(job),
        Ok(_) | Err(ClusterError::Db(tiffin_taskdb::Error::JobNotFound(_))) => {
            Err(ApiError::not_found(what, id))
        }
        Err(e) => Err(e.into()),
    }
}

/// The tenant's session `id` with its spec, or 404 (also for a SNARK job's id).
pub(crate) async fn owned_session(
    state: &AppState,
    tenant: &str,
    id: &str,
) -> Result<(JobStatus, JobSpec), ApiError> {
    let job = owned_job(state, tenant, "session", id).await?;
    match job_kind(&job) {
        Some(JobKind::Session(spec)) => Ok((job, spec)),
        _ => Err(ApiError::not_found("session", id)),
    }
}

/// Where to upload or download (Bonsai's `UploadRes` without an id, `ReceiptDownload`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct UrlRes {
    /// The URL, on this API.
    pub(crate) url: String,
}
