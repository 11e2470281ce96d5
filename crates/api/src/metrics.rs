//! The API's Prometheus metrics, recorded through the `metrics` facade into the process's one
//! recorder ([`tiffin_workflow::metrics`], shared with in-process agents), and the `/metrics`
//! endpoint, served on the API's router and, with `--metrics-listen`, on a listener of its own.
//!
//! Every label value comes from a fixed set: the method is one of [`METHODS`] or `OTHER`, the
//! route is the router's pattern (`/sessions/status/{uuid}`) or `unmatched`, never the raw
//! path, and the status is a code this server answers with.
//!
//! | metric | kind | labels | what |
//! |---|---|---|---|
//! | `tiffin_api_requests_total` | counter | `method`, `route`, `status` | HTTP requests |
//! | `tiffin_api_request_seconds` | histogram | `route` | request latency |
//! | `tiffin_api_sessions_created_total` | counter | — | sessions created by this process |
//! | `tiffin_api_sessions_cached_total` | counter | — | proving sessions answered from the receipt cache |
//! | `tiffin_queue_ready_tasks` | gauge | `tenant`, `kind` | tasks ready to be claimed, per stream |
//! | `tiffin_queue_running_tasks` | gauge | `tenant`, `kind` | tasks leased to agents, per stream |
//! | `tiffin_queue_read_ok` | gauge | — | 1 if the last scrape read the queue, 0 if the TaskDB failed (the queue gauges then keep their last values) |
//!
//! The queue gauges are set from the TaskDB at each scrape, so they are never stale; a
//! stream that disappears (its tenant deleted) reads 0. So are the cluster-wide gauges of
//! [`crate::cluster_gauges`] (oldest wait, cycles waiting, agents alive, hot store fill).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use tiffin_storage::HotStore;

use crate::tenants::TenantStore;
use tiffin_taskdb::{Kind, StreamInfo, TaskDb};
use tiffin_workflow::metrics::{kind_label, recorder, render};
use tokio::sync::watch;
use tracing::warn;

/// The methods labelled by name; any other is `OTHER`.
pub const METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
    Method::PATCH,
];

/// Installs the recorder and registers the API's series, so they show before the first request.
pub fn register() {
    recorder();
    describe_counter!("tiffin_api_requests_total", "HTTP requests by method, route and status.");
    describe_histogram!("tiffin_api_request_seconds", Unit::Seconds, "Request latency by route.");
    describe_counter!("tiffin_api_sessions_created_total", "Sessions created by this process.");
    describe_counter!(
        "tiffin_api_sessions_cached_total",
        "Proving sessions answered from the receipt cache."
    );
    describe_gauge!("tiffin_queue_ready_tasks", "Tasks ready to be claimed, per stream.");
    describe_gauge!("tiffin_queue_running_tasks", "Tasks leased to agents, per stream.");
    crate::cluster_gauges::describe();
    describe_gauge!(
        "tiffin_queue_read_ok",
        "1 if the last scrape read the queue from the TaskDB, else 0 (queue gauges are stale)."
    );
    counter!("tiffin_api_sessions_created_total").increment(0);
    counter!("tiffin_api_sessions_cached_total").increment(0);
}

/// Middleware recording every request.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(req.method());
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let labels = [("method", method.to_string()), ("route", route.clone()), ("status", status)];
    counter!("tiffin_api_requests_total", &labels).increment(1);
    histogram!("tiffin_api_request_seconds", "route" => route)
        .record(start.elapsed().as_secs_f64());
    res
}

/// A request method's label.
pub fn method_label(method: &Method) -> &'static str {
    METHODS.iter().find(|m| *m == method).map_or("OTHER", Method::as_str)
}

/// One more session created.
pub fn session_created() {
    counter!("tiffin_api_sessions_created_total").increment(1);
}

