//! Who holds which agents (`GET /admin/pins`): the live agents each reservation pins now
//! ([`tiffin_taskdb::TaskDb::pins`]), with the tenant's name and what the pinned agents do
//! while the tenant has nothing of the kind ready (`serve-others` or `wait`, set per kind
//! with `PATCH /admin/tenants/{name}` `{"reservation_idle": {"prove": "wait"}}`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::auth::Admin;
use crate::error::ApiError;
use crate::openapi::answers;
use crate::state::AppState;

/// One agent pinned to one reservation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pin {
    /// The agent's registry id.
    pub agent: String,
    /// The reservation's tenant (its name).
    pub tenant: String,
    /// The reserved worker kind.
    pub kind: String,
    /// `serve-others` or `wait`.
    pub idle: String,
}

/// `GET /admin/pins`: the pins in pin order (reservations in stream order, each taking the
/// first live agents of the registry that serve its kind).
#[utoipa::path(get, path = "/admin/pins", tag = "admin", security(("admin_key" = [])),
    responses(
        (status = 200, description = "The agents pinned to reservations now", body = Vec<Pin>),
        answers::DbOrTenantsError,
    ))]
pub async fn pins(State(st): State<Arc<AppState>>, _: Admin) -> Result<Json<Vec<Pin>>, ApiError> {
    let pins = st.db().pins().await?;
    let names: std::collections::HashMap<String, String> =
        st.tenants.tenants().await?.into_iter().map(|t| (t.id, t.name)).collect();
    Ok(Json(
        pins.into_iter()
            .map(|p| Pin {
                tenant: names.get(&p.tenant).cloned().unwrap_or(p.tenant),
                agent: p.agent,
                kind: p.kind,
                idle: p.idle.as_str().to_string(),
            })
            .collect(),
    ))
}
