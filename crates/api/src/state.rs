//! What every request handler reaches: the [`AppState`] (cluster, tenants, settings, request
//! gate, caches) and the [`ApiConfig`] it is built from.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use tiffin_taskdb::TaskDb;
use tiffin_workflow::Cluster;

use crate::error::ApiError;
use crate::tenants::{Tenant, TenantDefaults, TenantStore, hash_key};
use crate::{limits, metrics, status};

/// How the API behaves.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Base of the upload and download URLs handed to clients (e.g. `https://prove.example.com`
    /// behind a proxy). `None`: the request's protocol (`https` when served with TLS) + its `Host` header.
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
    /// ([`crate::storage_quota::collect`]); `None`: kept until their tenant deletes them. Must not be
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
}
