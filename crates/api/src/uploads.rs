//! The Bonsai upload routes: programs (content addressed, shared, the image id recomputed off
//! the async threads), inputs (streamed to the cold store) and receipts (decoded and verified
//! off the async threads), each under its kind's cap ([`crate::limits`]) and in the
//! uploader's namespace.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde::Serialize;
use tiffin_workflow::blobs;
use tiffin_zkvm::ImageId;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorBody};
use crate::limits::BodyKind;
use crate::openapi::answers;
use crate::receipt_cache::sha256_hex;
use crate::session::{St, UrlRes, parse_image_id, parse_uuid};
use crate::state::AppState;
use crate::{body, storage_quota};

/// The upload routes (merged by [`crate::router`]).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/images/upload/{image_id}", get(image_upload_url).put(image_put))
        .route("/images/{image_id}", delete(image_delete))
        .route("/inputs/upload", get(input_upload_url))
        .route("/inputs/upload/{uuid}", put(input_put))
        .route("/inputs/{uuid}", delete(input_delete))
        .route("/receipts/upload", get(receipt_upload_url))
        .route("/receipts/upload/{uuid}", put(receipt_put))
}

/// A fresh upload slot (Bonsai's `UploadRes`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct UploadRes {
    /// Where to `PUT` the bytes.
    url: String,
    /// The id the upload will have.
    uuid: String,
}

/// Whether this tenant has the image, else where to upload it.
#[utoipa::path(get, path = "/images/upload/{image_id}", tag = "bonsai", security(("api_key" = [])),
    params(("image_id" = String, Path, description = "The program's image id: 64 hex characters")),
    responses(
        (status = 200, description = "Upload the program to `url`", body = UrlRes),
        (status = 204, description = "This tenant already uploaded the image"),
        (status = 400, description = "TIFFIN-API-012 bad image id", body = ErrorBody),
        answers::StoreError,
    ))]
async fn image_upload_url(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let image = parse_image_id(&id)?.to_hex();
    // 204 only for the tenant's own images: whether another tenant uploaded a program is not
    // this tenant's business, so it uploads it too (content addressed: the same blob).
    if st.tenants.has_image_ref(&image, &t.id).await? && st.cluster.has_image(&image).await? {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let url = format!("{}/images/upload/{image}", st.base_url(&headers));
    Ok(Json(UrlRes { url }).into_response())
}

/// Upload a program; its image id is recomputed and must be the one in the URL.
#[utoipa::path(put, path = "/images/upload/{image_id}", tag = "bonsai", security(("api_key" = [])),
    params(("image_id" = String, Path, description = "The program's image id: 64 hex characters")),
    request_body(description = "The program binary (at most --max-image-size)", content(("application/octet-stream"))),
    responses(
        (status = 200, description = "Stored (or already stored: images are content addressed)"),
        (status = 400, description = "TIFFIN-API-012 bad image id, TIFFIN-API-015 image id mismatch, TIFFIN-API-016 not a RISC Zero program, TIFFIN-API-017 empty upload", body = ErrorBody),
        answers::OverStorageQuota,
        answers::StoreError,
        answers::StorageFull,
    ))]
async fn image_put(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let expected = parse_image_id(&id)?;
    let program = body::read(&headers, body, st.cfg.limits.cap(BodyKind::Image)).await?;
    if program.is_empty() {
        return Err(ApiError::EmptyBody("image"));
    }
    let bytes = program.clone();
    let actual = tokio::task::spawn_blocking(move || ImageId::of_program(&bytes))
        .await
        .map_err(|e| ApiError::InvalidProgram(format!("image id computation panicked: {e}")))?
        .map_err(|e| ApiError::InvalidProgram(e.to_string()))?;
    if actual != expected {
        return Err(ApiError::ImageIdMismatch {
            expected: expected.to_hex(),
            actual: actual.to_hex(),
        });
    }
    // Content addressed: a second upload of the same program is the same blob, so it is
    // accepted (two clients racing on one new image both succeed). Stored directly: the id was
    // computed above, off the async threads.
    let key = blobs::image(&actual.to_hex());
    // Each tenant holding an image pays for it once, from its first upload.
    if st.tenants.has_image_ref(&actual.to_hex(), &t.id).await? {
        return Ok(StatusCode::OK.into_response());
    }
    let size = program.len() as u64;
    let stored = async {
        st.cluster.put_image(&actual, program).await?;
        st.tenants.add_image_ref(&actual.to_hex(), &t.id).await?;
        Ok::<_, ApiError>((size, ()))
    };
    storage_quota::with_reservation(&st, &t, &key, size, stored).await?;
    Ok(StatusCode::OK.into_response())
}

