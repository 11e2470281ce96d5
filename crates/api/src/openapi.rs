//! The OpenAPI 3.1 document `/openapi.json` serves, generated from the code: each handler
//! carries a `#[utoipa::path]` (its path and method, parameters, request body, answers and the
//! error codes it returns itself), the types it takes and answers derive `ToSchema` (or have a
//! schema in [`schemas`]), and [`ApiDoc`] lists the handlers.
//!
//! What every route of a kind shares is added to each operation by [`SharedErrors`], from the
//! operation's security, method and body, so no handler can forget it: the key check (401), the
//! tenant's request rate (429), the request slot (503), the read deadline of GETs (408), and the
//! cap and pace of request bodies (413, 408). The API tests check the document against the
//! router (every route documented, nothing documented that the router does not serve) and
//! against the official OpenAPI 3.1 schema.

pub mod answers;
pub mod schemas;

use std::sync::OnceLock;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::ErrorBody;

/// The security scheme of tenant routes: the `x-api-key` header.
pub const API_KEY: &str = "api_key";
/// The security scheme of admin routes: the `x-admin-key` header.
pub const ADMIN_KEY: &str = "admin_key";

/// The document's source: every handler, and what is added to all.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tiffin API (Bonsai-compatible)",
        description = "RISC Zero's Bonsai REST API for unmodified `bonsai-sdk` clients, with \
            tenants, quotas and admin routes. Every error answers a JSON `ErrorBody` whose code \
            (`TIFFIN-API-0xx`) is stable; an unknown route answers 404 `TIFFIN-API-021`, a known \
            route with another method 405 `TIFFIN-API-022`."
    ),
    paths(
        crate::uploads::image_upload_url,
        crate::uploads::image_put,
        crate::uploads::image_delete,
        crate::uploads::input_upload_url,
        crate::uploads::input_put,
        crate::uploads::input_delete,
        crate::uploads::receipt_upload_url,
        crate::uploads::receipt_put,
        crate::bonsai::receipt_url,
        crate::bonsai::receipt_download,
        crate::bonsai::session_create,
        crate::bonsai::session_status_route,
        crate::bonsai::session_logs,
        crate::bonsai::session_stop,
        crate::bonsai::exec_only_journal,
        crate::snark::snark_create,
        crate::snark::snark_status,
        crate::bonsai::version,
        crate::bonsai::quotas,
        crate::admin::list_tenants,
        crate::admin::create_tenant,
        crate::admin::get_tenant,
        crate::admin::patch_tenant,
        crate::admin::delete_tenant,
        crate::admin::create_key,
        crate::admin::list_keys,
        crate::admin::revoke_key,
        crate::admin::list_jobs,
        crate::admin::get_job,
        crate::admin::cancel_job,
        crate::admin::retry_job,
        crate::admin::queues,
        crate::registry::agents,
        crate::pins::pins,
        crate::queue_report::queue_report,
        crate::capacity_route::capacity,
        crate::overview::overview,
        crate::ops::health,
        crate::ui::page,
        crate::ui::script,
        crate::ui::style,
        crate::ops::metrics,
        openapi,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes, &SharedErrors),
    tags(
        (name = "bonsai", description = "The Bonsai routes (`x-api-key`): uploads, sessions, receipts, SNARKs"),
        (name = "admin", description = "Operators (`x-admin-key`): tenants, keys, jobs, queues, agents"),
        (name = "ops", description = "No key: health probes, metrics scrapes, this document"),
    )
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(ApiDoc::openapi)
}

/// The route serving the document (no key, like the other operations routes).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/openapi.json", get(openapi))
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)))]
async fn openapi() -> Json<&'static Document> {
    Json(document())
}

/// Declares the two key headers.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let header = |name: &str, what: &str| {
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(name, what)))
        };
        components.add_security_scheme(
            API_KEY,
            header(crate::auth::API_KEY_HEADER, "A tenant's API key (Bonsai's `BONSAI_API_KEY`)"),
        );
        components.add_security_scheme(
            ADMIN_KEY,
            header(crate::auth::ADMIN_KEY_HEADER, "The cluster's admin key"),
        );
    }
}

