//! The Bonsai SNARK routes: a succeeded proving session's receipt converted to Groth16 by a
//! job of its own (kind `snark`), which counts against the tenant's concurrency quota like a
//! session.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tiffin_taskdb::{JobState, NewJob, NewTask};
use tiffin_workflow::kinds;
use tiffin_workflow::spec::TaskPayload;

use crate::auth::Auth;
use crate::bonsai::{JobKind, St, job_kind, owned_job, owned_session};
use crate::limits::BodyKind;
use crate::status::{SnarkStatus, status_name};
use crate::{ApiError, AppState, ErrorBody, body};

/// The SNARK routes (see [`crate::bonsai::routes`]).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/snark/create", post(snark_create))
        .route("/snark/status/{uuid}", get(snark_status))
}

/// `POST /snark/create` (Bonsai's `SnarkReq`).
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SnarkReq {
    /// The succeeded proving session whose receipt to convert to Groth16.
    session_id: String,
}

/// Convert a succeeded proving session's receipt to Groth16.
#[utoipa::path(post, path = "/snark/create", tag = "bonsai", security(("api_key" = [])),
    request_body = SnarkReq,
    responses(
        (status = 200, description = "The SNARK job started", body = crate::openapi::schemas::Created),
        (status = 400, description = "TIFFIN-API-010 body not JSON, TIFFIN-API-011 body of the wrong shape, TIFFIN-API-013 bad session UUID, TIFFIN-API-019 an execute-only session", body = ErrorBody),
        (status = 404, description = "TIFFIN-API-020 no such session of this tenant", body = ErrorBody),
        (status = 409, description = "TIFFIN-API-032 the session has not succeeded", body = ErrorBody),
        (status = 429, description = "TIFFIN-API-050 concurrent proof quota reached", body = ErrorBody),
        (status = 503, description = "TIFFIN-API-090 task database error", body = ErrorBody),
    ))]
async fn snark_create(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let req: SnarkReq = body::json(&headers, body, st.cfg.limits.cap(BodyKind::Json)).await?;
    let (job, spec) = owned_session(&st, &t.id, &req.session_id).await?;
    if spec.execute_only {
        return Err(ApiError::Unsupported(format!(
            "session {} is execute-only and has no receipt to convert",
            req.session_id
        )));
    }
    if job.state != JobState::Succeeded {
        return Err(ApiError::NotReady(format!(
            "session {} is {}; a SNARK needs a SUCCEEDED session",
            req.session_id,
            status_name(job.state)
        )));
    }
    let payload = serde_json::to_value(TaskPayload::Snark { session: job.id.to_string() })
        .expect("payload serialises");
    let task = NewTask::new("snark", kinds::SNARK, payload).max_attempts(2);
    // A snark job counts against the tenant's concurrency quota like a session.
    let snark = NewJob::new(&t.id, vec![task])
        .meta(json!({ "snark_of": job.id.to_string() }))
        .running_limit(t.concurrent_proofs.max(0));
    let snark = st.db().create_job(snark).await?;
    Ok(Json(json!({ "uuid": snark.to_string() })).into_response())
}

/// A SNARK job's status.
#[utoipa::path(get, path = "/snark/status/{uuid}", tag = "bonsai", security(("api_key" = [])),
    params(("uuid" = String, Path, description = "The SNARK job's id (a UUID)")),
    responses(
        (status = 200, description = "The SNARK job's status", body = SnarkStatus),
        (status = 400, description = "TIFFIN-API-013 the id is not a UUID", body = ErrorBody),
        (status = 404, description = "TIFFIN-API-020 no such SNARK job of this tenant", body = ErrorBody),
        (status = 503, description = "TIFFIN-API-090 task database error", body = ErrorBody),
    ))]
async fn snark_status(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = owned_job(&st, &t.id, "snark", &id).await?;
    if !matches!(job_kind(&job), Some(JobKind::Snark(_))) {
        return Err(ApiError::not_found("snark", id));
    }
    let output = (job.state == JobState::Succeeded)
        .then(|| format!("{}/receipts/download/{}", st.base_url(&headers), job.id));
    Ok(Json(SnarkStatus {
        status: status_name(job.state).into(),
        output,
        error_msg: crate::status::error_message(&job),
    })
    .into_response())
}
