//! The Bonsai-compatible session and receipt routes (docs/api.md), with the field names, status
//! codes and upload/download URL dance that unmodified `bonsai-sdk` clients expect.
//!
//! Upload URLs point back at this API (`PUT /images/upload/{id}`, `PUT /inputs/upload/{uuid}`,
//! `PUT /receipts/upload/{uuid}`); clients send their `x-api-key` on those PUTs too, so uploads
//! are authenticated and land in the uploader's namespace. Images are content addressed and
//! shared (the server recomputes the id, so nobody can plant a different program under an id);
//! inputs, receipts and sessions belong to one tenant. The upload routes live in
//! [`crate::uploads`], the SNARK routes in [`crate::snark`], what they share in
//! [`crate::session`].

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tiffin_storage::Error as StoreError;
use tiffin_taskdb::{JobId, JobState};
use tiffin_workflow::cluster::ClusterError;
use tiffin_workflow::spec::JobSpec;
use tiffin_workflow::{StartOptions, blobs, kinds};
use tiffin_zkvm::ReceiptKind;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorBody};
use crate::limits::BodyKind;
use crate::openapi::answers;
use crate::session::{JobKind, St, UrlRes, job_kind, owned_job, owned_session};
use crate::session::{parse_image_id, parse_uuid};
use crate::state::{AppState, FinishedSession};
use crate::status::{SessionStatus, session_status, status_name};
use crate::tenants::Tenant;
use crate::{body, idempotency, metrics, receipt_cache};

/// One million: Bonsai gives cycle limits in millions of cycles.
pub const MCYCLE: u64 = 1_000_000;
/// Largest per-session limit accepted, in millions of cycles.
pub const MAX_CYCLE_LIMIT_M: u64 = 1_000_000_000;

/// The Bonsai routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/receipts/download/{uuid}", get(receipt_download))
        .route("/receipts/{uuid}", get(receipt_url))
        .route("/sessions/create", post(session_create))
        .route("/sessions/status/{uuid}", get(session_status_route))
        .route("/sessions/logs/{uuid}", get(session_logs))
        .route("/sessions/stop/{uuid}", get(session_stop))
        .route("/sessions/exec_only_journal/{uuid}", get(exec_only_journal))
        .route("/version", get(version))
        .route("/user/quotas", get(quotas))
}

/// `POST /sessions/create` (Bonsai's `ProofReq`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ProofReq {
    /// Image id (hex).
    pub img: String,
    /// Input uuid.
    pub input: String,
    /// Receipt uuids the guest may assume.
    #[serde(default)]
    pub assumptions: Vec<String>,
    /// Stop after execution.
    #[serde(default)]
    pub execute_only: bool,
    /// Cycle limit in millions of cycles.
    #[serde(default)]
    pub exec_cycle_limit: Option<u64>,
    /// Tiffin extension: `"composite"` ends the session with the segment receipts (no lift or
    /// join recursion); `"succinct"` (the default, as Bonsai) with one succinct receipt.
    #[serde(default)]
    pub receipt_kind: SessionReceiptKind,
    /// Tiffin extension: prove again even if this tenant already proved the same image, input
    /// bytes, assumptions and receipt kind ([`crate::receipt_cache`]).
    #[serde(default)]
    pub no_cache: bool,
    /// Tiffin extension: when the session must be done (unix seconds). Within the tenant's
    /// share its tasks are claimed before those of later-due and undated sessions; a session
    /// past its deadline keeps running and its status says `deadline_missed`.
    #[serde(default)]
    pub deadline: Option<u64>,
    /// Tiffin extension: rank among the tenant's sessions due at the same time, -1000 to
    /// 1000 (higher first; default 0).
    #[serde(default)]
    pub priority: Option<i32>,
}

/// The most a session's `priority` may be (and the least, negated).
const MAX_PRIORITY: i32 = 1_000;
/// The latest `deadline` accepted (unix seconds; the year 2286).
const MAX_DEADLINE: u64 = 9_999_999_999;

/// The request's deadline and priority, checked.
fn scheduling(req: &ProofReq) -> Result<(Option<u64>, i32), ApiError> {
    if let Some(d) = req.deadline
        && (d == 0 || d > MAX_DEADLINE)
    {
        return Err(ApiError::InvalidBody(format!(
            "deadline {d}: give unix seconds, between 1 and {MAX_DEADLINE}"
        )));
    }
    let priority = req.priority.unwrap_or(0);
    if priority.abs() > MAX_PRIORITY {
        return Err(ApiError::InvalidBody(format!(
            "priority {priority}: give -{MAX_PRIORITY} to {MAX_PRIORITY}"
        )));
    }
    Ok((req.deadline, priority))
}