/// Drop this tenant's reference to an image (the program goes with the last reference).
#[utoipa::path(delete, path = "/images/{image_id}", tag = "bonsai", security(("api_key" = [])),
    params(("image_id" = String, Path, description = "The program's image id: 64 hex characters")),
    responses(
        (status = 204, description = "Dropped"),
        (status = 400, description = "TIFFIN-API-012 bad image id", body = ErrorBody),
        (status = 404, description = "TIFFIN-API-020 this tenant has no such image", body = ErrorBody),
        answers::StoreError,
    ))]
async fn image_delete(
    State(st): St,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let image = parse_image_id(&id)?.to_hex();
    let (had, left) = st.tenants.drop_image_ref(&image, &t.id).await?;
    if !had {
        return Err(ApiError::not_found("image", id));
    }
    st.tenants.release_blob(&t.id, &blobs::image(&image)).await?;
    // Shared blob: only the last tenant using it deletes it.
    if left == 0 {
        st.cluster.delete_image(&image).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A fresh upload slot: a new uuid and the URL to PUT to (`/{what}/upload/{uuid}`).
fn upload_slot(st: &AppState, headers: &HeaderMap, what: &str) -> Json<UploadRes> {
    let uuid = uuid::Uuid::new_v4().to_string();
    Json(UploadRes { url: format!("{}/{what}/upload/{uuid}", st.base_url(headers)), uuid })
}

/// A fresh input id and the URL to upload the input to.
#[utoipa::path(get, path = "/inputs/upload", tag = "bonsai", security(("api_key" = [])),
    responses((status = 200, description = "`PUT` the input to `url`", body = UploadRes)))]
async fn input_upload_url(State(st): St, Auth(_): Auth, headers: HeaderMap) -> Json<UploadRes> {
    upload_slot(&st, &headers, "inputs")
}

/// Upload an input (streamed to the store; at most --max-input-size).
#[utoipa::path(put, path = "/inputs/upload/{uuid}", tag = "bonsai", security(("api_key" = [])),
    params(("uuid" = String, Path, description = "The input's id (from `GET /inputs/upload`)")),
    request_body(description = "The input's bytes", content(("application/octet-stream"))),
    responses(
        (status = 200, description = "Stored"),
        answers::BadUuid,
        answers::AlreadyUploaded,
        answers::OverStorageQuota,
        answers::StoreError,
        answers::StorageFull,
    ))]
async fn input_put(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let key = new_upload(&st, "input", &id, |uuid| blobs::input(&t.id, uuid)).await?;
    let cold = &st.cluster.stores.cold;
    let (cap, by_quota) = storage_quota::quota_cap(
        st.cfg.limits.cap(BodyKind::Input),
        storage_quota::room(&st, &t).await?,
    );
    // A declared length holds just that much of the quota; a body of unknown length holds all
    // the room it may use until it ends.
    let hold = body::declared(&headers).unwrap_or(cap.bytes).min(cap.bytes);
    let stored = async {
        let stored = body::stream_to_store(&headers, body, cap, cold, &key).await?;
        Ok::<_, ApiError>((stored.size, stored.sha256))
    };
    let sha256 = match storage_quota::with_reservation(&st, &t, &key, hold, stored).await {
        Ok(sha256) => sha256,
        Err(ApiError::TooLarge { .. }) if by_quota => {
            return Err(storage_quota::over_quota(&st, &t, cap.bytes.saturating_add(1)).await?);
        }
        Err(e) => return Err(e),
    };
    put_digest(&st, &t.id, &key, sha256).await?;
    Ok(StatusCode::OK.into_response())
}

/// Delete an input.
#[utoipa::path(delete, path = "/inputs/{uuid}", tag = "bonsai", security(("api_key" = [])),
    params(("uuid" = String, Path, description = "The input's id")),
    responses(
        (status = 204, description = "Deleted"),
        answers::BadUuid,
        (status = 404, description = "TIFFIN-API-020 no such input of this tenant", body = ErrorBody),
        answers::StoreError,
    ))]
