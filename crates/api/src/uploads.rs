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
use crate::bonsai::{St, UrlRes, parse_image_id, parse_uuid};
use crate::limits::BodyKind;
use crate::receipt_cache::{digest_key, sha256_hex};
use crate::{ApiError, AppState, body, storage_quota};

/// Cold-store key of an uploaded receipt (an assumption for composition).
pub fn assumption_key(tenant: &str, id: &str) -> String {
    format!("assumptions/{tenant}/{id}")
}

/// The upload routes (see [`crate::bonsai::routes`]).
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

#[derive(Serialize)]
struct UploadRes {
    url: String,
    uuid: String,
}

async fn image_upload_url(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let image = parse_image_id(&id)?.to_hex();
    // 204 only for the tenant's own images: whether another tenant uploaded a program is not
    // this tenant's business, so it uploads it too (content addressed: the same blob).
    if st.tenants.has_image_ref(&image, &t.id).await?
        && st.cluster.stores.cold.exists(&blobs::image(&image)).await?
    {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let url = format!("{}/images/upload/{image}", st.base_url(&headers));
    Ok(Json(UrlRes { url }).into_response())
}

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
    let held = storage_quota::reserve(&st, &t, &key, size).await?;
    let stored = async {
        if !st.cluster.stores.cold.exists(&key).await? {
            st.cluster.stores.cold.put(&key, program).await?;
        }
        Ok::<_, ApiError>(st.tenants.add_image_ref(&actual.to_hex(), &t.id).await?)
    };
    match stored.await {
        Ok(()) => held.commit(&st, size).await?,
        Err(e) => {
            held.cancel(&st).await;
            return Err(e);
        }
    }
    Ok(StatusCode::OK.into_response())
}

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
        st.cluster.stores.cold.delete(&blobs::image(&image)).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A fresh upload slot: a new uuid and the URL to PUT to (`/{what}/upload/{uuid}`).
fn upload_slot(st: &AppState, headers: &HeaderMap, what: &str) -> Json<UploadRes> {
    let uuid = uuid::Uuid::new_v4().to_string();
    Json(UploadRes { url: format!("{}/{what}/upload/{uuid}", st.base_url(headers)), uuid })
}

async fn input_upload_url(State(st): St, Auth(_): Auth, headers: HeaderMap) -> Json<UploadRes> {
    upload_slot(&st, &headers, "inputs")
}

async fn input_put(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let uuid = parse_uuid("input", &id)?.to_string();
    let key = blobs::input(&t.id, &uuid);
    if st.cluster.stores.cold.exists(&key).await? {
        return Err(ApiError::AlreadyUploaded { what: "input", id });
    }
    let cold = &st.cluster.stores.cold;
    let (cap, by_quota) = storage_quota::quota_cap(
        st.cfg.limits.cap(BodyKind::Input),
        storage_quota::room(&st, &t).await?,
    );
    // A declared length holds just that much of the quota; a body of unknown length holds all
    // the room it may use until it ends.
    let hold = body::declared(&headers).unwrap_or(cap.bytes).min(cap.bytes);
    let held = storage_quota::reserve(&st, &t, &key, hold).await?;
    let stored = match body::stream_to_store(&headers, body, cap, cold, &key).await {
        Ok(stored) => stored,
        Err(e) => {
            held.cancel(&st).await;
            return Err(match e {
                ApiError::TooLarge { .. } if by_quota => {
                    storage_quota::over_quota(&st, &t, cap.bytes.saturating_add(1)).await?
                }
                e => e,
            });
        }
    };
    held.commit(&st, stored.size).await?;
    put_digest(&st, &t.id, &key, stored.sha256).await?;
    Ok(StatusCode::OK.into_response())
}

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

/// Stores the content digest of the blob just uploaded at `key`, for the receipt cache. The
/// blob itself is already durable; should this write fail, the upload fails and the client
/// uploads again under a new id.
async fn put_digest(
    st: &AppState,
    tenant: &str,
    key: &str,
    sha256: String,
) -> Result<(), ApiError> {
    if let Err(e) = st.cluster.stores.cold.put(&digest_key(key), sha256.into()).await {
        let _ = storage_quota::delete(st, tenant, key).await;
        return Err(e.into());
    }
    Ok(())
}

async fn receipt_upload_url(State(st): St, Auth(_): Auth, headers: HeaderMap) -> Json<UploadRes> {
    upload_slot(&st, &headers, "receipts")
}

async fn receipt_put(
    State(st): St,
    Auth(t): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let uuid = parse_uuid("receipt", &id)?.to_string();
    let key = assumption_key(&t.id, &uuid);
    if st.cluster.stores.cold.exists(&key).await? {
        return Err(ApiError::AlreadyUploaded { what: "receipt", id });
    }
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
    let held = storage_quota::reserve(&st, &t, &key, size).await?;
    if let Err(e) = st.cluster.stores.cold.put(&key, bytes).await {
        held.cancel(&st).await;
        return Err(e.into());
    }
    held.commit(&st, size).await?;
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
