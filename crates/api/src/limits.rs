//! What one request, and all of them together, may take of a server, set by configuration and
//! never by the input: a size cap per kind of body, slots for requests in flight (past them a
//! request is shed at once with 503), a deadline for reads, the pace an upload must keep, and a
//! request rate per tenant (past it 429). See docs/api.md, "Limits".

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The limits a server enforces.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest program upload (read whole: the image id is computed over the ELF).
    pub max_image_bytes: u64,
    /// Largest receipt upload (read whole to decode and verify it).
    pub max_receipt_bytes: u64,
    /// Largest JSON body (session and SNARK creation, admin routes).
    pub max_json_bytes: u64,
    /// Largest input upload (streamed to the cold store, never held whole).
    pub max_input_bytes: u64,
    /// Requests served at once; more are answered 503 at once. `/health`, `/metrics` and
    /// `/openapi.json` have no slot to wait for, so a busy server still answers its probes.
    pub max_concurrent_requests: usize,
    /// Longest a read (GET) may take before it is answered 408.
    pub request_timeout: Duration,
    /// The pace an upload body must keep.
    pub upload_pace: Pace,
    /// Longest a client may take to send a request's headers; past it the connection closes.
    pub header_read_timeout: Duration,
    /// Requests per second each tenant may make (bursts of as many); 0: unlimited.
    pub tenant_requests_per_sec: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_image_bytes: 64 << 20,
            max_receipt_bytes: 64 << 20,
            max_json_bytes: 1 << 20,
            max_input_bytes: 256 << 20,
            max_concurrent_requests: 256,
            request_timeout: Duration::from_secs(60),
            upload_pace: Pace::default(),
            header_read_timeout: Duration::from_secs(30),
            tenant_requests_per_sec: 100,
        }
    }
}

/// The kinds of request body, each with its own cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// A program (`PUT /images/upload/{id}`).
    Image,
    /// A receipt (`PUT /receipts/upload/{uuid}`).
    Receipt,
    /// A JSON request.
    Json,
    /// An input (`PUT /inputs/upload/{uuid}`).
    Input,
}

impl BodyKind {
    /// The word used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Receipt => "receipt",
            Self::Json => "JSON",
            Self::Input => "input",
        }
    }

    /// The server flag that raises this kind's cap.
    pub fn flag(self) -> &'static str {
        match self {
            Self::Image => "--max-image-size",
            Self::Receipt => "--max-receipt-size",
            Self::Json => "--max-json-size",
            Self::Input => "--max-input-size",
        }
    }
}

/// How much of one kind of body is accepted, and how fast it must come.
#[derive(Clone, Copy, Debug)]
pub struct Cap {
    /// The kind.
    pub kind: BodyKind,
    /// Most bytes.
    pub bytes: u64,
    /// The pace the body must keep.
    pub pace: Pace,
}

/// The slowest an upload may arrive: after `grace`, at least `min_bytes_per_sec` on average
/// since its start, so neither a stalled body nor one trickling a byte at a time holds a
/// request slot for long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Average rate owed after the grace; 0 disables the check.
    pub min_bytes_per_sec: u64,
    /// Time allowed before the rate is owed.
    pub grace: Duration,
}

impl Default for Pace {
    fn default() -> Self {
        Self { min_bytes_per_sec: 64 * 1024, grace: Duration::from_secs(10) }
    }
}

impl Pace {
    /// When a body that started at `start` and has sent `seen` bytes falls behind, if it sends
    /// nothing more (`None`: never, the check is off).
    pub fn deadline(&self, start: Instant, seen: u64) -> Option<Instant> {
        if self.min_bytes_per_sec == 0 {
            return None;
        }
        let earned = Duration::from_secs_f64(seen as f64 / self.min_bytes_per_sec as f64);
        start.checked_add(self.grace.saturating_add(earned))
    }
}

impl Limits {
    /// The cap of a kind of body.
    pub fn cap(&self, kind: BodyKind) -> Cap {
        let bytes = match kind {
            BodyKind::Image => self.max_image_bytes,
            BodyKind::Receipt => self.max_receipt_bytes,
            BodyKind::Json => self.max_json_bytes,
            BodyKind::Input => self.max_input_bytes,
        };
        Cap { kind, bytes, pace: self.upload_pace }
    }
}

