//! Admin routes (`x-admin-key`, docs/api.md): tenants, keys, quotas, priority multipliers and reservations,
//! jobs and queues; the agent registry ([`registry`]), the queue report ([`queue_report`]) and
//! the overview the status page reads ([`overview`]).
//! A tenant's priority and reservations are applied to its TaskDB streams, so the scheduler
//! acts on them at the next claim.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tiffin_taskdb::{JobFilter, JobState, Kind, ReservationIdle, StreamConfig};
use tiffin_workflow::kinds;

use crate::auth::Admin;
use crate::error::{ApiError, ErrorBody};
use crate::limits::BodyKind;
use crate::openapi::answers;
use crate::openapi::schemas::TenantView;
use crate::session::St;
use crate::state::AppState;
use crate::tenants::{KeyInfo, Tenant, valid_tenant_name};
use crate::{body, capacity_route, overview, pins, queue_report, registry};

/// The admin routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/tenants", get(list_tenants).post(create_tenant))
        .route("/admin/tenants/{name}", get(get_tenant).patch(patch_tenant).delete(delete_tenant))
        .route("/admin/tenants/{name}/keys", get(list_keys).post(create_key))
        .route("/admin/keys/{id}", delete(revoke_key))
        .route("/admin/jobs", get(list_jobs))
        .route("/admin/jobs/{id}", get(get_job))
        .route("/admin/jobs/{id}/cancel", post(cancel_job))
        .route("/admin/jobs/{id}/retry", post(retry_job))
        .route("/admin/queues", get(queues))
        .route("/admin/agents", get(registry::agents))
        .route("/admin/pins", get(pins::pins))
        .route("/admin/queue-report", get(queue_report::queue_report))
        .route("/admin/capacity", get(capacity_route::capacity))
        .route("/admin/overview", get(overview::overview))
}

/// Changes to a tenant (every field optional); also the body of tenant creation.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    /// Name (creation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Sessions at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_proofs: Option<i64>,
    /// Millions of cycles per session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_cycle_limit: Option<i64>,
    /// Total cycles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_budget: Option<i64>,
    /// Fair-share weight (> 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<f64>,
    /// Bytes of inputs, uploaded receipts and images it may store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_quota: Option<i64>,
    /// Reserved concurrent tasks per worker kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservations: Option<BTreeMap<String, i32>>,
    /// What a kind's pinned agents do while the tenant has nothing of it ready:
    /// `serve-others` (the default) or `wait`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub reservation_idle: Option<BTreeMap<String, ReservationIdle>>,
}

impl TenantPatch {
    fn apply(&self, t: &mut Tenant) -> Result<(), ApiError> {
        let non_negative = |what: &str, v: Option<i64>| match v {
            Some(v) if v < 0 => {
                Err(ApiError::InvalidSetting(format!("{what} must be >= 0, got {v}")))
            }
            _ => Ok(v),
        };
        if let Some(v) = non_negative("concurrent_proofs", self.concurrent_proofs)? {
            t.concurrent_proofs = v;
        }
        if let Some(v) = non_negative("exec_cycle_limit", self.exec_cycle_limit)? {
            t.exec_cycle_limit = v;
        }
        if let Some(v) = non_negative("cycle_budget", self.cycle_budget)? {
            t.cycle_budget = v;
        }
        if let Some(v) = non_negative("storage_quota", self.storage_quota)? {
            t.storage_quota = v;
        }
        if let Some(p) = self.priority {
            if !(p.is_finite() && p > 0.0) {
                return Err(ApiError::InvalidSetting(format!(
                    "priority must be a number > 0, got {p}"
                )));
            }
            t.priority = p;
        }
        let idle_kinds = self.reservation_idle.iter().flatten().map(|(k, _)| k);
        if let Some(kind) = idle_kinds.into_iter().find(|k| !kinds::ALL.contains(&k.as_str())) {
            return Err(ApiError::InvalidSetting(format!(
                "unknown worker kind {kind:?} in reservation_idle; valid: {}",
                kinds::ALL.join(",")
            )));
        }
        for (kind, n) in self.reservations.iter().flatten() {
            if !kinds::ALL.contains(&kind.as_str()) {
                return Err(ApiError::InvalidSetting(format!(
                    "unknown worker kind {kind:?} in reservations; valid: {}",
                    kinds::ALL.join(",")
                )));
            }
            if *n < 0 {
                return Err(ApiError::InvalidSetting(format!(
                    "reservation for {kind} must be >= 0, got {n}"
                )));
            }
        }
        Ok(())
    }
}

