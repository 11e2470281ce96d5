//! Tiffin's HTTP API (DESIGN.md §4): the Bonsai-compatible REST routes that unmodified
//! `bonsai-sdk` clients use, authenticated tenants with quotas, the admin routes, `/health`,
//! `/metrics` (Prometheus text, see [`metrics`]) and `/openapi.json`.
//!
//! The API is stateless apart from the [`TenantStore`] (tenants, hashed keys, image references,
//! cycle accounting) that lives next to the TaskDB: any number of API processes may serve one
//! cluster. Sessions *are* TaskDB jobs (the session id is the job id), so status, stop and
//! cancellation cascade come from the TaskDB, and every object is scoped to its tenant — another
//! tenant's id answers 404, exactly as an id that never existed.

pub mod admin;
pub mod auth;
pub mod body;
pub mod bonsai;
pub mod charging;
pub mod cluster_gauges;
pub mod connection;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod ops;
pub mod overview;
pub mod queue_report;
pub mod receipt_cache;
pub mod registry;
pub mod scaling;
pub mod server;
pub mod status;
pub mod storage_quota;
pub mod tenants;
pub mod ui;
pub mod uploads;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderMap;
use tiffin_taskdb::{JobState, TaskDb};
use tiffin_workflow::Cluster;
use tiffin_workflow::spec::{EXECUTE_KEY, ExecuteOutput};
use tokio::sync::watch;
use tracing::{debug, warn};

pub use error::{ApiError, ErrorBody};
pub use tenants::{Tenant, TenantDefaults, TenantStore, hash_key};

/// How the API behaves.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Base of the upload and download URLs handed to clients (e.g. `https://prove.example.com`
    /// behind a proxy). `None`: `http://` + the request's `Host` header.
    pub public_url: Option<String>,
    /// Body caps, request slots, timeouts and tenant rates.
    pub limits: limits::Limits,
    /// Most distinct assumption receipts one session may name.
    pub max_assumptions: usize,
    /// Largest journal an uploaded receipt may carry.
    pub max_journal_bytes: usize,
    /// SHA-256 (hex) of the admin key; `None` disables the admin routes.
    pub admin_key_hash: Option<String>,
    /// Segment size of sessions (power of two).
    pub po2: u32,
    /// Quotas of tenants the admin creates without giving them.
    pub defaults: TenantDefaults,
    /// How often finished sessions are charged to their tenant's cycle usage.
    pub charge_period: Duration,
    /// A session still running this long after it was created times out (TIMED_OUT), so no
    /// endless session holds an executor or a prover; `None`: no deadline.
    pub session_timeout: Option<Duration>,
    /// How long a key's tenant (and its quotas) is cached. Admin changes made through this
    /// process apply at once; other API processes see them after at most this long.
    pub auth_cache_ttl: Duration,
    /// Inputs and uploaded receipts no session used for this long are deleted
    /// ([`storage_quota::collect`]); `None`: kept until their tenant deletes them. Must not be
    /// shorter than `session_timeout`, so no running session loses its input.
    pub blob_ttl: Option<Duration>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            limits: limits::Limits::default(),
            max_assumptions: 64,
            max_journal_bytes: 1 << 20,
            admin_key_hash: None,
            po2: 20,
            defaults: TenantDefaults::default(),
            charge_period: Duration::from_secs(2),
            auth_cache_ttl: Duration::from_secs(2),
            session_timeout: Some(Duration::from_secs(24 * 3600)),
            blob_ttl: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// Everything a request handler reaches.
pub struct AppState {
    /// The cluster (queue + stores).
    pub cluster: Cluster,
    /// Tenants and keys.
    pub tenants: TenantStore,
    /// Settings.
    pub cfg: ApiConfig,
    /// Request slots and tenant rates.
    pub gate: Arc<limits::Gate>,
    /// The queue gauges `/metrics` refreshes at each scrape.
    pub queue_gauges: Arc<metrics::QueueGauges>,
    /// Key hash → (tenant, when read). Status polling is most of the traffic; without this
    /// every poll would pay a database round trip just to authenticate.
    auth_cache: std::sync::Mutex<HashMap<String, (Tenant, std::time::Instant)>>,
    /// Statuses of sessions that ended, with when they were cached: an ended job changes only
    /// if an admin retries it, so polls of finished sessions are answered from memory for
    /// [`FINISHED_CACHE_TTL`] (a retry through another API process shows within that).
    finished:
        std::sync::Mutex<HashMap<tiffin_taskdb::JobId, (std::time::Instant, FinishedSession)>>,
}

/// A finished session's status as cached (the receipt URL is built per request, from its Host).
#[derive(Clone)]
pub(crate) struct FinishedSession {
    pub tenant: String,
    pub status: status::SessionStatus,
    pub has_receipt: bool,
}

/// Most finished statuses kept; past it the cache starts over (it is only a shortcut).
const FINISHED_CACHE_MAX: usize = 100_000;

