//! Operations routes: `/health` (no key: load balancers probe it), `/metrics` (no key:
//! Prometheus scrapes it), and the JSON errors for unknown routes and methods. The OpenAPI
//! document has its own route ([`crate::openapi::routes`]).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// The operations routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/health", get(health)).route("/metrics", get(metrics))
}

/// Liveness and readiness: the task database and the cold store are reachable.
#[utoipa::path(get, path = "/health", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = crate::openapi::schemas::Health),
        (status = 503, description = "The task database or the cold store is unreachable (no error code: the body says which)", body = crate::openapi::schemas::Health),
    ))]
async fn health(State(st): State<Arc<AppState>>) -> Response {
    let db = st.db().streams().await.map(|_| ()).map_err(|e| e.to_string());
    let store = st.cluster.stores.cold.check().await.map_err(|e| e.to_string());
    let ok = db.is_ok() && store.is_ok();
    let body = json!({
        "status": if ok { "ok" } else { "unavailable" },
        "taskdb": db.err().unwrap_or_else(|| "ok".into()),
        "cold_store": store.err().unwrap_or_else(|| "ok".into()),
        "version": env!("CARGO_PKG_VERSION"),
    });
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "The metrics", body = String, content_type = "text/plain")))]
async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    crate::metrics::scrape(Some(&st.queue_gauges)).await
}

/// Fallback for unknown routes.
pub async fn no_route(req: Request) -> ApiError {
    let (method, path) = describe(&req);
    ApiError::NoRoute { method, path }
}

/// Fallback for known routes called with the wrong method.
pub async fn method_not_allowed(req: Request) -> ApiError {
    let (method, path) = describe(&req);
    ApiError::MethodNotAllowed { method, path }
}

/// Splits off the request's method and path for error messages.
pub(crate) fn describe(req: &Request) -> (String, String) {
    (req.method().to_string(), req.uri().path().to_string())
}
