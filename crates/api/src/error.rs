//! Every error the API returns: an HTTP status, a stable code (`TIFFIN-API-0xx`) and a message
//! that says what to do. Bonsai clients show a failed response's body text to the user as is,
//! so the body is JSON with the code first in the message: readable raw, parseable by tools.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The JSON body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "code": "TIFFIN-API-020",
    "error": "TIFFIN-API-020 session 4f7c… not found"
}))]
pub struct ErrorBody {
    /// Stable code, e.g. `TIFFIN-API-013`.
    pub code: String,
    /// What went wrong and what to do, starting with the code.
    pub error: String,
}

/// An API error.
#[derive(Debug, thiserror::Error, tiffin_codes::Coded)]
pub enum ApiError {
    /// No `x-api-key` header.
    #[error("TIFFIN-API-001 missing x-api-key header; ask the cluster operator for an API key")]
    MissingKey,
    /// The key is not known (or was revoked).
    #[error(
        "TIFFIN-API-002 invalid API key; check BONSAI_API_KEY, or ask the operator for a new key"
    )]
    InvalidKey,
    /// Admin routes need the admin key.
    #[error("TIFFIN-API-003 admin routes need a valid x-admin-key header")]
    AdminKey,
    /// The body is not JSON.
    #[error("TIFFIN-API-010 malformed JSON body: {0}")]
    MalformedJson(String),
    /// The body is JSON of the wrong shape (missing field, wrong type, out of range).
    #[error("TIFFIN-API-011 invalid request body: {0}")]
    InvalidBody(String),
    /// An image id that is not 64 hex characters.
    #[error("TIFFIN-API-012 invalid image id {0:?}: expected 64 hex characters")]
    InvalidImageId(String),
    /// An id that is not a UUID.
    #[error("TIFFIN-API-013 invalid {what} id {id:?}: expected a UUID")]
    InvalidUuid {
        /// What kind of id.
        what: &'static str,
        /// The id as given.
        id: String,
    },
    /// A cycle limit of zero, or too large to represent.
    #[error(
        "TIFFIN-API-014 invalid exec_cycle_limit {0}: give millions of cycles, between 1 and 1000000000"
    )]
    InvalidCycleLimit(u64),
    /// The uploaded program's image id is not the one in the URL.
    #[error(
        "TIFFIN-API-015 image id mismatch: the URL names {expected} but the uploaded program's image id is {actual}"
    )]
    ImageIdMismatch {
        /// From the URL.
        expected: String,
        /// Recomputed from the upload.
        actual: String,
    },
    /// The upload is not a RISC Zero program.
    #[error("TIFFIN-API-016 not a RISC Zero program binary: {0}")]
    InvalidProgram(String),
    /// An empty upload where bytes are required.
    #[error("TIFFIN-API-017 empty {0} upload; send the bytes in the PUT body")]
    EmptyBody(&'static str),
    /// An uploaded receipt that does not decode.
    #[error("TIFFIN-API-018 not a bincode risc0 Receipt: {0}")]
    InvalidReceipt(String),
    /// An uploaded receipt whose seal does not prove its claim and journal.
    #[error("TIFFIN-API-023 the receipt does not verify: {0}")]
    UnverifiedReceipt(String),
    /// A session naming more assumption receipts than the cluster allows.
    #[error("TIFFIN-API-024 {given} distinct assumptions; this cluster allows at most {max}")]
    TooManyAssumptions {
        /// Distinct receipts named.
        given: usize,
        /// The limit (`--max-assumptions`).
        max: usize,
    },
    /// A malformed `Idempotency-Key` header.
    #[error("TIFFIN-API-026 the Idempotency-Key header must be 1 to 255 visible ASCII characters")]
    InvalidIdempotencyKey,
    /// An uploaded receipt whose journal is larger than the cluster accepts.
    #[error("TIFFIN-API-025 a journal of {size} bytes is over this cluster's limit of {max}")]
    JournalTooLarge {
        /// The journal's size.
        size: usize,
        /// The limit (`--max-journal-size`).
        max: usize,
    },
    /// A feature this cluster does not offer (yet).
    #[error("TIFFIN-API-019 unsupported: {0}")]
    Unsupported(String),
    /// An object that does not exist, or belongs to another tenant.
    #[error("TIFFIN-API-020 {what} {id} not found")]
    NotFound {
        /// What kind of object.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// No such route.
    #[error("TIFFIN-API-021 no route {method} {path}; see /openapi.json for the routes")]
    NoRoute {
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// The route exists but not with this method.
    #[error("TIFFIN-API-022 method {method} not allowed on {path}; see /openapi.json")]
    MethodNotAllowed {
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// An upload to an id that already holds data.
    #[error("TIFFIN-API-030 {what} {id} was already uploaded; request a new upload URL")]
    AlreadyUploaded {
        /// What kind of object.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// An operation on a session that already ended.
    #[error("TIFFIN-API-031 session {id} already ended ({status})")]
    AlreadyEnded {
        /// The session.
        id: String,
        /// Its final status.
        status: String,
    },
    /// A result that is not there yet or not of this kind of session.
    #[error("TIFFIN-API-032 {0}")]
    NotReady(String),

    /// An `Idempotency-Key` reused with a different request body.
    #[error(
        "TIFFIN-API-034 Idempotency-Key {key:?} was used within 24 h for a different request \
         body; send the same body to get the same session, or a new key for a new one"
    )]
    IdempotencyMismatch {
        /// The key.
        key: String,
    },
    /// An `Idempotency-Key` whose first request is still being handled.
    #[error(
        "TIFFIN-API-035 a request with Idempotency-Key {key:?} is still being handled; retry \
         in a moment to get its session"
    )]
    IdempotencyInFlight {
        /// The key.
        key: String,
    },

    /// Only failed jobs can be retried.
    #[error("TIFFIN-API-033 job {id} is {status}, not failed; only failed jobs can be retried")]
    NotFailed {
        /// The job.
        id: String,
        /// Its state.
        status: String,
    },
    /// A body over its kind's configured maximum.
    #[error(
        "TIFFIN-API-040 {what} body over the limit of {limit} bytes; send less, or ask the operator to raise {flag}"
    )]
    TooLarge {
        /// The kind of body.
        what: &'static str,
        /// The limit.
        limit: u64,
        /// The server flag that sets it.
        flag: &'static str,
    },
    /// An upload body that came slower than the configured minimum rate.
    #[error(
        "TIFFIN-API-041 the {what} body came slower than {min_rate} bytes/s (after a grace of {grace_secs} s); send it faster, or ask the operator to lower --upload-min-rate"
    )]
    SlowBody {
        /// The kind of body.
        what: &'static str,
        /// The minimum rate, bytes per second.
        min_rate: u64,
        /// The grace before the rate is owed, seconds.
        grace_secs: u64,
    },
    /// A read that took longer than the request timeout.
    #[error(
        "TIFFIN-API-042 the request took longer than {secs} s (--request-timeout); try again later"
    )]
    RequestTimeout {
        /// The timeout, seconds.
        secs: f64,
    },
    /// Over the tenant's concurrent-proof quota.
    #[error(
        "TIFFIN-API-050 concurrent proof quota reached: {running} sessions running, quota {quota}; wait for one to finish or ask the operator to raise concurrent_proofs"
    )]
    ConcurrencyQuota {
        /// Sessions running.
        running: i64,
        /// The quota.
        quota: i64,
    },
    /// The tenant's cycle budget is used up.
    #[error(
        "TIFFIN-API-051 cycle budget exhausted: {usage} of {budget} cycles used; ask the operator to raise cycle_budget"
    )]
    CycleBudget {
        /// Cycles used.
        usage: i64,
        /// The budget.
        budget: i64,
    },
    /// The tenant sends more requests per second than the server allows.
    #[error(
        "TIFFIN-API-052 request rate over {per_sec} per second for this tenant; retry after {retry_after} s"
    )]
    RateLimited {
        /// The rate allowed (`--tenant-requests-per-sec`).
        per_sec: u32,
        /// Seconds until a request is allowed again.
        retry_after: u64,
    },
    /// Every request slot is taken: the request was shed without being served.
    #[error(
        "TIFFIN-API-053 server busy: {max} requests in flight (--max-concurrent-requests); retry shortly"
    )]
    Busy {
        /// The slots (`--max-concurrent-requests`).
        max: usize,
    },
    /// The upload would take the tenant past its storage quota.
    #[error(
        "TIFFIN-API-054 storage quota exceeded: this upload needs {need} bytes and the tenant \
         stores {usage} of its {quota} bytes; delete inputs it no longer needs \
         (DELETE /inputs/{{uuid}}; unused uploads also expire) or ask the operator to raise \
         storage_quota"
    )]
    StorageQuota {
        /// Bytes the upload needs (at least).
        need: u64,
        /// Bytes the tenant stores now.
        usage: i64,
        /// Its quota.
        quota: i64,
    },
    /// Admin: a tenant that already exists.
    #[error("TIFFIN-API-060 tenant {0} already exists")]
    TenantExists(String),
    /// Admin: a bad tenant name.
    #[error("TIFFIN-API-061 invalid tenant name {0:?}: use 1-64 characters of a-z, 0-9, '-', '_'")]
    InvalidTenantName(String),
    /// Admin: a bad setting.
    #[error("TIFFIN-API-062 invalid setting: {0}")]
    InvalidSetting(String),
    /// The task database failed.
    #[error("TIFFIN-API-090 task database error: {0}")]
    Db(String),
    /// A store failed.
    #[error("TIFFIN-API-091 store error: {0}")]
    Store(String),
    /// The store has no space left.
    #[error(
        "TIFFIN-API-095 the cluster's storage is full; nothing was stored, try again later \
         (operators: free space or grow the cold store): {0}"
    )]
    StorageFull(String),
    /// The tenant database failed.
    #[error("TIFFIN-API-092 tenant database error: {0}")]
    Tenants(String),
}

