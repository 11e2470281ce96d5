//! The `Idempotency-Key` rows of `POST /sessions/create` ([`crate::idempotency`]): one per
//! (tenant, key), with the body's digest and, once created, the session.

use super::{Pool, Result, TenantStore, now_ms};
use crate::idempotency::{ABANDONED_MS, Claim, KEY_TTL_MS, decide};

impl TenantStore {
    /// Claims `key` for a request of `tenant` with body `digest`, or says what the key's
    /// first request became. Rows past their time to live (and first requests abandoned
    /// mid-create) are dropped first, so their key is new again.
    pub async fn claim_idempotency(&self, tenant: &str, key: &str, digest: &str) -> Result<Claim> {
        let now = now_ms();
        on_pool!(self, p => {
            sqlx::query(
                "DELETE FROM api_idempotency WHERE tenant = $1 AND \
                 (created_ms < $2 OR (session IS NULL AND created_ms < $3))")
                .bind(tenant).bind(now - KEY_TTL_MS).bind(now - ABANDONED_MS)
                .execute(p).await?;
            let inserted = sqlx::query(
                "INSERT INTO api_idempotency (tenant, key, digest, created_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .bind(tenant).bind(key).bind(digest).bind(now)
                .execute(p).await?.rows_affected();
            if inserted == 1 {
                return Ok(Claim::New);
            }
            let row: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT digest, session FROM api_idempotency WHERE tenant = $1 AND key = $2")
                .bind(tenant).bind(key).fetch_optional(p).await?;
            // Gone between the two statements (expired meanwhile): the retry claims it.
            Ok(row.map_or(Claim::InFlight, |(d, s)| decide(&d, s.as_deref(), digest)))
        })
    }

    /// Records the session `key`'s request created.
    pub async fn finish_idempotency(&self, tenant: &str, key: &str, session: &str) -> Result<()> {
        let sql = "UPDATE api_idempotency SET session = $3 WHERE tenant = $1 AND key = $2";
        on_pool!(self, p => sqlx::query(sql).bind(tenant).bind(key).bind(session).execute(p).await.map(drop)?);
        Ok(())
    }

    /// Frees `key` after its request failed, so a retry may create the session.
    pub async fn release_idempotency(&self, tenant: &str, key: &str) -> Result<()> {
        let sql = "DELETE FROM api_idempotency WHERE tenant = $1 AND key = $2 AND session IS NULL";
        on_pool!(self, p => sqlx::query(sql).bind(tenant).bind(key).execute(p).await.map(drop)?);
        Ok(())
    }
}
