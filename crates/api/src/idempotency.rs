//! `Idempotency-Key` on `POST /sessions/create`: a client that retries a create it does not
//! know the outcome of (a timeout, a dropped connection) sends the same key, and gets the
//! session the first request created instead of a second one. Per tenant, for
//! [`KEY_TTL_MS`]; the same key with a different body is refused (`TIFFIN-API-034`), and
//! while the first request is still being handled the retry is told to wait
//! (`TIFFIN-API-035`). Stored durably in the tenant database (`api_idempotency`), so a retry
//! that reaches another API process, or the same one after a restart, is answered alike.
//!
//! The decision is pure ([`decide`]); [`crate::tenants::TenantStore::claim_idempotency`]
//! reads and writes the row.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The header.
pub const HEADER: &str = "idempotency-key";
/// How long a key names its session.
pub const KEY_TTL_MS: i64 = 24 * 3600 * 1000;
/// A key whose first request has not finished after this long is taken to be abandoned (its
/// API process died mid-create) and may be claimed again.
pub const ABANDONED_MS: i64 = 5 * 60 * 1000;

/// The key of a request, if it sends one: 1 to 255 visible ASCII characters.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(HEADER) else { return Ok(None) };
    let bytes = v.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::InvalidIdempotencyKey);
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The digest a body is compared by: its JSON re-serialized (objects' keys sorted), so
/// whitespace and key order do not make two requests differ.
pub fn digest(body: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(sorted(body).to_string().as_bytes()))
}

/// `v` with every object's keys in order (whether or not serde_json keeps insertion order).
fn sorted(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), sorted(&m[k]))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// What a key's stored row says about this request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (now claimed): create the session and record it.
    New,
    /// The key's first request created this session: answer with it.
    Done(String),
    /// The key was used for another body.
    Mismatch,
    /// The key's first request is still being handled.
    InFlight,
}

/// The outcome for a request with body digest `digest`, given the key's stored row (its
/// digest and session, `None` while the first request runs).
pub fn decide(stored_digest: &str, stored_session: Option<&str>, digest: &str) -> Claim {
    match stored_session {
        _ if stored_digest != digest => Claim::Mismatch,
        Some(session) => Claim::Done(session.to_string()),
        None => Claim::InFlight,
    }
}

/// The error a claim answers with, if any.
pub fn refusal(claim: &Claim, key: &str) -> Option<ApiError> {
    match claim {
        Claim::Mismatch => Some(ApiError::IdempotencyMismatch { key: key.to_string() }),
        Claim::InFlight => Some(ApiError::IdempotencyInFlight { key: key.to_string() }),
        Claim::New | Claim::Done(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_visible_ascii_of_sane_length() {
        let headers = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(HEADER, v.parse().unwrap());
            h
        };
        assert_eq!(key_of(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            key_of(&headers("order-0x12-lock")).unwrap().as_deref(),
            Some("order-0x12-lock")
        );
        for bad in ["", "has space", &"k".repeat(256)] {
            let err = key_of(&headers(bad)).unwrap_err();
            assert_eq!(err.code(), "TIFFIN-API-026", "{bad:?}");
        }
    }

    #[test]
    fn same_json_same_digest_whatever_the_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"img":"ab","input":"x"}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "input": "x", "img": "ab" }"#).unwrap();
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&json!({"img": "ab", "input": "y"})));
    }

    #[test]
    fn decisions() {
        let table = [
            ("same body, session made", "d1", Some("s1"), "d1", Claim::Done("s1".into())),
            ("same body, still running", "d1", None, "d1", Claim::InFlight),
            ("other body, session made", "d1", Some("s1"), "d2", Claim::Mismatch),
            ("other body, still running", "d1", None, "d2", Claim::Mismatch),
        ];
        for (name, stored, session, digest, want) in table {
            assert_eq!(decide(stored, session, digest), want, "{name}");
        }
        assert_eq!(refusal(&Claim::Mismatch, "k").unwrap().code(), "TIFFIN-API-034");
        assert_eq!(refusal(&Claim::InFlight, "k").unwrap().status(), 409);
        assert!(refusal(&Claim::Done("s".into()), "k").is_none());
    }
}