/// How long a client shed with 503 (`TIFFIN-API-053`) is asked to wait.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            MissingKey | InvalidKey | AdminKey => StatusCode::UNAUTHORIZED,
            MalformedJson(_)
            | InvalidBody(_)
            | InvalidImageId(_)
            | InvalidUuid { .. }
            | InvalidCycleLimit(_)
            | ImageIdMismatch { .. }
            | InvalidProgram(_)
            | EmptyBody(_)
            | InvalidReceipt(_)
            | UnverifiedReceipt(_)
            | TooManyAssumptions { .. }
            | JournalTooLarge { .. }
            | Unsupported(_)
            | InvalidTenantName(_)
            | InvalidIdempotencyKey
            | InvalidSetting(_) => StatusCode::BAD_REQUEST,
            NotFound { .. } | NoRoute { .. } => StatusCode::NOT_FOUND,
            MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AlreadyUploaded { .. }
            | AlreadyEnded { .. }
            | NotReady(_)
            | NotFailed { .. }
            | IdempotencyMismatch { .. }
            | IdempotencyInFlight { .. }
            | TenantExists(_) => StatusCode::CONFLICT,
            TooLarge { .. } | StorageQuota { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            SlowBody { .. } | RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ConcurrencyQuota { .. } | CycleBudget { .. } | RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Db(_) | Tenants(_) | Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
        }
    }

    /// Seconds the client should wait before retrying (the `Retry-After` header), for errors
    /// that pass with time.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            Self::Busy { .. } => Some(BUSY_RETRY_AFTER_SECS),
            _ => None,
        }
    }

    /// Shorthand for [`ApiError::NotFound`].
    pub fn not_found(what: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound { what, id: id.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // Shed requests are counted by the request metrics; an error line each would flood the
        // log exactly when the server is busiest.
        if status.is_server_error() && !matches!(self, ApiError::Busy { .. }) {
            tracing::error!(error = %self, "request failed");
        }
        let retry_after = self.retry_after().map(|s| (header::RETRY_AFTER, s.to_string()));
        let body = Json(ErrorBody { code: self.code().to_string(), error: self.to_string() });
        (status, AppendHeaders(retry_after), body).into_response()
    }
}