/// One error code a response documents: `(status, code and what it means)`.
type Shared = (u16, &'static str);

/// Errors of tenant routes before their handler runs: the key (`Auth`) and the tenant's rate.
const TENANT: &[Shared] = &[
    (401, "TIFFIN-API-001 missing x-api-key"),
    (401, "TIFFIN-API-002 unknown or revoked key"),
    (429, "TIFFIN-API-052 over the tenant's request rate (see Retry-After)"),
    (503, "TIFFIN-API-092 tenant database error"),
];

/// Errors of admin routes before their handler runs.
const ADMIN: &[Shared] = &[(401, "TIFFIN-API-003 admin key missing or wrong")];

/// Errors of every keyed route: the request slot ([`crate::limits::admit`]).
const SLOTTED: &[Shared] = &[(503, "TIFFIN-API-053 server busy (see Retry-After)")];

/// Errors of keyed GETs: the read deadline.
const READ: &[Shared] = &[(408, "TIFFIN-API-042 over --request-timeout")];

/// Errors of every request body: its kind's cap and the upload pace.
const BODY: &[Shared] = &[
    (413, "TIFFIN-API-040 body over its kind's cap"),
    (408, "TIFFIN-API-041 body slower than --upload-min-rate"),
];

/// Adds the shared errors to each operation (see the module's documentation).
struct SharedErrors;

impl Modify for SharedErrors {
    fn modify(&self, doc: &mut Document) {
        for item in doc.paths.paths.values_mut() {
            let ops = [
                (true, &mut item.get),
                (false, &mut item.put),
                (false, &mut item.post),
                (false, &mut item.delete),
                (false, &mut item.patch),
            ];
            for (is_get, op) in ops {
                let Some(op) = op.as_mut() else { continue };
                let tenant = requires(op, API_KEY);
                let admin = requires(op, ADMIN_KEY);
                let mut shared: Vec<Shared> = Vec::new();
                if tenant {
                    shared.extend(TENANT);
                }
                if admin {
                    shared.extend(ADMIN);
                }
                if tenant || admin {
                    shared.extend(SLOTTED);
                    if is_get {
                        shared.extend(READ);
                    }
                }
                if op.request_body.is_some() {
                    shared.extend(BODY);
                }
                for (status, what) in shared {
                    add_error(op, status, what);
                }
            }
        }
    }
}

/// Whether the operation asks for the security scheme `scheme`.
fn requires(op: &Operation, scheme: &str) -> bool {
    let wanted = SecurityRequirement::new(scheme, Vec::<String>::new());
    op.security.iter().flatten().any(|s| *s == wanted)
}

/// Documents `what` (a code and its meaning) under `status`: appended to the response of that
/// status if the operation has one and does not name the code yet, else a new `ErrorBody`
/// response.
fn add_error(op: &mut Operation, status: u16, what: &str) {
    let code = what.split_whitespace().next().unwrap_or_default();
    let responses = &mut op.responses.responses;
    match responses.get_mut(&status.to_string()) {
        Some(RefOr::T(res)) => {
            if !res.description.contains(code) {
                res.description = format!("{}, {what}", res.description);
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            let mut res = Response::new(what);
            let schema = Ref::from_schema_name(ErrorBody::name());
            res.content.insert("application/json".into(), Content::new(Some(schema)));
            responses.insert(status.to_string(), RefOr::T(res));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value;

    use super::*;
    use crate::error::ApiError;

    /// One error of each code, to learn each code's status.
    fn every_error() -> Vec<ApiError> {
        let s = || String::from("x");
        vec![
            ApiError::MissingKey,
            ApiError::InvalidKey,
            ApiError::AdminKey,
            ApiError::MalformedJson(s()),
            ApiError::InvalidBody(s()),
            ApiError::InvalidImageId(s()),
            ApiError::InvalidUuid { what: "input", id: s() },
            ApiError::InvalidCycleLimit(0),
            ApiError::ImageIdMismatch { expected: s(), actual: s() },
            ApiError::InvalidProgram(s()),
            ApiError::EmptyBody("image"),
            ApiError::InvalidReceipt(s()),
            ApiError::UnverifiedReceipt(s()),
            ApiError::TooManyAssumptions { given: 2, max: 1 },
            ApiError::JournalTooLarge { size: 2, max: 1 },
            ApiError::Unsupported(s()),
            ApiError::not_found("session", "x"),
            ApiError::NoRoute { method: s(), path: s() },
            ApiError::MethodNotAllowed { method: s(), path: s() },
            ApiError::AlreadyUploaded { what: "input", id: s() },
            ApiError::AlreadyEnded { id: s(), status: s() },
            ApiError::NotReady(s()),
            ApiError::NotFailed { id: s(), status: s() },
            ApiError::TooLarge { what: "json", limit: 1, flag: "--max-json-size" },
            ApiError::SlowBody { what: "input", min_rate: 1, grace_secs: 1 },
            ApiError::RequestTimeout { secs: 1.0 },
            ApiError::ConcurrencyQuota { running: 1, quota: 1 },
            ApiError::CycleBudget { usage: 1, budget: 1 },
            ApiError::RateLimited { per_sec: 1, retry_after: 1 },
            ApiError::Busy { max: 1 },
            ApiError::StorageQuota { need: 1, usage: 1, quota: 1 },
            ApiError::InvalidIdempotencyKey,
            ApiError::IdempotencyMismatch { key: s() },
            ApiError::IdempotencyInFlight { key: s() },
            ApiError::TenantExists(s()),
            ApiError::InvalidTenantName(s()),
            ApiError::InvalidSetting(s()),
            ApiError::Db(s()),
            ApiError::Store(s()),
            ApiError::StorageFull(s()),
            ApiError::Tenants(s()),
        ]
    }

    fn json() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    /// Every `TIFFIN-API-0xx` a text names.
    fn codes(text: &str) -> Vec<String> {
        text.match_indices("TIFFIN-API-")
            .map(|(i, _)| text[i..].chars().take(14).collect())
            .collect()
    }

    #[test]
    fn every_error_response_names_codes_of_its_own_status_and_answers_an_error_body() {
        let statuses: BTreeMap<String, u16> =
            every_error().iter().map(|e| (e.code().to_string(), e.status().as_u16())).collect();
        let doc = json();
        let mut documented = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for (status, res) in op["responses"].as_object().unwrap() {
                    let at = format!("{method} {path} {status}");
                    let n: u16 = status.parse().unwrap();
                    let named = codes(res["description"].as_str().unwrap());
                    if n < 400 || path == "/health" {
                        assert!(named.is_empty(), "{at}: success names error codes");
                        continue;
                    }
                    assert!(!named.is_empty(), "{at}: no TIFFIN-API code named");
                    for code in named {
                        assert_eq!(statuses.get(&code), Some(&n), "{at}: {code}'s status");
                        documented += 1;
                    }
                    let schema = &res["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/ErrorBody", "{at}");
                }
            }
        }
        assert!(documented > 100, "only {documented} documented errors");
    }

    #[test]
    fn keyed_routes_carry_the_shared_errors_and_ops_routes_none() {
        let doc = json();
        let op = |method: &str, path: &str| doc["paths"][path][method].clone();
        let status = |op: &Value, s: &str| op["responses"][s]["description"].to_string();
        let create = op("post", "/sessions/create");
        assert_eq!(create["security"], serde_json::json!([{ API_KEY: [] }]));
        assert!(status(&create, "401").contains("TIFFIN-API-002"));
        assert!(status(&create, "413").contains("TIFFIN-API-040"));
        assert!(status(&create, "408").contains("TIFFIN-API-041"));
        let unavailable = status(&create, "503");
        for code in ["TIFFIN-API-090", "TIFFIN-API-053", "TIFFIN-API-092"] {
            assert_eq!(unavailable.matches(code).count(), 1, "{code} in {unavailable}");
        }
        let quotas = status(&op("get", "/user/quotas"), "503");
        assert_eq!(quotas.matches("TIFFIN-API-092").count(), 1, "named once: {quotas}");
        let report = op("get", "/admin/queue-report");
        assert_eq!(report["security"], serde_json::json!([{ ADMIN_KEY: [] }]));
        assert!(status(&report, "401").contains("TIFFIN-API-003"));
        assert!(status(&report, "408").contains("TIFFIN-API-042"));
        assert!(report["responses"].get("413").is_none(), "no body, no cap");
        for path in ["/health", "/metrics", "/openapi.json"] {
            let ops = op("get", path);
            assert!(ops.get("security").is_none(), "{path}");
            assert!(ops["responses"].get("401").is_none(), "{path}");
        }
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes[API_KEY]["name"], "x-api-key");
        assert_eq!(schemes[ADMIN_KEY]["name"], "x-admin-key");
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