/// How long a finished status is served from memory.
const FINISHED_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl AppState {
    /// State over a cluster and a tenant store.
    pub fn new(cluster: Cluster, tenants: TenantStore, cfg: ApiConfig) -> Arc<Self> {
        metrics::register();
        Arc::new(Self {
            queue_gauges: Arc::new(metrics::QueueGauges::new(
                cluster.db.clone(),
                cluster.stores.hot.clone(),
                tenants.clone(),
            )),
            gate: Arc::new(limits::Gate::new(&cfg.limits)),
            cluster,
            tenants,
            cfg,
            auth_cache: std::sync::Mutex::new(HashMap::new()),
            finished: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The queue.
    pub fn db(&self) -> &Arc<dyn TaskDb> {
        &self.cluster.db
    }

    /// Base URL for links handed to this request's client.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.cfg.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https" || *p == "http")
            .unwrap_or("http");
        format!("{proto}://{host}")
    }

    /// The tenant of an API key, from the cache while fresh.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Tenant>, ApiError> {
        let hash = hash_key(key);
        if let Some((t, at)) = self.auth_cache.lock().unwrap().get(&hash)
            && at.elapsed() < self.cfg.auth_cache_ttl
        {
            return Ok(Some(t.clone()));
        }
        let tenant = self.tenants.authenticate(key).await?;
        let mut cache = self.auth_cache.lock().unwrap();
        match &tenant {
            Some(t) => {
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(hash, (t.clone(), std::time::Instant::now()));
            }
            None => {
                cache.remove(&hash);
            }
        }
        Ok(tenant)
    }

    /// Forgets cached tenants (after an admin change), so the change applies to the next request.
    pub fn invalidate_auth(&self) {
        self.auth_cache.lock().unwrap().clear();
    }

    pub(crate) fn cached_finished(&self, id: &tiffin_taskdb::JobId) -> Option<FinishedSession> {
        let cache = self.finished.lock().unwrap();
        cache.get(id).filter(|(at, _)| at.elapsed() < FINISHED_CACHE_TTL).map(|(_, f)| f.clone())
    }

    /// Drops a cached status (the job was retried and runs again).
    pub(crate) fn forget_finished(&self, id: &tiffin_taskdb::JobId) {
        self.finished.lock().unwrap().remove(id);
    }

    pub(crate) fn cache_finished(&self, id: tiffin_taskdb::JobId, f: FinishedSession) {
        let mut cache = self.finished.lock().unwrap();
        if cache.len() >= FINISHED_CACHE_MAX {
            cache.clear();
        }
        cache.insert(id, (std::time::Instant::now(), f));
    }

    /// Charges finished sessions' cycles to their tenants (idempotent; safe from several API
    /// processes). Returns how many were charged.
    pub async fn charge_finished(&self) -> Result<usize, ApiError> {
        let mut charged = 0;
        for s in self.tenants.uncharged(500).await? {
            let Ok(id) = s.id.parse() else {
                self.tenants.charge(&s.id, 0).await?;
                continue;
            };
            let cycles = match self.db().job(id).await {
                Ok(job) if job.state == JobState::Running => continue,
                Ok(job) => {
                    let executed = self.execution(id).await?.map(|e| e.total_cycles);
                    let spec = match bonsai::job_kind(&job) {
                        Some(bonsai::JobKind::Session(spec)) => Some(spec),
                        _ => None,
                    };
                    charging::cycles_to_charge(executed, spec.as_ref(), &job)
                }
                // Garbage-collected before we saw it end: nothing left to count.
                Err(tiffin_taskdb::Error::JobNotFound(_)) => 0,
                Err(e) => return Err(e.into()),
            };
            if self.tenants.charge(&s.id, cycles).await? {
                charged += 1;
                self.release_image(&s.id).await?;
            }
        }
        Ok(charged)
    }

    /// Drops an ended session's hold on its image, deleting the blob if nothing else holds it.
    async fn release_image(&self, session: &str) -> Result<(), ApiError> {
        if let Some(image) = self.tenants.end_session_image(session).await? {
            self.cluster.stores.cold.delete(&tiffin_workflow::blobs::image(&image)).await?;
        }
        Ok(())
    }

    /// What a session's execute task reported, once it finished.
    pub async fn execution(
        &self,
        job: tiffin_taskdb::JobId,
    ) -> Result<Option<ExecuteOutput>, ApiError> {
        Ok(self
            .db()
            .task_output(job, EXECUTE_KEY)
            .await?
            .and_then(|v| serde_json::from_value(v).ok()))
    }
}

/// The full router: Bonsai routes and admin routes (each request needing a slot, see
/// [`limits::admit`]), operations routes and the status page (none: probes and scrapes answer
/// a busy server too, and the page's files are static).
pub fn router(state: Arc<AppState>) -> Router {
    let slotted = Router::new()
        .merge(bonsai::routes())
        .merge(admin::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.gate.clone(), limits::admit));
    Router::new()
        .merge(slotted)
        .merge(ops::routes())
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

/// How often unused uploads are looked for (more often when their time to live is shorter).
const COLLECT_EVERY: Duration = Duration::from_secs(60);

/// Serves the API on `listener` until `shutdown` turns true, with the background charger and
/// the collector of unused uploads.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let charger = {
        let state = state.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let mut last_collection: Option<std::time::Instant> = None;
            while !*stop.borrow() {
                match state.charge_finished().await {
                    Ok(0) => {}
                    Ok(n) => debug!(n, "charged finished sessions"),
                    Err(e) => warn!(error = %e, "charging finished sessions failed"),
                }
                if let Some(ttl) = state.cfg.blob_ttl
                    && last_collection.is_none_or(|at| at.elapsed() >= COLLECT_EVERY.min(ttl))
                {
                    last_collection = Some(std::time::Instant::now());
                    match storage_quota::collect(&state, ttl).await {
                        Ok(0) => {}
                        Ok(n) => debug!(n, "collected unused uploads"),
                        Err(e) => warn!(error = %e, "collecting unused uploads failed"),
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(state.cfg.charge_period) => {}
                    _ = stop.changed() => {}
                }
            }
        })
    };
    let header_read_timeout = state.cfg.limits.header_read_timeout;
    let app = router(state);
    let result = connection::serve(listener, app, header_read_timeout, shutdown).await;
    charger.abort();
    result
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub(crate) async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
}

/// Splits off the request's method and path for error messages.
pub(crate) fn describe(req: &Request) -> (String, String) {
    (req.method().to_string(), req.uri().path().to_string())
}