/// The tenant's stream settings by kind.
async fn settings(st: &AppState, tenant: &str) -> Result<BTreeMap<String, StreamConfig>, ApiError> {
    let streams = st.db().streams().await?.into_iter().filter(|s| s.tenant == tenant);
    Ok(streams.map(|s| (s.kind, s.config)).collect())
}

/// The value a patch's map gives `kind`, if any.
fn changed<T: Copy>(m: &Option<BTreeMap<String, T>>, kind: &str) -> Option<T> {
    m.as_ref().and_then(|c| c.get(kind)).copied()
}

/// Writes the tenant's priority (every kind), reservations and their idle behaviour (the
/// kinds `patch` names; the others keep theirs) to its streams.
async fn apply_streams(st: &AppState, t: &Tenant, patch: &TenantPatch) -> Result<(), ApiError> {
    let current = settings(st, &t.id).await?;
    for kind in kinds::ALL {
        let now = current.get(*kind).copied().unwrap_or_default();
        let cfg = StreamConfig {
            priority_multiplier: t.priority,
            reserved: changed(&patch.reservations, kind).unwrap_or(now.reserved),
            idle: changed(&patch.reservation_idle, kind).unwrap_or(now.idle),
        };
        st.db().set_stream(&t.id, &Kind::new(*kind), cfg).await?;
    }
    Ok(())
}

async fn view(st: &AppState, name: &str) -> Result<TenantView, ApiError> {
    let tenant =
        st.tenants.tenant(name).await?.ok_or_else(|| ApiError::not_found("tenant", name))?;
    let settings = settings(st, &tenant.id).await?;
    let reserved = settings.iter().filter(|(_, c)| c.reserved > 0);
    let waiting =
        settings.iter().filter(|(_, c)| c.reserved > 0 || c.idle != ReservationIdle::ServeOthers);
    Ok(TenantView {
        reservations: reserved.map(|(k, c)| (k.clone(), c.reserved)).collect(),
        reservation_idle: waiting.map(|(k, c)| (k.clone(), c.idle.as_str().to_string())).collect(),
        keys: st.tenants.keys(name).await?,
        tenant,
    })
}

/// Every tenant with its quotas and usage.
#[utoipa::path(get, path = "/admin/tenants", tag = "admin", security(("admin_key" = [])),
    responses(
        (status = 200, description = "The tenants", body = Vec<Tenant>),
        answers::TenantsError,
    ))]
async fn list_tenants(State(st): St, _: Admin) -> Result<Json<Vec<Tenant>>, ApiError> {
    Ok(Json(st.tenants.tenants().await?))
}

/// Create a tenant, and its first key.
#[utoipa::path(post, path = "/admin/tenants", tag = "admin", security(("admin_key" = [])),
    request_body(content = TenantPatch, description = "`name` and any settings (others get the server's defaults)"),
    responses(
        (status = 201, description = "Created; the key is shown only now", body = crate::openapi::schemas::TenantCreated),
        (status = 400, description = "TIFFIN-API-010 body not JSON, TIFFIN-API-011 body of the wrong shape or without `name`, TIFFIN-API-061 bad tenant name, TIFFIN-API-062 bad setting", body = ErrorBody),
        (status = 409, description = "TIFFIN-API-060 the tenant exists", body = ErrorBody),
        answers::DbOrTenantsError,
    ))]
