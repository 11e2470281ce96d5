//! The crate's errors, each with a stable code first in its message.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TIFFIN-TLS-001: cannot read {what} {path}: {reason}")]
    Read { what: &'static str, path: String, reason: String },
    #[error("TIFFIN-TLS-002: {path}: {reason}")]
    Certificate { path: String, reason: String },
    #[error("TIFFIN-TLS-003: {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("TIFFIN-TLS-004: give both --tls-cert and --tls-key (or neither, for plain HTTP)")]
    Pair,
    #[error(
        "TIFFIN-TLS-005: the server's TLS certificate was refused ({detail}): it is not signed by \
         the CA of --ca-file (TIFFIN_CA_FILE), or not made out to this host name"
    )]
    Untrusted { detail: String },
}

impl TlsError {
    /// The stable code (`TIFFIN-TLS-NNN`).
    pub fn code(&self) -> &'static str {
        match self {
            TlsError::Read { .. } => "TIFFIN-TLS-001",
            TlsError::Certificate { .. } => "TIFFIN-TLS-002",
            TlsError::Key { .. } => "TIFFIN-TLS-003",
            TlsError::Pair => "TIFFIN-TLS-004",
            TlsError::Untrusted { .. } => "TIFFIN-TLS-005",
        }
    }

    pub(crate) fn read(what: &'static str, path: &Path, e: impl std::fmt::Display) -> Self {
        TlsError::Read { what, path: path.display().to_string(), reason: e.to_string() }
    }
}
