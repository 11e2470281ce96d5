//! Error answers several routes document alike, each written once: a route names them in its
//! `#[utoipa::path(responses(...))]` beside the answers of its own. A status that has codes of
//! the route's own as well is written out in full by that route instead.

use utoipa::IntoResponses;

use crate::error::ErrorBody;

/// 503: the task database failed.
#[derive(IntoResponses)]
#[response(status = 503, description = "TIFFIN-API-090 task database error")]
pub struct DbError(pub ErrorBody);

/// 500: the cold store failed.
#[derive(IntoResponses)]
#[response(status = 500, description = "TIFFIN-API-091 store error")]
pub struct StoreError(pub ErrorBody);

/// 400: the id in the path is not a UUID.
#[derive(IntoResponses)]
#[response(status = 400, description = "TIFFIN-API-013 the id is not a UUID")]
pub struct BadUuid(pub ErrorBody);

/// 503: the task database or the tenant database failed.
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "TIFFIN-API-090 task database error, TIFFIN-API-092 tenant database error"
)]
pub struct DbOrTenantsError(pub ErrorBody);

/// 503: the tenant database failed.
#[derive(IntoResponses)]
#[response(status = 503, description = "TIFFIN-API-092 tenant database error")]
pub struct TenantsError(pub ErrorBody);

/// 507: the cluster has no room for an upload.
#[derive(IntoResponses)]
#[response(status = 507, description = "TIFFIN-API-095 the cluster's storage is full")]
pub struct StorageFull(pub ErrorBody);

/// 413: an upload would take the tenant over its storage quota.
#[derive(IntoResponses)]
#[response(status = 413, description = "TIFFIN-API-054 over the tenant's storage quota")]
pub struct OverStorageQuota(pub ErrorBody);

/// 404: no tenant of that name.
#[derive(IntoResponses)]
#[response(status = 404, description = "TIFFIN-API-020 no such tenant")]
pub struct NoSuchTenant(pub ErrorBody);

/// 404: no session of this tenant under that id.
#[derive(IntoResponses)]
#[response(status = 404, description = "TIFFIN-API-020 no such session of this tenant")]
pub struct NoSuchSession(pub ErrorBody);

/// 404: no job under that id.
#[derive(IntoResponses)]
#[response(status = 404, description = "TIFFIN-API-020 no such job")]
pub struct NoSuchJob(pub ErrorBody);

/// 409: the upload exists already (uploads are written once).
#[derive(IntoResponses)]
#[response(status = 409, description = "TIFFIN-API-030 already uploaded")]
pub struct AlreadyUploaded(pub ErrorBody);
