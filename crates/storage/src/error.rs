//! Errors of the storage crate.
//!
//! Every variant carries a stable code (`TIFFIN-STORAGE-0xx`) at the start of its message so
//! operators can search logs and docs, and a classification ([`Error::is_transient`]) so the agent
//! knows whether retrying a task can help (a lost connection) or not (a missing input, a bad
//! config, wrong credentials).

use std::time::Duration;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of the hot or cold store.
#[derive(Debug, thiserror::Error, tiffin_codes::Coded)]
#[non_exhaustive]
pub enum Error {
    /// A store config string (`--store`, `--hot-store`, `--redis-url`, a budget) is malformed.
    #[error(
        "TIFFIN-STORAGE-001: invalid {what} {value:?}: {reason}; fix the flag or environment variable"
    )]
    InvalidConfig {
        /// Which setting, e.g. "cold store URL".
        what: &'static str,
        /// The offending value, with any secret removed.
        value: String,
        /// What is wrong with it and what is expected.
        reason: String,
    },

    /// A blob key is not usable (empty, `..`, empty segments, control characters…).
    #[error(
        "TIFFIN-STORAGE-002: invalid blob key {key:?}: {reason}; keys are '/'-separated \
         non-empty segments such as 'jobs/<job>/receipt'"
    )]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The blob does not exist (never written, deleted, or garbage-collected).
    #[error(
        "TIFFIN-STORAGE-010: blob {key:?} not found in the {store} store; it was never written, \
         or was deleted or garbage-collected"
    )]
    NotFound {
        /// Which store: "cold" or "hot".
        store: &'static str,
        /// The missing key.
        key: String,
    },

    /// The cold store's backend (S3 or the local object store) failed.
    #[error(
        "TIFFIN-STORAGE-011: cold store {op} of {key:?} failed: {source}; check that the object \
         store is reachable and has space"
    )]
    Cold {
        /// The operation, e.g. "put".
        op: &'static str,
        /// The key or prefix involved.
        key: String,
        /// The backend error.
        #[source]
        source: object_store::Error,
    },

    /// The object store rejected the credentials (wrong access key or secret, or no permission).
    #[error(
        "TIFFIN-STORAGE-012: cold store {op} of {key:?} was refused: {source}; check the access \
         key and secret (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the store URL's \
         access_key_id / secret_access_key) and the bucket's permissions"
    )]
    AccessDenied {
        /// The operation, e.g. "put".
        op: &'static str,
        /// The key or prefix involved.
        key: String,
        /// The backend error.
        #[source]
        source: object_store::Error,
    },

    /// A local file operation failed (hot store directory, upload source, download target).
    #[error(
        "TIFFIN-STORAGE-013: {op} {path:?} failed: {source}; check the path, permissions and free disk space"
    )]
    Io {
        /// What was being done, e.g. "write hot blob".
        op: &'static str,
        /// The file or directory.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Talking to Redis failed (connection lost, server error).
    #[error(
        "TIFFIN-STORAGE-020: redis {op} failed: {source}; check that Redis at {url} is up and reachable"
    )]
    Redis {
        /// The operation, e.g. "put".
        op: &'static str,
        /// The server, without password.
        url: String,
        /// The client error.
        #[source]
        source: redis::RedisError,
    },

    /// Redis is configured to evict keys, which would silently drop live segments.
    #[error(
        "TIFFIN-STORAGE-021: Redis at {url} has maxmemory-policy {policy:?}, which evicts keys \
         and would silently drop live segments; set `maxmemory-policy noeviction` (redis.conf or \
         `CONFIG SET maxmemory-policy noeviction`) and give Tiffin a hot-store budget instead"
    )]
    RedisEvictingPolicy {
        /// The server, without password.
        url: String,
        /// The configured policy.
        policy: String,
    },

    /// Redis did not let us read its eviction policy, so it cannot be verified safe.
    #[error(
        "TIFFIN-STORAGE-022: could not read maxmemory-policy from Redis at {url}: {reason}; \
         Tiffin refuses to use a Redis whose eviction policy it cannot verify is noeviction \
         (allow the CONFIG command for Tiffin's user)"
    )]
    RedisPolicyUnknown {
        /// The server, without password.
        url: String,
        /// Why the policy could not be read.
        reason: String,
    },

    /// There was no room in the hot store within the time allowed.
    #[error(
        "TIFFIN-STORAGE-030: no room for {needed} bytes in the hot store after {waited:?} \
         (usage {usage} of budget {budget} bytes); provers may be stalled, or the budget is too \
         small for the cluster"
    )]
    NoRoom {
        /// Bytes asked for.
        needed: u64,
        /// Usage when giving up.
        usage: u64,
        /// The budget.
        budget: u64,
        /// How long we waited.
        waited: Duration,
    },

    /// A single blob is larger than the hot store's whole budget, so waiting can never help.
    #[error(
        "TIFFIN-STORAGE-031: a blob of {needed} bytes can never fit the hot-store budget of \
         {budget} bytes; raise --hot-budget-bytes or lower the segment size (po2)"
    )]
    LargerThanBudget {
        /// Bytes asked for.
        needed: u64,
        /// The budget.
        budget: u64,
    },

    /// Test support could not start or reach a throwaway server.
    #[error("TIFFIN-STORAGE-090: test server: {0}")]
    TestServer(String),
}

