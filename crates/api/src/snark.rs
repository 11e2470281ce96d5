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
use tiffin_taskdb::JobState;

use crate::auth::Auth;
use crate::body;
use crate::error::{ApiError, ErrorBody};
use crate::limits::BodyKind;
use crate::openapi::answers;
use crate::session::{JobKind, St, job_kind, owned_job, owned_session};
use crate::state::AppState;
use crate::status::{SnarkStatus, status_name};

/// The SNARK routes (merged by [`crate::router`]).
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
        answers::NoSuchSession,
        (status = 409, description = "TIFFIN-API-032 the session has not succeeded", body = ErrorBody),
        (status = 429, description = "TIFFIN-API-050 concurrent proof quota reached", body = ErrorBody),
        answers::DbError,
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
    // A snark job counts against the tenant's concurrency quota like a session.
    let snark = st.cluster.start_snark(&t.id, job.id, t.concurrent_proofs.max(0)).await?;
    Ok(Json(json!({ "uuid": snark.to_string() })).into_response())
}

/// A SNARK job's status.
#[utoipa::path(get, path = "/snark/status/{uuid}", tag = "bonsai", security(("api_key" = [])),
    params(("uuid" = String, Path, description = "The SNARK job's id (a UUID)")),
    responses(
        (status = 200, description = "The SNARK job's status", body = SnarkStatus),
        answers::BadUuid,
        (status = 404, description = "TIFFIN-API-020 no such SNARK job of this tenant", body = ErrorBody),
        answers::DbError,
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