/// The shared state behind the limits: request slots and each tenant's rate.
pub struct Gate {
    slots: Arc<Semaphore>,
    max: usize,
    /// Slots in use per API key (by a hash of the key); no key holds more than `key_share`, so
    /// one tenant trickling uploads cannot hold every slot while others get 503.
    by_key: Arc<std::sync::Mutex<std::collections::HashMap<u64, usize>>>,
    key_share: usize,
    rate: Option<DefaultKeyedRateLimiter<String>>,
    per_sec: u32,
    request_timeout: Duration,
}

impl Gate {
    /// The gate of `limits`.
    pub fn new(limits: &Limits) -> Self {
        // Keyed by tenant name: tenants are created by the admin, so the map stays small.
        let rate = NonZeroU32::new(limits.tenant_requests_per_sec)
            .map(|n| RateLimiter::dashmap(Quota::per_second(n)));
        Self {
            slots: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            max: limits.max_concurrent_requests,
            by_key: Default::default(),
            key_share: key_share(limits.max_concurrent_requests),
            rate,
            per_sec: limits.tenant_requests_per_sec,
            request_timeout: limits.request_timeout,
        }
    }

    /// Counts one request of `tenant`; 429 once it is over its rate.
    pub fn check_rate(&self, tenant: &str) -> Result<(), ApiError> {
        let Some(rate) = &self.rate else { return Ok(()) };
        rate.check_key(&tenant.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited {
                per_sec: self.per_sec,
                retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }
}

/// The most slots one API key may hold: a quarter of them (at least one).
pub fn key_share(max_concurrent_requests: usize) -> usize {
    (max_concurrent_requests / 4).max(1)
}

/// One API key's hold on a slot, given back when dropped.
struct KeySlot {
    by_key: Arc<std::sync::Mutex<std::collections::HashMap<u64, usize>>>,
    key: u64,
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut by_key = self.by_key.lock().expect("key slots lock");
        if let Some(n) = by_key.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                by_key.remove(&self.key);
            }
        }
    }
}

impl Gate {
    /// Takes one of the key's share of slots, or `None` when it holds its share already.
    /// Requests without a key share one group (they fail authentication at once).
    fn key_slot(&self, req: &Request) -> Option<KeySlot> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        req.headers().get("x-api-key").map(|v| v.as_bytes()).hash(&mut hasher);
        let key = hasher.finish();
        let mut by_key = self.by_key.lock().expect("key slots lock");
        let held = by_key.entry(key).or_insert(0);
        if *held >= self.key_share {
            return None;
        }
        *held += 1;
        Some(KeySlot { by_key: self.by_key.clone(), key })
    }
}