/// One session that ended past the deadline it was created with.
pub fn session_missed_deadline() {
    counter!("tiffin_api_sessions_missed_deadline_total").increment(1);
}

/// One proving session answered from the receipt cache.
pub fn session_cached() {
    counter!("tiffin_api_sessions_cached_total").increment(1);
}

/// The queue gauges, set from the TaskDB at each scrape.
pub struct QueueGauges {
    db: Arc<dyn TaskDb>,
    hot: Arc<dyn HotStore>,
    /// Streams belong to tenant ids; the `tenant` label is the tenant's name.
    tenants: TenantStore,
    /// Every (tenant, kind) given a value so far, so a stream that disappears is set to 0.
    seen: Mutex<BTreeSet<(String, &'static str)>>,
}

impl QueueGauges {
    /// Gauges over this queue.
    pub fn new(db: Arc<dyn TaskDb>, hot: Arc<dyn HotStore>, tenants: TenantStore) -> Self {
        Self { db, hot, tenants, seen: Mutex::new(BTreeSet::new()) }
    }

    /// Sets the gauges to the queue's current depth.
    pub async fn refresh(&self) {
        let streams = match self.db.streams().await {
            Ok(mut streams) => self.tenants.name_streams(&mut streams).await.map(|()| streams),
            Err(e) => Err(e.to_string()),
        };
        let cluster = crate::cluster_gauges::refresh(&self.db, &self.hot).await;
        match streams {
            Ok(streams) if cluster => {
                self.set(&streams);
                gauge!("tiffin_queue_read_ok").set(1.0);
            }
            Ok(streams) => {
                self.set(&streams);
                warn!("reading the backlog, agents or hot store for /metrics failed");
                gauge!("tiffin_queue_read_ok").set(0.0);
            }
            Err(e) => {
                warn!(error = %e, "reading the queue for /metrics failed");
                gauge!("tiffin_queue_read_ok").set(0.0);
            }
        }
    }

    fn set(&self, streams: &[StreamInfo]) {
        let mut seen = self.seen.lock().unwrap();
        let mut now = BTreeSet::new();
        for s in streams {
            let kind = kind_label(&Kind::new(s.kind.as_str()));
            let (tenant, kind) = (s.tenant.clone(), kind);
            gauge!("tiffin_queue_ready_tasks", "tenant" => tenant.clone(), "kind" => kind)
                .set(s.ready as f64);
            gauge!("tiffin_queue_running_tasks", "tenant" => tenant.clone(), "kind" => kind)
                .set(s.running as f64);
            now.insert((tenant, kind));
        }
        for (tenant, kind) in seen.difference(&now) {
            gauge!("tiffin_queue_ready_tasks", "tenant" => tenant.clone(), "kind" => *kind)
                .set(0.0);
            gauge!("tiffin_queue_running_tasks", "tenant" => tenant.clone(), "kind" => *kind)
                .set(0.0);
        }
        seen.extend(now);
    }
}

/// `/metrics`: the process's metrics, after refreshing the queue gauges when this process has
/// a queue to read (API processes; a lone agent has none).
pub async fn scrape(queue: Option<&QueueGauges>) -> Response {
    if let Some(q) = queue {
        q.refresh().await;
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render()).into_response()
}

/// A router serving only `/metrics` (for `--metrics-listen`).
pub fn router(queue: Option<Arc<QueueGauges>>) -> Router {
    Router::new()
        .route("/metrics", get(|State(q): State<Option<Arc<QueueGauges>>>| async move {
            scrape(q.as_deref()).await
        }))
        .with_state(queue)
}

/// Serves [`router`] on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    queue: Option<Arc<QueueGauges>>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    recorder();
    let header_read_timeout = crate::limits::Limits::default().header_read_timeout;
    crate::connection::serve(listener, router(queue), header_read_timeout, None, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_known_set_are_other() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "OTHER");
        assert_eq!(method_label(&Method::TRACE), "OTHER");
    }
}
