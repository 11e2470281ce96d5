//! Authentication: `x-api-key` maps to a tenant through the hashed key table; admin routes
//! take a separate `x-admin-key`. Extractors, so a handler cannot forget to authenticate.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::tenants::{Tenant, hash_key};
use crate::{ApiError, AppState};

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
        match state.authenticate(key).await? {
            Some(t) => Ok(Auth(t)),
            None => Err(ApiError::InvalidKey),
        }
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
            .ok_or(ApiError::AdminKey)?;
        // Comparing hashes: equal-length strings that leak nothing about the key on mismatch.
        if hash_key(given) == expected { Ok(Admin) } else { Err(ApiError::AdminKey) }
    }
}