/// Middleware: a request slot (or 503 at once; also once the request's API key holds its
/// share, a quarter of the slots), and the read deadline for GETs. Uploads are bounded by their
/// body's pace instead; other writes run to the end once started, so a deadline never leaves
/// one half done.
pub async fn admit(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    let Ok(_slot) = gate.slots.clone().try_acquire_owned() else {
        tracing::debug!(max = gate.max, "shedding a request: every slot is taken");
        return ApiError::Busy { max: gate.max }.into_response();
    };
    let Some(_key_slot) = gate.key_slot(&req) else {
        tracing::debug!(share = gate.key_share, "shedding a request: its key holds its share");
        return ApiError::Busy { max: gate.key_share }.into_response();
    };
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let limit = gate.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::RequestTimeout { secs: limit.as_secs_f64() }.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    /// A router whose only route takes `work` to answer, behind [`admit`].
    fn slow_route(limits: &Limits, work: Duration) -> Router {
        let gate = Arc::new(Gate::new(limits));
        Router::new()
            .route(
                "/slow",
                get(move || tokio::time::sleep(work)).put(move || tokio::time::sleep(work)),
            )
            .route_layer(axum::middleware::from_fn_with_state(gate, admit))
    }

    async fn call(app: &Router, method: Method) -> Response {
        call_as(app, method, None).await
    }

    async fn call_as(app: &Router, method: Method, key: Option<&str>) -> Response {
        let mut req = Request::builder().method(method).uri("/slow");
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    /// Failed before the fix: one tenant's slow uploads held every slot and every other tenant
    /// got 503 until they ended.
    #[tokio::test]
    async fn one_key_holds_at_most_a_quarter_of_the_slots() {
        let limits = Limits { max_concurrent_requests: 8, ..Limits::default() };
        assert_eq!(key_share(8), 2);
        let app = slow_route(&limits, Duration::from_millis(400));
        let hog: Vec<_> = (0..2)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { call_as(&app, Method::PUT, Some("hog")).await.status() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let shed = call_as(&app, Method::PUT, Some("hog")).await;
        assert_eq!(shed.status(), 503, "the hog's third request");
        assert_eq!(code(shed).await, "TIFFIN-API-053");
        let other = call_as(&app, Method::PUT, Some("another tenant")).await;
        assert_eq!(other.status(), 200, "another key still gets a slot");
        for h in hog {
            assert_eq!(h.await.unwrap(), 200);
        }
        assert_eq!(call_as(&app, Method::PUT, Some("hog")).await.status(), 200, "given back");
    }

    async fn code(res: Response) -> String {
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        let body: crate::error::ErrorBody = serde_json::from_slice(&body).unwrap();
        body.code
    }

    #[tokio::test]
    async fn a_request_past_the_slots_is_shed_at_once_with_503_and_retry_after() {
        let app = slow_route(
            &Limits { max_concurrent_requests: 1, ..Limits::default() },
            Duration::from_millis(300),
        );
        let first = tokio::spawn({
            let app = app.clone();
            async move { call(&app, Method::GET).await.status() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let shed = call(&app, Method::GET).await;
        assert!(started.elapsed() < Duration::from_millis(200), "shed at once");
        assert_eq!(shed.status(), 503);
        assert_eq!(shed.headers()["retry-after"], "1");
        assert_eq!(code(shed).await, "TIFFIN-API-053");
        assert_eq!(first.await.unwrap(), 200);
        assert_eq!(call(&app, Method::GET).await.status(), 200, "the slot was given back");
    }

    #[tokio::test]
    async fn a_get_over_the_request_timeout_gets_408_and_a_write_runs_to_the_end() {
        let limits = Limits { request_timeout: Duration::from_millis(50), ..Limits::default() };
        let app = slow_route(&limits, Duration::from_millis(200));
        let late = call(&app, Method::GET).await;
        assert_eq!(late.status(), 408);
        assert_eq!(code(late).await, "TIFFIN-API-042");
        assert_eq!(call(&app, Method::PUT).await.status(), 200);
    }

    #[test]
    fn a_body_falls_behind_once_it_is_slower_than_the_minimum_rate_after_the_grace() {
        let pace = Pace { min_bytes_per_sec: 1000, grace: Duration::from_secs(2) };
        let start = Instant::now();
        assert_eq!(pace.deadline(start, 0), Some(start + Duration::from_secs(2)));
        assert_eq!(pace.deadline(start, 3000), Some(start + Duration::from_secs(5)));
        assert_eq!(Pace { min_bytes_per_sec: 0, ..pace }.deadline(start, 0), None);
    }

    #[test]
    fn a_tenant_over_its_rate_gets_429_with_a_retry_after_and_others_are_unaffected() {
        let gate = Gate::new(&Limits { tenant_requests_per_sec: 2, ..Limits::default() });
        assert!(gate.check_rate("a").is_ok());
        assert!(gate.check_rate("a").is_ok());
        let err = gate.check_rate("a").unwrap_err();
        assert_eq!(err.code(), "TIFFIN-API-052");
        assert_eq!(err.retry_after(), Some(1));
        assert!(gate.check_rate("b").is_ok());
        let off = Gate::new(&Limits { tenant_requests_per_sec: 0, ..Limits::default() });
        assert!((0..1000).all(|_| off.check_rate("a").is_ok()));
    }
}