async fn create_tenant(
    State(st): St,
    _: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let patch: TenantPatch = body::json(&headers, body, st.cfg.limits.cap(BodyKind::Json)).await?;
    let name =
        patch.name.clone().ok_or_else(|| ApiError::InvalidBody("missing field `name`".into()))?;
    if !valid_tenant_name(&name) {
        return Err(ApiError::InvalidTenantName(name));
    }
    let d = &st.cfg.defaults;
    let mut t = Tenant {
        id: String::new(),
        name: name.clone(),
        concurrent_proofs: d.concurrent_proofs,
        exec_cycle_limit: d.exec_cycle_limit,
        cycle_budget: d.cycle_budget,
        cycle_usage: 0,
        priority: 1.0,
        storage_quota: d.storage_quota,
        storage_usage: 0,
    };
    patch.apply(&mut t)?;
    if !st.tenants.create_tenant(&name, d).await? {
        return Err(ApiError::TenantExists(name));
    }
    t.id = st.tenants.tenant(&name).await?.map(|c| c.id).unwrap_or_default();
    st.tenants.update_tenant(&t).await?;
    apply_streams(&st, &t, &patch).await?;
    let (key, info) = st.tenants.create_key(&name, "initial").await?;
    let v = view(&st, &name).await?;
    Ok((StatusCode::CREATED, Json(json!({ "tenant": v, "key": key, "key_id": info.id })))
        .into_response())
}

/// A tenant with its quotas, priority, reservations and key ids.
#[utoipa::path(get, path = "/admin/tenants/{name}", tag = "admin", security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The tenant", body = TenantView),
        answers::NoSuchTenant,
        answers::DbOrTenantsError,
    ))]
async fn get_tenant(
    State(st): St,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    Ok(Json(view(&st, &name).await?))
}

/// Change a tenant's quotas, priority or reservations.
#[utoipa::path(patch, path = "/admin/tenants/{name}", tag = "admin", security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    request_body(content = TenantPatch, description = "The settings to change (`name`, if given, must be the tenant's)"),
    responses(
        (status = 200, description = "The tenant as changed", body = TenantView),
        (status = 400, description = "TIFFIN-API-010 body not JSON, TIFFIN-API-011 body of the wrong shape, TIFFIN-API-062 bad setting or a rename", body = ErrorBody),
        answers::NoSuchTenant,
        answers::DbOrTenantsError,
    ))]
async fn patch_tenant(
    State(st): St,
    _: Admin,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<TenantView>, ApiError> {
    let patch: TenantPatch = body::json(&headers, body, st.cfg.limits.cap(BodyKind::Json)).await?;
    if patch.name.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::InvalidSetting("tenants cannot be renamed".into()));
    }
    let mut t =
        st.tenants.tenant(&name).await?.ok_or_else(|| ApiError::not_found("tenant", &name))?;
    patch.apply(&mut t)?;
    st.tenants.update_tenant(&t).await?;
    apply_streams(&st, &t, &patch).await?;
    Ok(Json(view(&st, &name).await?))
}

/// Delete a tenant and its keys; its running jobs are cancelled and its data deleted.
#[utoipa::path(delete, path = "/admin/tenants/{name}", tag = "admin", security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    responses(
        (status = 204, description = "Deleted"),
        answers::NoSuchTenant,
        answers::StoreError,
        answers::DbOrTenantsError,
    ))]
async fn delete_tenant(
    State(st): St,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let Some(gone) = st.tenants.delete_tenant(&name).await? else {
        return Err(ApiError::not_found("tenant", name));
    };
    collect_tenant_data(&st, &gone).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A deleted tenant's data: its running jobs are cancelled, its inputs, uploaded receipts
/// and the images only it held are deleted; its finished jobs go at retention GC. Nothing is
/// left for a tenant created later under the same name (it gets another id anyway).
async fn collect_tenant_data(
    st: &AppState,
    gone: &crate::tenants::Deleted,
) -> Result<(), ApiError> {
    let id = &gone.tenant.id;
    loop {
        let filter = JobFilter {
            tenant: Some(id.clone()),
            state: Some(JobState::Running),
            limit: 500,
            offset: 0,
        };
        let running = st.db().list_jobs(filter).await?;
        if running.is_empty() {
            break;
        }
        for job in running {
            st.cluster.cancel(job.id).await?;
        }
    }
    st.cluster.delete_tenant_blobs(id).await?;
    for image in &gone.orphaned_images {
        st.cluster.delete_image(image).await?;
    }
    Ok(())
}

/// `POST /admin/tenants/{name}/keys` (the body may be empty).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyReq {
    /// What the admin calls the key.
    #[serde(default)]
    label: Option<String>,
}