/// The receipt a proving session ends with (`receipt_kind` of `POST /sessions/create`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionReceiptKind {
    #[default]
    Succinct,
    Composite,
}

impl From<SessionReceiptKind> for ReceiptKind {
    fn from(kind: SessionReceiptKind) -> Self {
        match kind {
            SessionReceiptKind::Succinct => ReceiptKind::Succinct,
            SessionReceiptKind::Composite => ReceiptKind::Composite,
        }
    }
}

/// Start a session.
#[utoipa::path(post, path = "/sessions/create", tag = "bonsai", security(("api_key" = [])),
    request_body = ProofReq,
    params(("Idempotency-Key" = Option<String>, Header, description = "Tiffin extension: a retry with the same key and body gets the session the first request created (per tenant, 24 h); 1 to 255 visible ASCII characters")),
    responses(
        (status = 200, description = "The session started (or, with `cached`, a session that proved the same already)", body = crate::openapi::schemas::Created),
        (status = 400, description = "TIFFIN-API-010 body not JSON, TIFFIN-API-011 body of the wrong shape, TIFFIN-API-012 bad image id, TIFFIN-API-013 bad input or receipt UUID, TIFFIN-API-014 bad exec_cycle_limit, TIFFIN-API-024 too many assumptions, TIFFIN-API-026 bad Idempotency-Key", body = ErrorBody),
        (status = 409, description = "TIFFIN-API-034 the Idempotency-Key was used for another body, TIFFIN-API-035 its first request is still being handled", body = ErrorBody),
        (status = 404, description = "TIFFIN-API-020 no such image, input or receipt of this tenant", body = ErrorBody),
        (status = 429, description = "TIFFIN-API-050 concurrent proof quota reached, TIFFIN-API-051 cycle budget used up", body = ErrorBody),
        answers::StoreError,
        answers::DbError,
    ))]
async fn session_create(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = idempotency::key_of(&headers)?;
    let raw: serde_json::Value =
        body::json(&headers, body, st.cfg.limits.cap(BodyKind::Json)).await?;
    let req: ProofReq =
        serde_json::from_value(raw.clone()).map_err(|e| ApiError::InvalidBody(e.to_string()))?;
    let Some(key) = key else {
        return create(&st, &t, &req).await.map(Json).map(IntoResponse::into_response);
    };
    let claim = st.tenants.claim_idempotency(&t.id, &key, &idempotency::digest(&raw)).await?;
    if let Some(refused) = idempotency::refusal(&claim, &key) {
        return Err(refused);
    }
    if let idempotency::Claim::Done(session) = claim {
        return Ok(Json(json!({ "uuid": session })).into_response());
    }
    match create(&st, &t, &req).await {
        Ok(created) => {
            let session = created["uuid"].as_str().unwrap_or_default();
            st.tenants.finish_idempotency(&t.id, &key, session).await?;
            Ok(Json(created).into_response())
        }
        Err(e) => {
            st.tenants.release_idempotency(&t.id, &key).await?;
            Err(e)
        }
    }
}

/// Creates the session `req` asks for (or finds it in the receipt cache): `{"uuid"}`, with
/// `"cached": true` from the cache.
async fn create(st: &AppState, t: &Tenant, req: &ProofReq) -> Result<serde_json::Value, ApiError> {
    let spec = session_spec(st, t, req).await?;
    let cache_key = match req.execute_only || req.no_cache {
        true => None,
        false => cache_key(st, &spec).await?,
    };
    if let Some(key) = &cache_key {
        let limit = spec.cycle_limit.unwrap_or(u64::MAX);
        if let Some(done) = receipt_cache::lookup(st, &t.id, key, limit).await? {
            metrics::session_cached();
            return Ok(json!({ "uuid": done.to_string(), "cached": true }));
        }
    }
    // The tenant's concurrency quota is checked by the TaskDB in the transaction that creates
    // the job, so API processes sharing one database cannot both slip under it.
    // What the session reads is in use: its time to live starts again.
    let used: Vec<String> =
        std::iter::once(&spec.input_key).chain(&spec.assumptions).cloned().collect();
    st.tenants.touch_blobs(&t.id, &used).await?;
    let image = spec.image_id.clone();
    let quota = t.concurrent_proofs.max(0);
    let opts = StartOptions { running_limit: Some(quota), timeout: st.cfg.session_timeout };
    let job = st.cluster.start_with(&t.id, spec, opts).await?;
    // The session holds its image until it ends, whoever deletes it meanwhile.
    st.tenants.add_session_image(&job.to_string(), &image).await?;
    st.tenants.add_session(&job.to_string(), &t.id).await?;
    if let Some(key) = &cache_key {
        receipt_cache::record(st, &t.id, key, job).await?;
    }
    metrics::session_created();
    Ok(json!({ "uuid": job.to_string() }))
}

