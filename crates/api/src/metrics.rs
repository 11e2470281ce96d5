//! Request metrics in Prometheus' text format: a counter per (method, route, status) and a
//! latency histogram per route, kept in memory by a middleware. Queue gauges are read from the
//! TaskDB when `/metrics` is scraped, so they are never stale.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// Histogram bucket bounds in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0, 30.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

/// In-memory request metrics.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Sessions created by this process.
    pub sessions_created: AtomicU64,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        *self.requests.lock().unwrap().entry((method.into(), route.into(), status)).or_default() +=
            1;
        let mut lat = self.latency.lock().unwrap();
        let h = lat.entry(route.into()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.total += 1;
    }

    /// The request metrics as Prometheus text.
    pub fn render(&self, out: &mut String) {
        out.push_str(
            "# HELP tiffin_api_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE tiffin_api_requests_total counter\n");
        for ((m, r, s), n) in self.requests.lock().unwrap().iter() {
            let _ = writeln!(
                out,
                "tiffin_api_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}"
            );
        }
        out.push_str("# HELP tiffin_api_request_seconds Request latency by route.\n");
        out.push_str("# TYPE tiffin_api_request_seconds histogram\n");
        for (r, h) in self.latency.lock().unwrap().iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "tiffin_api_request_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "tiffin_api_request_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.total
            );
            let _ = writeln!(out, "tiffin_api_request_seconds_sum{{route=\"{r}\"}} {}", h.sum);
            let _ = writeln!(out, "tiffin_api_request_seconds_count{{route=\"{r}\"}} {}", h.total);
        }
        out.push_str(
            "# HELP tiffin_api_sessions_created_total Sessions created by this API process.\n",
        );
        out.push_str("# TYPE tiffin_api_sessions_created_total counter\n");
        let _ = writeln!(
            out,
            "tiffin_api_sessions_created_total {}",
            self.sessions_created.load(Ordering::Relaxed)
        );
    }
}

/// Middleware recording every request. Routes are labelled by their pattern
/// (`/sessions/status/{uuid}`), never the raw path, so label cardinality stays bounded.
pub async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    state.metrics.record(&method, &route, res.status().as_u16(), start.elapsed().as_secs_f64());
    res
}