async fn input_delete(
    State(st): St,
    Auth(t): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let uuid = parse_uuid("input", &id)?.to_string();
    let key = blobs::input(&t.id, &uuid);
    if !st.cluster.stores.cold.exists(&key).await? {
        return Err(ApiError::not_found("input", id));
    }
    storage_quota::delete(&st, &t.id, &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The cold-store key (`key_of` its uuid) of an upload `id` of `what`, refused if that upload
/// exists already: inputs and receipts are written once.
async fn new_upload(
    st: &AppState,
    what: &'static str,
    id: &str,
    key_of: impl FnOnce(&str) -> String,
) -> Result<String, ApiError> {
    let key = key_of(&parse_uuid(what, id)?.to_string());
    if st.cluster.stores.cold.exists(&key).await? {
        return Err(ApiError::AlreadyUploaded { what, id: id.into() });
    }
    Ok(key)
}

/// Stores the content digest of the blob just uploaded at `key`, for the receipt cache. The
/// blob itself is already durable; should this write fail, the upload fails and the client
/// uploads again under a new id.
async fn put_digest(
    st: &AppState,
    tenant: &str,
    key: &str,
    sha256: String,
) -> Result<(), ApiError> {
    if let Err(e) = st.cluster.stores.cold.put(&blobs::digest(key), sha256.into()).await {
        let _ = storage_quota::delete(st, tenant, key).await;
        return Err(e.into());
    }
    Ok(())
}

/// A fresh receipt id and the URL to upload a receipt (an assumption) to.
#[utoipa::path(get, path = "/receipts/upload", tag = "bonsai", security(("api_key" = [])),
    responses((status = 200, description = "`PUT` the receipt to `url`", body = UploadRes)))]
async fn receipt_upload_url(State(st): St, Auth(_): Auth, headers: HeaderMap) -> Json<UploadRes> {
    upload_slot(&st, &headers, "receipts")
}

/// Upload a bincode risc0 `Receipt`, verified on upload, for sessions to assume.
#[utoipa::path(put, path = "/receipts/upload/{uuid}", tag = "bonsai", security(("api_key" = [])),
    params(("uuid" = String, Path, description = "The receipt's id (from `GET /receipts/upload`)")),
    request_body(description = "The bincode `Receipt` (at most --max-receipt-size)", content(("application/octet-stream"))),
    responses(
        (status = 200, description = "Stored"),
        (status = 400, description = "TIFFIN-API-013 the id is not a UUID, TIFFIN-API-017 empty upload, TIFFIN-API-018 not a bincode Receipt, TIFFIN-API-023 the receipt does not verify, TIFFIN-API-025 journal over --max-journal-size", body = ErrorBody),
        answers::AlreadyUploaded,
        answers::OverStorageQuota,
        answers::StoreError,
        answers::StorageFull,
    ))]
async fn receipt_put(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let key = new_upload(&st, "receipt", &id, |uuid| blobs::assumption(&t.id, uuid)).await?;
    let bytes = body::read(&headers, body, st.cfg.limits.cap(BodyKind::Receipt)).await?;
    if bytes.is_empty() {
        return Err(ApiError::EmptyBody("receipt"));
    }
    let max_journal = st.cfg.max_journal_bytes;
    let checked = bytes.clone();
    // Decoding and verifying take CPU time: off the async threads.
    tokio::task::spawn_blocking(move || check_receipt(&checked, max_journal))
        .await
        .map_err(|e| ApiError::Store(format!("receipt check: {e}")))??;
    let (sha256, size) = (sha256_hex(&bytes), bytes.len() as u64);
    let stored =
        async { Ok::<_, ApiError>((size, st.cluster.stores.cold.put(&key, bytes).await?)) };
    storage_quota::with_reservation(&st, &t, &key, size, stored).await?;
    put_digest(&st, &t.id, &key, sha256).await?;
    Ok(StatusCode::OK.into_response())
}

/// An uploaded receipt must decode, carry a journal within the limit, and verify: its seal
/// proves its claim, and the journal is the claim's (whatever program it is for; the guest that
/// assumes it names the program).
fn check_receipt(bytes: &[u8], max_journal: usize) -> Result<(), ApiError> {
    let receipt: tiffin_zkvm::Receipt = tiffin_zkvm::decode("receipt", bytes)
        .map_err(|e| ApiError::InvalidReceipt(e.to_string()))?;
    let size = receipt.journal.bytes.len();
    if size > max_journal {
        return Err(ApiError::JournalTooLarge { size, max: max_journal });
    }
    tiffin_zkvm::verify_integrity(&receipt).map_err(|e| ApiError::UnverifiedReceipt(e.to_string()))
}
