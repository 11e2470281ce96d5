//! Storage usage: every input, uploaded receipt and image reference a tenant stores is a row
//! of `api_blobs`, and its size is in the tenant's `storage_usage`, changed in the same
//! transaction. Uploads reserve their bytes first, with a conditional update that cannot take
//! a tenant past its `storage_quota` however many API processes upload at once; a row is
//! released exactly once (`DELETE … RETURNING`), so two processes collecting the same blob
//! cannot both subtract it.

use super::{Pool, Result, TenantStore, now_ms};

/// A blob charged to a tenant, as the collector sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargedBlob {
    /// Owner (tenant id).
    pub tenant: String,
    /// Cold-store key.
    pub key: String,
    /// Whether it is an upload that never finished.
    pub pending: bool,
}

impl TenantStore {
    /// Reserves `size` bytes of the tenant's quota for an upload to `key`; `false` (nothing
    /// changed) when that would take it past its quota or `key` is already charged to it.
    pub async fn reserve_blob(&self, tenant: &str, key: &str, size: i64) -> Result<bool> {
        let now = now_ms();
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let taken = sqlx::query(
                "UPDATE api_tenants SET storage_usage = storage_usage + $2 \
                 WHERE id = $1 AND storage_usage + $2 <= storage_quota")
                .bind(tenant).bind(size).execute(&mut *tx).await?.rows_affected();
            let added = taken == 1 && sqlx::query(
                "INSERT INTO api_blobs (tenant, key, size, pending, created_ms, used_ms) \
                 VALUES ($1, $2, $3, TRUE, $4, $4) ON CONFLICT DO NOTHING")
                .bind(tenant).bind(key).bind(size).bind(now)
                .execute(&mut *tx).await?.rows_affected() == 1;
            if added { tx.commit().await? } else { tx.rollback().await? }
            Ok(added)
        })
    }

    /// Ends an upload: the reservation becomes a stored blob of `size` bytes (the usage moves
    /// by the difference). `false` if there was no reservation (collected meanwhile).
    pub async fn commit_blob(&self, tenant: &str, key: &str, size: i64) -> Result<bool> {
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let row: Option<(i64,)> = sqlx::query_as(
                "DELETE FROM api_blobs WHERE tenant = $1 AND key = $2 AND pending RETURNING size")
                .bind(tenant).bind(key).fetch_optional(&mut *tx).await?;
            let Some((reserved,)) = row else { return Ok(false) };
            let now = now_ms();
            sqlx::query(
                "INSERT INTO api_blobs (tenant, key, size, pending, created_ms, used_ms) \
                 VALUES ($1, $2, $3, FALSE, $4, $4)")
                .bind(tenant).bind(key).bind(size).bind(now).execute(&mut *tx).await?;
            sqlx::query("UPDATE api_tenants SET storage_usage = storage_usage + $2 WHERE id = $1")
                .bind(tenant).bind(size - reserved).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Releases a blob (stored or reserved) from the tenant's usage; returns its size, `None`
    /// if it was not charged (or another process released it first).
    pub async fn release_blob(&self, tenant: &str, key: &str) -> Result<Option<i64>> {
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let row: Option<(i64,)> = sqlx::query_as(
                "DELETE FROM api_blobs WHERE tenant = $1 AND key = $2 RETURNING size")
                .bind(tenant).bind(key).fetch_optional(&mut *tx).await?;
            if let Some((size,)) = row {
                sqlx::query(
                    "UPDATE api_tenants SET storage_usage = storage_usage - $2 WHERE id = $1")
                    .bind(tenant).bind(size).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(row.map(|(size,)| size))
        })
    }

    /// Marks the tenant's blobs as used now (a session read them), restarting their time to
    /// live.
    pub async fn touch_blobs(&self, tenant: &str, keys: &[String]) -> Result<()> {
        let now = now_ms();
        for key in keys {
            let sql = "UPDATE api_blobs SET used_ms = $3 WHERE tenant = $1 AND key = $2";
            on_pool!(self, p => sqlx::query(sql).bind(tenant).bind(key).bind(now).execute(p).await.map(drop)?);
        }
        Ok(())
    }

    /// Up to `limit` blobs to collect: stored ones (not images, which tenants delete
    /// themselves) unused since `unused_before_ms`, and uploads still pending since
    /// `pending_before_ms` (their process died mid-upload).
    pub async fn expired_blobs(
        &self,
        unused_before_ms: i64,
        pending_before_ms: i64,
        limit: i64,
    ) -> Result<Vec<ChargedBlob>> {
        let sql = "SELECT tenant, key, pending FROM api_blobs \
                   WHERE (NOT pending AND used_ms < $1 AND key NOT LIKE 'images/%') \
                      OR (pending AND created_ms < $2) \
                   ORDER BY used_ms LIMIT $3";
        let rows: Vec<(String, String, bool)> = on_pool!(self, p => sqlx::query_as(sql)
            .bind(unused_before_ms).bind(pending_before_ms).bind(limit).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(tenant, key, pending)| ChargedBlob { tenant, key, pending })
            .collect())
    }
}