/// The job a session request asks for, once its image, input and assumptions are the tenant's
/// and its cycle limit fits the request and the tenant's quotas.
async fn session_spec(st: &AppState, t: &Tenant, req: &ProofReq) -> Result<JobSpec, ApiError> {
    let image = parse_image_id(&req.img)?.to_hex();
    let input = parse_uuid("input", &req.input)?.to_string();
    let (deadline, priority) = scheduling(req)?;
    if let Some(limit) = req.exec_cycle_limit
        && (limit == 0 || limit > MAX_CYCLE_LIMIT_M)
    {
        return Err(ApiError::InvalidCycleLimit(limit));
    }
    if !st.tenants.has_image_ref(&image, &t.id).await? || !st.cluster.has_image(&image).await? {
        return Err(ApiError::not_found("image", image));
    }
    let input_key = blobs::input(&t.id, &input);
    if !st.cluster.stores.cold.exists(&input_key).await? {
        return Err(ApiError::not_found("input", input));
    }
    let assumptions = assumption_keys(st, &t.id, &req.assumptions).await?;
    if t.cycle_usage >= t.cycle_budget {
        return Err(ApiError::CycleBudget { usage: t.cycle_usage, budget: t.cycle_budget });
    }
    // The lower of the request's limit and the tenant's quota (both in millions of cycles).
    let limit_m = req.exec_cycle_limit.unwrap_or(u64::MAX).min(t.exec_cycle_limit.max(1) as u64);
    Ok(JobSpec {
        image_id: image,
        input_key,
        po2: st.cfg.po2,
        receipt_kind: req.receipt_kind.into(),
        execute_only: req.execute_only,
        cycle_limit: Some(limit_m.saturating_mul(MCYCLE)),
        assumptions,
        max_journal_bytes: Some(st.cfg.max_journal_bytes as u64),
        deadline,
        priority,
    })
}

/// The cold-store keys of the receipts a session assumes: each once, in the order first named,
/// and no more than the cluster allows (the executor loads every assumption).
async fn assumption_keys(
    st: &AppState,
    tenant: &str,
    named: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut ids = Vec::new();
    for a in named {
        let id = parse_uuid("receipt", a)?.to_string();
        if !ids.contains(&id) {
            ids.push(id);
        }
        if ids.len() > st.cfg.max_assumptions {
            let given = named.iter().collect::<std::collections::HashSet<_>>().len();
            return Err(ApiError::TooManyAssumptions { given, max: st.cfg.max_assumptions });
        }
    }
    let mut keys = Vec::with_capacity(ids.len());
    for id in ids {
        let key = blobs::assumption(tenant, &id);
        if !st.cluster.stores.cold.exists(&key).await? {
            return Err(ApiError::not_found("receipt", id));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// The receipt-cache key of a proving session, if its input and assumptions have digests.
async fn cache_key(
    st: &AppState,
    spec: &JobSpec,
) -> Result<Option<receipt_cache::CacheKey>, ApiError> {
    let (image, kind) = (&spec.image_id, spec.receipt_kind);
    receipt_cache::key_of(st, image, &spec.input_key, &spec.assumptions, kind, spec.po2).await
}

/// A session's status, progress and statistics.
#[utoipa::path(get, path = "/sessions/status/{uuid}", tag = "bonsai", security(("api_key" = [])),
    params(("uuid" = String, Path, description = "The session's id (a UUID)")),
    responses(
        (status = 200, description = "The session's status", body = SessionStatus),
        answers::BadUuid,
        answers::NoSuchSession,
        answers::DbError,
    ))]
async fn session_status_route(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let url = |job: JobId| format!("{}/receipts/download/{job}", st.base_url(&headers));
    if let Ok(uuid) = uuid::Uuid::parse_str(&id)
        && let Some(f) = st.cached_finished(&uuid)
        && f.tenant == t.id
    {
        let mut status = f.status;
        status.receipt_url = f.has_receipt.then(|| url(uuid));
        return Ok(Json(status).into_response());
    }
    let (job, spec) = owned_session(&st, &t.id, &id).await?;
    let exec = if job.state.is_finished() { st.cluster.execution(job.id).await? } else { None };
    let has_receipt = !spec.execute_only && job.state == JobState::Succeeded;
    let status = session_status(&job, exec.as_ref(), has_receipt.then(|| url(job.id)));
    if job.state.is_finished() {
        let mut cached = status.clone();
        cached.receipt_url = None;
        st.cache_finished(
            job.id,
            FinishedSession { tenant: t.id.clone(), status: cached, has_receipt },
        );
    }
    Ok(Json(status).into_response())
}

/// The guest's stdout and stderr (for a failed guest: its failure message).
#[utoipa::path(get, path = "/sessions/logs/{uuid}", tag = "bonsai", security(("api_key" = [])),
    params(("uuid" = String, Path, description = "The session's id (a UUID)")),
    responses(
        (status = 200, description = "The guest's output", body = String, content_type = "text/plain"),
        answers::BadUuid,
        answers::NoSuchSession,
        answers::StoreError,
        answers::DbError,
    ))]