impl From<tiffin_taskdb::Error> for ApiError {
    fn from(e: tiffin_taskdb::Error) -> Self {
        match e {
            tiffin_taskdb::Error::JobNotFound(id) => Self::not_found("session", id.to_string()),
            tiffin_taskdb::Error::RunningLimit { running, limit, .. } => {
                Self::ConcurrencyQuota { running, quota: limit }
            }
            e => Self::Db(e.to_string()),
        }
    }
}

impl From<tiffin_storage::Error> for ApiError {
    fn from(e: tiffin_storage::Error) -> Self {
        if e.is_storage_full() {
            Self::StorageFull(e.to_string())
        } else {
            Self::Store(e.to_string())
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Tenants(e.to_string())
    }
}

impl From<tiffin_workflow::cluster::ClusterError> for ApiError {
    fn from(e: tiffin_workflow::cluster::ClusterError) -> Self {
        use tiffin_workflow::cluster::ClusterError as C;
        match e {
            C::Program(p) => Self::InvalidProgram(p.to_string()),
            C::Db(d) => d.into(),
            C::Store(s) => s.into(),
            e @ C::JobEnded { .. } => Self::NotReady(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_first_word_and_statuses_are_client_errors_for_client_mistakes() {
        let e = ApiError::InvalidUuid { what: "input", id: "x".into() };
        assert_eq!(e.code(), "TIFFIN-API-013");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ApiError::MissingKey.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            ApiError::ConcurrencyQuota { running: 1, quota: 1 }.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(ApiError::not_found("session", "a").code(), "TIFFIN-API-020");
    }
}