/// Create an API key for a tenant.
#[utoipa::path(post, path = "/admin/tenants/{name}/keys", tag = "admin", security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    request_body(content = Option<KeyReq>, description = "An optional label (the body may be empty)"),
    responses(
        (status = 201, description = "Created; the key is shown only now", body = crate::openapi::schemas::KeyCreated),
        (status = 400, description = "TIFFIN-API-011 body of the wrong shape", body = ErrorBody),
        answers::NoSuchTenant,
        answers::TenantsError,
    ))]
async fn create_key(
    State(st): St,
    _: Admin,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = body::read(&headers, body, st.cfg.limits.cap(BodyKind::Json)).await?;
    let req: KeyReq = if bytes.is_empty() {
        KeyReq::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidBody(e.to_string()))?
    };
    if st.tenants.tenant(&name).await?.is_none() {
        return Err(ApiError::not_found("tenant", name));
    }
    let (key, info) = st.tenants.create_key(&name, req.label.as_deref().unwrap_or("")).await?;
    Ok((StatusCode::CREATED, Json(json!({ "key": key, "id": info.id, "tenant": name })))
        .into_response())
}

/// A tenant's keys (ids and labels, never the keys).
#[utoipa::path(get, path = "/admin/tenants/{name}/keys", tag = "admin", security(("admin_key" = [])),
    params(("name" = String, Path, description = "The tenant's name")),
    responses(
        (status = 200, description = "The keys", body = Vec<KeyInfo>),
        answers::NoSuchTenant,
        answers::TenantsError,
    ))]
async fn list_keys(
    State(st): St,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    if st.tenants.tenant(&name).await?.is_none() {
        return Err(ApiError::not_found("tenant", name));
    }
    Ok(Json(st.tenants.keys(&name).await?))
}

/// Revoke a key.
#[utoipa::path(delete, path = "/admin/keys/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path, description = "The key's id (as listed)")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "TIFFIN-API-020 no such key", body = ErrorBody),
        answers::TenantsError,
    ))]
async fn revoke_key(State(st): St, _: Admin, Path(id): Path<String>) -> Result<Response, ApiError> {
    if !st.tenants.revoke_key(&id).await? {
        return Err(ApiError::not_found("key", id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Parses `?tenant=&state=&limit=&offset=` by hand, so a bad value gets our JSON error.
/// Jobs, newest first.
#[utoipa::path(get, path = "/admin/jobs", tag = "admin", security(("admin_key" = [])),
    params(
        ("tenant" = Option<String>, Query, description = "Only this tenant's jobs"),
        ("state" = Option<String>, Query, description = "Only jobs in this state: running, succeeded, failed, cancelled or timed_out"),
        ("limit" = Option<u32>, Query, description = "At most this many (1 to 1000, default 100)"),
        ("offset" = Option<u32>, Query, description = "Skip this many (default 0)"),
    ),
    responses(
        (status = 200, description = "The jobs", body = Vec<crate::openapi::schemas::JobSummary>),
        (status = 400, description = "TIFFIN-API-062 bad state, limit or offset", body = ErrorBody),
        answers::DbOrTenantsError,
    ))]
async fn list_jobs(
    State(st): St,
    _: Admin,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let state = match q.get("state") {
        None => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            ApiError::InvalidSetting(format!(
                "unknown job state {s:?}; use running, succeeded, failed, cancelled or timed_out"
            ))
        })?),
    };
    let number = |name: &str, default: u32| -> Result<u32, ApiError> {
        q.get(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| {
                ApiError::InvalidSetting(format!(
                    "{name} must be a non-negative integer, got {v:?}"
                ))
            })
        })
    };
    // Jobs belong to a tenant's id; the filter names the tenant.
    let tenant = match q.get("tenant") {
        Some(name) => Some(st.tenants.tenant(name).await?.map_or_else(|| name.clone(), |t| t.id)),
        None => None,
    };
    let filter = JobFilter {
        tenant,
        state,
        limit: number("limit", 100)?.clamp(1, 1000),
        offset: number("offset", 0)?,
    };
    Ok(Json(st.db().list_jobs(filter).await?).into_response())
}