async fn session_logs(
    State(st): St,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (job, _) = owned_session(&st, &t.id, &id).await?;
    let logs = match st.cluster.logs(job.id).await? {
        Some(b) => b,
        // The executor keeps the logs of guests that halt normally; a guest that panicked
        // or faulted has its stderr in the failure message, which is what the user needs.
        None => match crate::status::error_message(&job) {
            Some(msg) if job.state == JobState::Failed => bytes::Bytes::from(msg),
            _ => bytes::Bytes::new(),
        },
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], logs).into_response())
}

/// Stop (cancel) a running session; the cancellation reaches every task and agent.
#[utoipa::path(get, path = "/sessions/stop/{uuid}", tag = "bonsai", security(("api_key" = [])),
    params(("uuid" = String, Path, description = "The session's id (a UUID)")),
    responses(
        (status = 200, description = "Stopped", body = crate::openapi::schemas::Stopped),
        answers::BadUuid,
        answers::NoSuchSession,
        (status = 409, description = "TIFFIN-API-031 the session already ended", body = ErrorBody),
        answers::DbError,
    ))]
async fn session_stop(
    State(st): St,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (job, _) = owned_session(&st, &t.id, &id).await?;
    if job.state.is_finished() || !st.cluster.cancel(job.id).await? {
        let now = st.cluster.job(job.id).await?;
        return Err(ApiError::AlreadyEnded { id, status: status_name(now.state).into() });
    }
    Ok(Json(json!({ "status": "ABORTED" })).into_response())
}

/// The journal of a succeeded execute-only session.
#[utoipa::path(get, path = "/sessions/exec_only_journal/{uuid}", tag = "bonsai", security(("api_key" = [])),
    params(("uuid" = String, Path, description = "The session's id (a UUID)")),
    responses(
        (status = 200, description = "The journal's bytes", content(("application/octet-stream"))),
        (status = 400, description = "TIFFIN-API-013 the id is not a UUID, TIFFIN-API-019 a proving session (its journal is in its receipt)", body = ErrorBody),
        answers::NoSuchSession,
        (status = 409, description = "TIFFIN-API-032 still running, or ended without a journal", body = ErrorBody),
        answers::StoreError,
        answers::DbError,
    ))]
async fn exec_only_journal(
    State(st): St,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (job, spec) = owned_session(&st, &t.id, &id).await?;
    if !spec.execute_only {
        return Err(ApiError::Unsupported(format!(
            "session {id} is a proving session; its journal is in its receipt (GET /receipts/{id})"
        )));
    }
    match job.state {
        JobState::Running => {
            return Err(ApiError::NotReady(format!(
                "session {id} is still running; poll its status"
            )));
        }
        JobState::Succeeded => {}
        other => {
            return Err(ApiError::NotReady(format!(
                "session {id} ended {} and has no journal",
                status_name(other)
            )));
        }
    }
    let journal = st.cluster.journal(job.id).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], journal).into_response())
}

/// The tenant's job whose receipt is requested, if it succeeded and the receipt exists.
async fn finished_receipt(st: &AppState, tenant: &str, id: &str) -> Result<JobId, ApiError> {
    let job = owned_job(st, tenant, "receipt", id).await?;
    let is_proof = match job_kind(&job) {
        Some(JobKind::Session(spec)) => !spec.execute_only,
        Some(JobKind::Snark(_)) => true,
        None => false,
    };
    if !is_proof || job.state != JobState::Succeeded {
        return Err(ApiError::not_found("receipt", id));
    }
    Ok(job.id)
}

