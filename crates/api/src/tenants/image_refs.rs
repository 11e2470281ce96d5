//! Who holds an image. Image blobs are content addressed and shared, so the store counts
//! references: one per tenant that uploaded the program (only those tenants may see or run
//! it: another tenant learns nothing of an image it never uploaded), and one per unfinished
//! session (deleting an image its queued sessions still need keeps the blob until they end).
//! The blob goes when the last reference does.

use super::{Pool, Result, TenantStore};

/// References an image has (tenants and unfinished sessions).
const REFS: &str = "SELECT (SELECT count(*) FROM api_images WHERE image_id = $1) \
                         + (SELECT count(*) FROM api_session_images WHERE image_id = $1)";

impl TenantStore {
    /// Records that `tenant` holds image `image_id` (it uploaded the program).
    pub async fn add_image_ref(&self, image_id: &str, tenant: &str) -> Result<()> {
        let sql =
            "INSERT INTO api_images (image_id, tenant) VALUES ($1, $2) ON CONFLICT DO NOTHING";
        on_pool!(self, p => sqlx::query(sql).bind(image_id).bind(tenant).execute(p).await.map(drop)?);
        Ok(())
    }

    /// Whether `tenant` holds image `image_id`.
    pub async fn has_image_ref(&self, image_id: &str, tenant: &str) -> Result<bool> {
        let sql = "SELECT count(*) FROM api_images WHERE image_id = $1 AND tenant = $2";
        let (n,): (i64,) = on_pool!(self, p => sqlx::query_as(sql).bind(image_id).bind(tenant).fetch_one(p).await?);
        Ok(n > 0)
    }

    /// Drops a tenant's reference to an image; returns (whether it had one, references left).
    pub async fn drop_image_ref(&self, image_id: &str, tenant: &str) -> Result<(bool, i64)> {
        on_pool!(self, p => {
            let n = sqlx::query("DELETE FROM api_images WHERE image_id = $1 AND tenant = $2")
                .bind(image_id).bind(tenant).execute(p).await?.rows_affected();
            let (left,): (i64,) = sqlx::query_as(REFS).bind(image_id).fetch_one(p).await?;
            Ok((n == 1, left))
        })
    }

    /// Records that session `session` runs image `image_id` until it ends.
    pub async fn add_session_image(&self, session: &str, image_id: &str) -> Result<()> {
        let sql = "INSERT INTO api_session_images (session_id, image_id) VALUES ($1, $2) \
                   ON CONFLICT DO NOTHING";
        on_pool!(self, p => sqlx::query(sql).bind(session).bind(image_id).execute(p).await.map(drop)?);
        Ok(())
    }

    /// Drops an ended session's reference; returns its image when that was the image's last
    /// reference (the caller deletes the blob).
    pub async fn end_session_image(&self, session: &str) -> Result<Option<String>> {
        on_pool!(self, p => {
            let row: Option<(String,)> = sqlx::query_as(
                "DELETE FROM api_session_images WHERE session_id = $1 RETURNING image_id")
                .bind(session).fetch_optional(p).await?;
            let Some((image,)) = row else { return Ok(None) };
            let (left,): (i64,) = sqlx::query_as(REFS).bind(&image).fetch_one(p).await?;
            Ok((left == 0).then_some(image))
        })
    }
}