impl Error {
    /// Whether retrying the same operation later may succeed: lost connections, backend I/O
    /// failures and a full hot store are transient; bad config, bad keys, missing blobs, refused
    /// credentials, an evicting Redis and a blob larger than the budget are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Cold { source, .. } => !matches!(
                source,
                object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::NotImplemented
                    | object_store::Error::UnknownConfigurationKey { .. }
            ),
            Error::Io { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::InvalidInput
            ),
            Error::Redis { .. } | Error::NoRoom { .. } => true,
            Error::InvalidConfig { .. }
            | Error::InvalidKey { .. }
            | Error::NotFound { .. }
            | Error::AccessDenied { .. }
            | Error::RedisEvictingPolicy { .. }
            | Error::RedisPolicyUnknown { .. }
            | Error::LargerThanBudget { .. }
            | Error::TestServer(_) => false,
        }
    }

    /// Whether the disk (or object store) behind the store is full: an `ENOSPC` anywhere in
    /// the error's chain, or the backend's message for it (object stores pass errors on as
    /// text).
    pub fn is_storage_full(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && (io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28))
            {
                return true;
            }
            cause = e.source();
        }
        let text = self.to_string();
        ["No space left on device", "XMinioStorageFull", "QuotaExceeded", "OOM command not allowed"]
            .iter()
            .any(|needle| text.contains(needle))
    }

    /// The opposite of [`Error::is_transient`]: retrying cannot help.
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }

    /// Whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        Error::Io { op, path: path.as_ref().display().to_string(), source }
    }

    pub(crate) fn config(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidConfig { what, value: value.into(), reason: reason.into() }
    }

    /// Maps an object_store error of operation `op` on `key` to ours.
    pub(crate) fn cold(op: &'static str, key: &str, source: object_store::Error) -> Self {
        match source {
            // On reads a 404 is a missing blob; on writes and lists it means a missing bucket.
            object_store::Error::NotFound { .. } if matches!(op, "get" | "head" | "delete") => {
                Error::NotFound { store: "cold", key: key.to_string() }
            }
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                Error::AccessDenied { op, key: key.to_string(), source }
            }
            // Some object_store paths (e.g. list) wrap the HTTP status in a generic error;
            // recognise refused credentials from the S3 error they carry.
            source if is_auth_failure(&source) => {
                Error::AccessDenied { op, key: key.to_string(), source }
            }
            source => Error::Cold { op, key: key.to_string(), source },
        }
    }
}

fn is_auth_failure(e: &object_store::Error) -> bool {
    let text = e.to_string();
    [
        "403 Forbidden",
        "401 Unauthorized",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "<Code>AccessDenied<",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_starts_with_code() {
        let errors = [
            Error::config("cold store URL", "x", "y"),
            Error::NotFound { store: "hot", key: "k".into() },
            Error::RedisEvictingPolicy { url: "redis://h".into(), policy: "allkeys-lru".into() },
            Error::LargerThanBudget { needed: 2, budget: 1 },
            Error::NoRoom { needed: 1, usage: 1, budget: 1, waited: Duration::from_millis(1) },
        ];
        for e in errors {
            assert!(e.to_string().starts_with(e.code()), "{e}");
        }
    }

    #[test]
    fn classification() {
        assert!(
            Error::NoRoom { needed: 1, usage: 1, budget: 1, waited: Duration::ZERO }.is_transient()
        );
        assert!(Error::NotFound { store: "cold", key: "k".into() }.is_permanent());
        assert!(Error::LargerThanBudget { needed: 2, budget: 1 }.is_permanent());
        assert!(Error::io("read", "/x", std::io::Error::other("boom")).is_transient());
    }

    #[test]
    fn a_full_disk_is_recognised_through_the_chain() {
        let enospc = std::io::Error::from_raw_os_error(28);
        assert!(Error::io("write", "/x", enospc).is_storage_full());
        let wrapped = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from_raw_os_error(28)),
        };
        let cold = Error::Cold { op: "put", key: "k".into(), source: wrapped };
        assert!(cold.is_storage_full(), "{cold}");
        assert!(!Error::io("write", "/x", std::io::Error::other("boom")).is_storage_full());
        assert!(!Error::NotFound { store: "cold", key: "k".into() }.is_storage_full());
    }
}