/// Where to download a succeeded session's (or SNARK job's) receipt.
#[utoipa::path(get, path = "/receipts/{uuid}", tag = "bonsai", security(("api_key" = [])),
    params(("uuid" = String, Path, description = "The id (a UUID) of the session or SNARK job whose receipt it is")),
    responses(
        (status = 200, description = "The receipt's download URL", body = UrlRes),
        answers::BadUuid,
        (status = 404, description = "TIFFIN-API-020 no receipt (yet) under this id for this tenant", body = ErrorBody),
        answers::StoreError,
        answers::DbError,
    ))]
async fn receipt_url(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = finished_receipt(&st, &t.id, &id).await?;
    if !st.cluster.has_receipt(job).await? {
        return Err(ApiError::not_found("receipt", id));
    }
    Ok(Json(UrlRes { url: format!("{}/receipts/download/{job}", st.base_url(&headers)) })
        .into_response())
}

/// The receipt, a bincode risc0 `Receipt`.
#[utoipa::path(get, path = "/receipts/download/{uuid}", tag = "bonsai", security(("api_key" = [])),
    params(("uuid" = String, Path, description = "The id (a UUID) of the session or SNARK job whose receipt it is")),
    responses(
        (status = 200, description = "The bincode `Receipt`", content(("application/octet-stream"))),
        answers::BadUuid,
        (status = 404, description = "TIFFIN-API-020 no receipt (yet) under this id for this tenant", body = ErrorBody),
        answers::StoreError,
        answers::DbError,
    ))]
async fn receipt_download(
    State(st): St,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let job = finished_receipt(&st, &t.id, &id).await?;
    let stream = match st.cluster.receipt_stream(job).await {
        Ok(s) => s,
        Err(ClusterError::Store(StoreError::NotFound { .. })) => {
            return Err(ApiError::not_found("receipt", id));
        }
        Err(e) => return Err(e.into()),
    };
    let body = Body::from_stream(stream.map_err(std::io::Error::other));
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

/// The risc0-zkvm versions this cluster proves with.
#[utoipa::path(get, path = "/version", tag = "bonsai", security(("api_key" = [])),
    responses((status = 200, description = "Versions", body = crate::openapi::schemas::Version)))]
async fn version(Auth(_): Auth) -> Json<serde_json::Value> {
    Json(json!({ "risc0_zkvm": [tiffin_zkvm::RISC0_ZKVM_VERSION] }))
}

/// `GET /user/quotas` (Bonsai's `Quotas`).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Quotas {
    /// Per-session limit, millions of cycles.
    pub exec_cycle_limit: i64,
    /// Sessions at once.
    pub concurrent_proofs: i64,
    /// Cycles left in the budget.
    pub cycle_budget: i64,
    /// Cycles used so far.
    pub cycle_usage: i64,
    /// Reserved executor tasks.
    pub dedicated_executor: i32,
    /// Reserved prover tasks.
    pub dedicated_gpu: i32,
    /// Tiffin extension: bytes of inputs, receipts and images the tenant may store.
    #[serde(default)]
    pub storage_quota: i64,
    /// Tiffin extension: bytes it stores now.
    #[serde(default)]
    pub storage_usage: i64,
}

/// The tenant's quotas and usage.
#[utoipa::path(get, path = "/user/quotas", tag = "bonsai", security(("api_key" = [])),
    responses(
        (status = 200, description = "Quotas and usage", body = Quotas),
        answers::DbOrTenantsError,
    ))]
async fn quotas(State(st): St, Auth(t): Auth) -> Result<Json<Quotas>, ApiError> {
    // Usage changes as sessions end: read it fresh, not from the authentication cache.
    let t = st.tenants.tenant(&t.name).await?.unwrap_or(t);
    let streams = st.db().streams().await?;
    let reserved = |kind: &str| {
        streams
            .iter()
            .find(|s| s.tenant == t.id && s.kind == kind)
            .map(|s| s.config.reserved)
            .unwrap_or(0)
    };
    Ok(Json(Quotas {
        exec_cycle_limit: t.exec_cycle_limit,
        concurrent_proofs: t.concurrent_proofs,
        cycle_budget: t.cycle_budget.saturating_sub(t.cycle_usage).max(0),
        cycle_usage: t.cycle_usage,
        dedicated_executor: reserved(kinds::EXEC),
        dedicated_gpu: reserved(kinds::PROVE),
        storage_quota: t.storage_quota,
        storage_usage: t.storage_usage,
    }))
}
