//! Operations routes: `/health` (no key: load balancers probe it), `/metrics` (no key:
//! Prometheus scrapes it), `/openapi.json`, and the JSON errors for unknown routes and methods.
//! [`ROUTES`] lists every route, the status page's ([`crate::ui`]) included.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::{ApiError, AppState, describe};

/// Every route: (method, path, who may call it, what it does). The OpenAPI document is built
/// from this table, and a test checks the table against the router.
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    (
        "get",
        "/images/upload/{image_id}",
        "tenant",
        "204 if the image exists, else 200 {url} to PUT the program to",
    ),
    (
        "put",
        "/images/upload/{image_id}",
        "tenant",
        "Upload a program; its image id is recomputed and must match (400 otherwise)",
    ),
    ("delete", "/images/{image_id}", "tenant", "Drop this tenant's reference to an image"),
    ("get", "/inputs/upload", "tenant", "Get {url, uuid} to PUT an input to"),
    (
        "put",
        "/inputs/upload/{uuid}",
        "tenant",
        "Upload an input (streamed; at most --max-input-size)",
    ),
    ("delete", "/inputs/{uuid}", "tenant", "Delete an input"),
    ("get", "/receipts/upload", "tenant", "Get {url, uuid} to PUT a receipt (assumption) to"),
    ("put", "/receipts/upload/{uuid}", "tenant", "Upload a bincode risc0 Receipt"),
    (
        "get",
        "/receipts/{uuid}",
        "tenant",
        "{url} of a succeeded session's (or snark's) receipt; 404 if none",
    ),
    ("get", "/receipts/download/{uuid}", "tenant", "The bincode Receipt"),
    (
        "post",
        "/sessions/create",
        "tenant",
        "Start a session {img, input, assumptions, execute_only, exec_cycle_limit, receipt_kind} -> {uuid}",
    ),
    (
        "get",
        "/sessions/status/{uuid}",
        "tenant",
        "{status, receipt_url?, error_msg?, state?, elapsed_time?, stats?}",
    ),
    ("get", "/sessions/logs/{uuid}", "tenant", "The guest's stdout and stderr"),
    ("get", "/sessions/stop/{uuid}", "tenant", "Stop (cancel) a running session"),
    (
        "get",
        "/sessions/exec_only_journal/{uuid}",
        "tenant",
        "Journal of a succeeded execute-only session",
    ),
    (
        "post",
        "/snark/create",
        "tenant",
        "Convert a succeeded session's receipt to Groth16 {session_id} -> {uuid}",
    ),
    ("get", "/snark/status/{uuid}", "tenant", "{status, output?, error_msg?}"),
    ("get", "/version", "tenant", "{risc0_zkvm: [versions]}"),
    ("get", "/user/quotas", "tenant", "The tenant's quotas and usage"),
    ("get", "/admin/tenants", "admin", "List tenants"),
    (
        "post",
        "/admin/tenants",
        "admin",
        "Create a tenant {name, quotas?} (also creates its first key)",
    ),
    (
        "get",
        "/admin/tenants/{name}",
        "admin",
        "A tenant with quotas, priority, reservations and keys",
    ),
    ("patch", "/admin/tenants/{name}", "admin", "Change quotas, priority or reservations"),
    ("delete", "/admin/tenants/{name}", "admin", "Delete a tenant and its keys"),
    ("post", "/admin/tenants/{name}/keys", "admin", "Create an API key {label?} -> {key, id}"),
    ("get", "/admin/tenants/{name}/keys", "admin", "List a tenant's keys (ids and labels only)"),
    ("delete", "/admin/keys/{id}", "admin", "Revoke a key"),
    ("get", "/admin/jobs", "admin", "List jobs ?tenant=&state=&limit=&offset="),
    ("get", "/admin/jobs/{id}", "admin", "A job with its task counts per kind and state"),
    ("post", "/admin/jobs/{id}/cancel", "admin", "Cancel a job"),
    ("post", "/admin/jobs/{id}/retry", "admin", "Run a failed job again from its execute step"),
    (
        "get",
        "/admin/queues",
        "admin",
        "Queue depth per stream (tenant, kind): ready and running tasks",
    ),
    (
        "get",
        "/admin/agents",
        "admin",
        "Registered agents: host, version, cores, memory, GPU, max po2, alive or dead, leases",
    ),
    (
        "get",
        "/admin/queue-report",
        "admin",
        "Per worker kind: queued, running, oldest wait, cycles waiting, mean task time, agents needed ?target_secs=",
    ),
    (
        "get",
        "/admin/overview",
        "admin",
        "The status page's data: jobs with progress, agents with their tasks, queues, failures",
    ),
    ("get", "/health", "none", "Liveness and readiness (task database and cold store reachable)"),
    ("get", "/metrics", "none", "Prometheus metrics"),
    ("get", "/openapi.json", "none", "This document"),
    ("get", "/ui", "none", "The status page (HTML; its data comes from /admin/overview)"),
    ("get", "/ui/app.js", "none", "The status page's script"),
    ("get", "/ui/style.css", "none", "The status page's style sheet"),
];

/// The operations routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
}

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

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    crate::metrics::scrape(Some(&st.queue_gauges)).await
}

/// The OpenAPI 3 document of [`ROUTES`].
pub fn openapi_document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, who, summary) in ROUTES {
        let security = match *who {
            "tenant" => json!([{ "apiKey": [] }]),
            "admin" => json!([{ "adminKey": [] }]),
            _ => json!([]),
        };
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let op = json!({
            "summary": summary,
            "security": security,
            "parameters": params,
            "responses": {
                "200": { "description": "success" },
                "4XX": { "description": "client error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        });
        paths
            .entry(path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path item is an object")
            .insert(method.to_string(), op);
    }
    json!({
        "openapi": "3.0.3",
        "info": { "title": "Tiffin API (Bonsai-compatible)", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "apiKey", "in": "header", "name": "x-api-key" },
                "adminKey": { "type": "apiKey", "in": "header", "name": "x-admin-key" }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["code", "error"],
                    "properties": {
                        "code": { "type": "string", "example": "TIFFIN-API-020" },
                        "error": { "type": "string" }
                    }
                }
            }
        }
    })
}

async fn openapi() -> Json<Value> {
    Json(openapi_document())
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
