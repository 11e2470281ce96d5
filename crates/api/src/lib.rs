//! Tiffin's HTTP API (docs/api.md; docs/architecture.md, "Components"): the Bonsai-compatible REST routes that unmodified
//! `bonsai-sdk` clients use, authenticated tenants with quotas, the admin routes, `/health`,
//! `/metrics` (Prometheus text, see [`metrics`]) and `/openapi.json`.
//!
//! The API is stateless apart from the [`TenantStore`] (tenants, hashed keys, image references,
//! cycle accounting) that lives next to the TaskDB: any number of API processes may serve one
//! cluster. Sessions *are* TaskDB jobs (the session id is the job id), so status, stop and
//! cancellation cascade come from the TaskDB, and every object is scoped to its tenant — another
//! tenant's id answers 404, exactly as an id that never existed.

pub mod admin;
pub mod agent_liveness;
pub mod auth;
pub mod body;
pub mod bonsai;
pub mod capacity;
pub mod capacity_report;
pub mod capacity_route;
pub mod charging;
pub mod cluster_gauges;
pub mod connection;
pub mod error;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod overview;
pub mod pins;
pub mod queue_report;
pub mod receipt_cache;
pub mod registry;
pub mod scaling;
pub mod server;
pub mod session;
pub mod snark;
pub mod state;
pub mod status;
pub mod storage_quota;
pub mod tenants;
pub mod ui;
pub mod upkeep;
pub mod uploads;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::sync::watch;

pub use error::{ApiError, ErrorBody};
pub use state::{ApiConfig, AppState};
pub use tenants::{Tenant, TenantDefaults, TenantStore, hash_key};

/// The one router: the Bonsai routes (sessions and receipts, uploads, SNARK) and the admin
/// routes (each request needing a slot, see [`limits::admit`]), operations routes, the OpenAPI
/// document and the status page (none: probes and scrapes answer a busy server too, and the
/// page's files are static).
pub fn router(state: Arc<AppState>) -> Router {
    let slotted = Router::new()
        .merge(bonsai::routes())
        .merge(uploads::routes())
        .merge(snark::routes())
        .merge(admin::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.gate.clone(), limits::admit));
    Router::new()
        .merge(slotted)
        .merge(ops::routes())
        .merge(openapi::routes())
        .merge(ui::routes::<Arc<AppState>>())
        .fallback(ops::no_route)
        .method_not_allowed_fallback(ops::method_not_allowed)
        // Bodies are read by our own limited readers (streaming to the store, with our error
        // codes), so axum's own 2 MiB default must not cut them first.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(state.clone(), admin::invalidate_after_changes))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` turns true, with its background work
/// ([`upkeep`]: the charger and the collector of unused uploads); HTTPS when `tls` is set.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    tls: Option<tiffin_tls::ServerTls>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let upkeep = tokio::spawn(upkeep::run(state.clone(), shutdown.clone()));
    let header_read_timeout = state.cfg.limits.header_read_timeout;
    let app = router(state);
    let tls = tls.as_ref().map(tiffin_tls::ServerTls::acceptor);
    let result = connection::serve(listener, app, header_read_timeout, tls, shutdown).await;
    upkeep.abort();
    result
}
