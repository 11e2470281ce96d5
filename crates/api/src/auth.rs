//! Authentication: `x-api-key` maps to a tenant through the hashed key table; admin routes
//! take a separate `x-admin-key`. Extractors, so a handler cannot forget to authenticate.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::ApiError;
use crate::state::AppState;
use crate::tenants::{Tenant, hash_key};

/// The header Bonsai clients send their key in.
pub const API_KEY_HEADER: &str = "x-api-key";
/// The header of the admin key.
pub const ADMIN_KEY_HEADER: &str = "x-admin-key";

/// The authenticated tenant of a request.
pub struct Auth(pub Tenant);

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(API_KEY_HEADER)
            .ok_or(ApiError::MissingKey)?
            .to_str()
            .map_err(|_| ApiError::InvalidKey)?;
        if key.is_empty() {
            return Err(ApiError::MissingKey);
        }
        let tenant = state.authenticate(key).await?.ok_or(ApiError::InvalidKey)?;
        state.gate.check_rate(&tenant.name)?;
        Ok(Auth(tenant))
    }
}

/// The shortest admin key a server starts with (`tiffin up` generates 68 characters).
pub const MIN_ADMIN_KEY_LEN: usize = 16;

/// Why a server refuses to start with an admin key: an empty key would let any request with an
/// empty `x-admin-key` header administer every tenant, and a short one is guessable.
#[derive(Debug, PartialEq, Eq, thiserror::Error, tiffin_codes::Coded)]
pub enum AdminKeyError {
    #[error(
        "TIFFIN-API-093 the admin key is empty (--admin-key, TIFFIN_ADMIN_KEY or admin.key): \
         set one of at least {MIN_ADMIN_KEY_LEN} characters, or none to disable /admin"
    )]
    Empty,
    #[error(
        "TIFFIN-API-094 the admin key has {0} characters; at least {MIN_ADMIN_KEY_LEN} are needed"
    )]
    TooShort(usize),
}

/// Checks an admin key before a server uses it.
pub fn check_admin_key(key: &str) -> Result<(), AdminKeyError> {
    match key.chars().count() {
        0 => Err(AdminKeyError::Empty),
        n if n < MIN_ADMIN_KEY_LEN || key.trim().is_empty() => Err(AdminKeyError::TooShort(n)),
        _ => Ok(()),
    }
}

/// A request carrying the admin key.
pub struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let expected = state.cfg.admin_key_hash.as_deref().ok_or(ApiError::AdminKey)?;
        let given = parts
            .headers
            .get(ADMIN_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|given| !given.is_empty())
            .ok_or(ApiError::AdminKey)?;
        // Comparing hashes: equal-length strings that leak nothing about the key on mismatch.
        if hash_key(given) == expected { Ok(Admin) } else { Err(ApiError::AdminKey) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_blank_and_short_admin_keys_are_refused() {
        assert_eq!(check_admin_key(""), Err(AdminKeyError::Empty));
        assert_eq!(check_admin_key("short"), Err(AdminKeyError::TooShort(5)));
        assert_eq!(check_admin_key(&" ".repeat(20)), Err(AdminKeyError::TooShort(20)));
        assert!(check_admin_key("tfa_0123456789abcdef").is_ok());
        assert!(AdminKeyError::Empty.to_string().starts_with("TIFFIN-API-093"));
    }
}
