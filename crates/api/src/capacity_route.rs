//! `GET /admin/capacity`: the capacity report ([`crate::capacity_report`]) over HTTP.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};

use crate::auth::Admin;
use crate::capacity_report::{Capacity, DEFAULT_WINDOW_SECS, MAX_WINDOW_SECS, Reads, whole};
use crate::error::{ApiError, ErrorBody};
use crate::openapi::answers;
use crate::registry::registered;
use crate::state::AppState;

/// `GET /admin/capacity`.
#[utoipa::path(get, path = "/admin/capacity", tag = "admin", security(("admin_key" = [])),
    params(
        ("cycles" = Option<u64>, Query, description = "Estimate when a new job of this many cycles would finish (1 to 2^50)"),
        ("window_secs" = Option<u64>, Query, description = "Seconds to measure the speeds over, 1 to 86400 (default 600)"),
        ("tenant" = Option<String>, Query, description = "Estimate for a job of this tenant (its name): its own work does not compete for its share"),
    ),
    responses(
        (status = 200, description = "The report", body = Capacity),
        (status = 400, description = "TIFFIN-API-062 bad cycles or window_secs", body = ErrorBody),
        (status = 404, description = "TIFFIN-API-020 no such tenant", body = ErrorBody),
        answers::DbOrTenantsError,
    ))]
pub async fn capacity(
    State(st): State<Arc<AppState>>,
    _: Admin,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Capacity>, ApiError> {
    let window = whole(&q, "window_secs", (1, MAX_WINDOW_SECS))?.unwrap_or(DEFAULT_WINDOW_SECS);
    let cycles = whole(&q, "cycles", (1, 1 << 50))?;
    let asker = match q.get("tenant") {
        Some(name) => {
            let t = st.tenants.tenant(name).await?;
            Some(t.ok_or_else(|| ApiError::not_found("tenant", name))?.id)
        }
        None => None,
    };
    let reads = Reads::new(st.db(), Duration::from_secs(window)).await?;
    let agents = registered(&st).await?;
    Ok(Json(reads.report(&agents, window, cycles, asker.as_deref())))
}
