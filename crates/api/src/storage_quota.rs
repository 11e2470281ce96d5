//! Per-tenant storage: quotas on what uploads may store, and the collector of what nobody uses.
//!
//! Each upload (input, receipt, a tenant's first hold on an image) reserves its bytes against
//! the tenant's `storage_quota` before anything is written ([`Reservation`]) and commits its
//! real size after; over the quota it is refused with TIFFIN-API-054 (413). Inputs and
//! uploaded receipts no session has used for `blob_ttl` are deleted by [`collect`], and so are
//! reservations of uploads whose process died ([`PENDING_TTL`]). The books live in the tenant
//! database (`crate::tenants::blob_usage`), so quotas hold across API processes.

use std::time::Duration;

use tiffin_workflow::blobs;

use crate::error::ApiError;
use crate::limits::Cap;
use crate::state::AppState;
use crate::tenants::Tenant;

/// How long an upload may hold a reservation before the collector takes it back (the upload's
/// process died, or it is still crawling along after this long and will be refused).
pub const PENDING_TTL: Duration = Duration::from_secs(6 * 3600);

/// Bytes of a tenant's quota held for one upload until it is committed or cancelled.
pub struct Reservation {
    tenant: String,
    key: String,
    /// Bytes held.
    pub bytes: u64,
}

/// Holds `bytes` of the tenant's quota for an upload to `key`, or says how far over it is.
pub async fn reserve(
    st: &AppState,
    tenant: &Tenant,
    key: &str,
    bytes: u64,
) -> Result<Reservation, ApiError> {
    let size = i64::try_from(bytes).unwrap_or(i64::MAX);
    if !st.tenants.reserve_blob(&tenant.id, key, size).await? {
        return Err(over_quota(st, tenant, bytes).await?);
    }
    Ok(Reservation { tenant: tenant.id.clone(), key: key.into(), bytes })
}

/// The TIFFIN-API-054 error, with the tenant's current figures.
pub(crate) async fn over_quota(
    st: &AppState,
    tenant: &Tenant,
    need: u64,
) -> Result<ApiError, ApiError> {
    let now = st.tenants.tenant(&tenant.name).await?.unwrap_or_else(|| tenant.clone());
    Ok(ApiError::StorageQuota { need, usage: now.storage_usage, quota: now.storage_quota })
}

/// The cap of an upload of kind `cap` for a tenant with `room` bytes left: the smaller of the
/// two, and whether the quota is what binds.
pub fn quota_cap(cap: Cap, room: u64) -> (Cap, bool) {
    if room < cap.bytes { (Cap { bytes: room, ..cap }, true) } else { (cap, false) }
}

/// Bytes the tenant may still store, read fresh (the authentication cache may be stale).
pub async fn room(st: &AppState, tenant: &Tenant) -> Result<u64, ApiError> {
    let now = st.tenants.tenant(&tenant.name).await?.unwrap_or_else(|| tenant.clone());
    Ok(u64::try_from(now.storage_quota.saturating_sub(now.storage_usage)).unwrap_or(0))
}

impl Reservation {
    /// The upload is stored, `size` bytes: the tenant's usage becomes exact. If the collector
    /// took the reservation back meanwhile, the blob is deleted and the upload refused.
    pub async fn commit(self, st: &AppState, size: u64) -> Result<(), ApiError> {
        let size_i = i64::try_from(size).unwrap_or(i64::MAX);
        if st.tenants.commit_blob(&self.tenant, &self.key, size_i).await? {
            return Ok(());
        }
        st.cluster.stores.cold.delete(&self.key).await?;
        Err(ApiError::Store(format!(
            "the upload to {} outlived its reservation ({} s); upload again",
            self.key,
            PENDING_TTL.as_secs()
        )))
    }

    /// The upload failed: its bytes go back to the tenant.
    pub async fn cancel(self, st: &AppState) {
        if let Err(e) = st.tenants.release_blob(&self.tenant, &self.key).await {
            tracing::warn!(key = %self.key, error = %e, "releasing a reservation failed");
        }
    }
}

/// Holds `bytes` of the tenant's quota for an upload to `key` while `store` writes it, then
/// commits the size `store` reports; if `store` fails, the bytes go back and its error is
/// returned. `store` answers its size and whatever else the caller needs from it.
pub async fn with_reservation<T>(
    st: &AppState,
    tenant: &Tenant,
    key: &str,
    bytes: u64,
    store: impl Future<Output = Result<(u64, T), ApiError>>,
) -> Result<T, ApiError> {
    let held = reserve(st, tenant, key, bytes).await?;
    match store.await {
        Ok((size, out)) => {
            held.commit(st, size).await?;
            Ok(out)
        }
        Err(e) => {
            held.cancel(st).await;
            Err(e)
        }
    }
}

/// Deletes the blob at `key` and gives its bytes back to `tenant`.
pub async fn delete(st: &AppState, tenant: &str, key: &str) -> Result<(), ApiError> {
    let cold = &st.cluster.stores.cold;
    cold.delete(key).await?;
    cold.delete(&blobs::digest(key)).await?;
    st.tenants.release_blob(tenant, key).await?;
    Ok(())
}

/// One collection pass: deletes inputs and uploaded receipts unused for `ttl`, and
/// reservations older than [`PENDING_TTL`]. Returns how many blobs went.
pub async fn collect(st: &AppState, ttl: Duration) -> Result<usize, ApiError> {
    let now = chrono::Utc::now().timestamp_millis();
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let mut collected = 0;
    loop {
        let unused_before = now.saturating_sub(ms(ttl));
        let pending_before = now.saturating_sub(ms(PENDING_TTL));
        let batch = st.tenants.expired_blobs(unused_before, pending_before, 200).await?;
        if batch.is_empty() {
            return Ok(collected);
        }
        for blob in batch {
            // An image is never collected by age (its holders delete it); only its stale
            // reservation is released.
            if blob.key.starts_with(&blobs::image("")) {
                st.tenants.release_blob(&blob.tenant, &blob.key).await?;
            } else {
                delete(st, &blob.tenant, &blob.key).await?;
            }
            collected += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{BodyKind, Limits};

    #[test]
    fn the_smaller_of_cap_and_room_binds() {
        let cap = Limits::default().cap(BodyKind::Input);
        let (c, quota) = quota_cap(cap, cap.bytes + 1);
        assert_eq!((c.bytes, quota), (cap.bytes, false));
        let (c, quota) = quota_cap(cap, 10);
        assert_eq!((c.bytes, quota), (10, true));
        let (c, quota) = quota_cap(cap, 0);
        assert_eq!((c.bytes, quota), (0, true));
    }
}