fn parse_job(id: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(id).map_err(|_| ApiError::InvalidUuid { what: "job", id: id.into() })
}

/// A job with its task counts per kind and state.
#[utoipa::path(get, path = "/admin/jobs/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path, description = "The job's id (a UUID; a session's id is its job's)")),
    responses(
        (status = 200, description = "The job", body = crate::openapi::schemas::Job),
        answers::BadUuid,
        answers::NoSuchJob,
        answers::DbError,
    ))]
async fn get_job(State(st): St, _: Admin, Path(id): Path<String>) -> Result<Response, ApiError> {
    let job = st.cluster.job(parse_job(&id)?).await?;
    Ok(Json(job).into_response())
}

/// Cancel a job.
#[utoipa::path(post, path = "/admin/jobs/{id}/cancel", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path, description = "The job's id (a UUID; a session's id is its job's)")),
    responses(
        (status = 200, description = "Cancelled", body = crate::openapi::schemas::Cancelled),
        answers::BadUuid,
        answers::NoSuchJob,
        (status = 409, description = "TIFFIN-API-031 the job already ended", body = ErrorBody),
        answers::DbError,
    ))]
async fn cancel_job(State(st): St, _: Admin, Path(id): Path<String>) -> Result<Response, ApiError> {
    let job = parse_job(&id)?;
    if !st.cluster.cancel(job).await? {
        let state = st.cluster.job(job).await?.state;
        return Err(ApiError::AlreadyEnded { id, status: state.to_string() });
    }
    Ok(Json(json!({ "cancelled": true })).into_response())
}

/// A failed job runs again from its execute step (`TaskDb::restart_job`): its intermediate
/// data was freed when it failed, so re-planning is the only sound way to reuse it.
/// Run a failed job again from its execute step.
#[utoipa::path(post, path = "/admin/jobs/{id}/retry", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path, description = "The job's id (a UUID; a session's id is its job's)")),
    responses(
        (status = 200, description = "Restarted", body = crate::openapi::schemas::Restarted),
        answers::BadUuid,
        answers::NoSuchJob,
        (status = 409, description = "TIFFIN-API-033 the job is not failed", body = ErrorBody),
        answers::StoreError,
        answers::DbError,
    ))]
async fn retry_job(State(st): St, _: Admin, Path(id): Path<String>) -> Result<Response, ApiError> {
    let job = parse_job(&id)?;
    if !st.cluster.restart(job).await? {
        let state = st.cluster.job(job).await?.state;
        return Err(ApiError::NotFailed { id, status: state.to_string() });
    }
    st.forget_finished(&job);
    Ok(Json(json!({ "restarted": true })).into_response())
}

/// The TaskDB's streams, each with its tenant's name (streams belong to tenant ids).
/// Per stream (tenant, worker kind): settings, ready and running tasks.
#[utoipa::path(get, path = "/admin/queues", tag = "admin", security(("admin_key" = [])),
    responses(
        (status = 200, description = "The streams", body = Vec<crate::openapi::schemas::Stream>),
        answers::DbOrTenantsError,
    ))]
async fn queues(State(st): St, _: Admin) -> Result<Response, ApiError> {
    let mut streams = st.db().streams().await?;
    st.tenants.name_streams(&mut streams).await.map_err(ApiError::Tenants)?;
    Ok(Json(streams).into_response())
}

/// After every admin change, drops the cached key → tenant mappings of this process, so a
/// revoked key or a new quota applies from the next request on.
pub async fn invalidate_after_changes(
    State(st): St,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let change = req.uri().path().starts_with("/admin/") && req.method() != axum::http::Method::GET;
    let res = next.run(req).await;
    if change {
        st.invalidate_auth();
    }
    res
}
