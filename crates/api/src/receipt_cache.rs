//! The receipt cache: a proving session for what the same tenant already proved (same image,
//! same input bytes, same assumption receipts, same receipt kind and segment size) answers with
//! the earlier session at once, marked `cached`, instead of proving again.
//!
//! Inputs and uploaded receipts are identified by their content: each upload stores the
//! SHA-256 of its bytes beside it (`blobs::digest`). The cache holds, per tenant and per
//! [`CacheKey`], the id of the last session created for it (`cache/{tenant}/{key}`); a lookup
//! uses it only if that session SUCCEEDED, still has its receipt and ran within the new
//! request's cycle limit, so a failed, stopped, timed-out or collected session is simply a miss.
//! Sessions are never shared between tenants. A request opts out with `"no_cache": true`.

use sha2::{Digest, Sha256};
use tiffin_taskdb::{JobId, JobState};
use tiffin_workflow::blobs;
use tiffin_workflow::cluster::ClusterError;
use tiffin_zkvm::ReceiptKind;

use crate::error::ApiError;
use crate::session::{JobKind, job_kind};
use crate::state::AppState;

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What makes two proving sessions prove the same statement the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// Image id (hex).
    pub image: String,
    /// SHA-256 of the input bytes.
    pub input: String,
    /// SHA-256 of each assumption receipt, in the order the request named them.
    pub assumptions: Vec<String>,
    /// The receipt the session ends with.
    pub receipt_kind: ReceiptKind,
    /// Segment size.
    pub po2: u32,
}

impl CacheKey {
    /// The entry's name: a hash over every field, each length-prefixed so no two keys collide
    /// by concatenation.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"tiffin-receipt-cache-v1");
        let kind = serde_json::to_string(&self.receipt_kind).expect("a receipt kind serialises");
        let fields = [&self.image, &self.input, &kind, &self.po2.to_string()];
        for field in fields.into_iter().chain(&self.assumptions) {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field.as_bytes());
        }
        hex::encode(h.finalize())
    }

    fn entry(&self, tenant: &str) -> String {
        blobs::cache_entry(tenant, &self.digest())
    }
}

/// The content digest stored beside the blob at `key`, if the upload recorded one (uploads made
/// before the cache existed have none, so sessions using them are not cached).
async fn stored_digest(st: &AppState, key: &str) -> Result<Option<String>, ApiError> {
    match st.cluster.stores.cold.get(&blobs::digest(key)).await {
        Ok(b) => Ok(String::from_utf8(b.to_vec()).ok()),
        Err(tiffin_storage::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The cache key of a proving session, or `None` when an input or assumption has no digest.
pub async fn key_of(
    st: &AppState,
    image: &str,
    input_key: &str,
    assumption_keys: &[String],
    receipt_kind: ReceiptKind,
    po2: u32,
) -> Result<Option<CacheKey>, ApiError> {
    let Some(input) = stored_digest(st, input_key).await? else { return Ok(None) };
    let mut assumptions = Vec::with_capacity(assumption_keys.len());
    for key in assumption_keys {
        let Some(d) = stored_digest(st, key).await? else { return Ok(None) };
        assumptions.push(d);
    }
    Ok(Some(CacheKey { image: image.into(), input, assumptions, receipt_kind, po2 }))
}

/// The tenant's earlier session for `key` whose receipt answers a request with `cycle_limit`
/// (total cycles), if there is one.
pub async fn lookup(
    st: &AppState,
    tenant: &str,
    key: &CacheKey,
    cycle_limit: u64,
) -> Result<Option<JobId>, ApiError> {
    let entry = match st.cluster.stores.cold.get(&key.entry(tenant)).await {
        Ok(b) => b,
        Err(tiffin_storage::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(id) = std::str::from_utf8(&entry).ok().and_then(|s| s.parse::<JobId>().ok()) else {
        return Ok(None);
    };
    let job = match st.cluster.job(id).await {
        Ok(job) => job,
        Err(ClusterError::Db(tiffin_taskdb::Error::JobNotFound(_))) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let proven = matches!(job_kind(&job), Some(JobKind::Session(spec)) if !spec.execute_only);
    if job.tenant != tenant || job.state != JobState::Succeeded || !proven {
        return Ok(None);
    }
    let within_limit =
        st.cluster.execution(id).await?.is_some_and(|e| e.total_cycles <= cycle_limit);
    if !within_limit || !st.cluster.has_receipt(id).await? {
        return Ok(None);
    }
    Ok(Some(id))
}

/// Records `job` as the tenant's latest session for `key`.
pub async fn record(
    st: &AppState,
    tenant: &str,
    key: &CacheKey,
    job: JobId,
) -> Result<(), ApiError> {
    let id = bytes::Bytes::from(job.to_string());
    Ok(st.cluster.stores.cold.put(&key.entry(tenant), id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey {
            image: "aa".repeat(32),
            input: sha256_hex(b"input"),
            assumptions: vec![sha256_hex(b"r1")],
            receipt_kind: ReceiptKind::Succinct,
            po2: 20,
        }
    }

    #[test]
    fn every_field_changes_the_digest() {
        let base = key().digest();
        let mut variants = Vec::new();
        let mut k = key();
        k.image = "bb".repeat(32);
        variants.push(k);
        let mut k = key();
        k.input = sha256_hex(b"other input");
        variants.push(k);
        let mut k = key();
        k.assumptions.push(sha256_hex(b"r2"));
        variants.push(k);
        let mut k = key();
        k.assumptions.clear();
        variants.push(k);
        let mut k = key();
        k.receipt_kind = ReceiptKind::Composite;
        variants.push(k);
        let mut k = key();
        k.po2 = 21;
        variants.push(k);
        for v in variants {
            assert_ne!(v.digest(), base, "{v:?}");
        }
        assert_eq!(key().digest(), base, "the digest is deterministic");
    }

    #[test]
    fn fields_cannot_collide_by_concatenation() {
        let mut a = key();
        a.assumptions = vec!["ab".into(), "c".into()];
        let mut b = key();
        b.assumptions = vec!["a".into(), "bc".into()];
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn entries_are_per_tenant() {
        assert_ne!(key().entry("t1"), key().entry("t2"));
        assert!(key().entry("t1").starts_with(&blobs::cache_prefix("t1")));
    }
}
