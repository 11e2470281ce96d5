//! Errors of the verifier service, each with a stable code `TIFFIN-VERIFIER-0xx`.

/// Why a receipt was not attested.
#[derive(Debug, thiserror::Error, tiffin_codes::Coded)]
pub enum VerifierError {
    #[error("TIFFIN-VERIFIER-001: the body is not a RISC Zero receipt: {0}")]
    NotAReceipt(String),
    #[error("TIFFIN-VERIFIER-002: the receipt does not verify: {0}")]
    Rejected(String),
    #[error("TIFFIN-VERIFIER-003: the receipt is over the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("TIFFIN-VERIFIER-008: the receipt did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    #[error("TIFFIN-VERIFIER-004: bad image id: {0}")]
    BadImageId(String),
    #[error("TIFFIN-VERIFIER-005: a set-builder journal is a 32-byte root, this one has {0} bytes")]
    NotARoot(usize),
    #[error("TIFFIN-VERIFIER-006: signing failed: {0}")]
    Signing(String),
    #[error("TIFFIN-VERIFIER-007: the service is shutting down")]
    Unavailable,
    #[error(
        "TIFFIN-VERIFIER-009: busy: every verification slot is taken and the wait queue is full or \
         did not move within {0:?}; retry later"
    )]
    Busy(std::time::Duration),
    #[error("TIFFIN-VERIFIER-010: missing or wrong bearer token")]
    Unauthorized,
    #[error("TIFFIN-VERIFIER-011: cannot use secret file {path}: {reason}")]
    SecretFile { path: String, reason: String },
    #[error(
        "TIFFIN-VERIFIER-012: secret file {path} is readable by group or others (mode {mode:o}); \
         chmod 600 it"
    )]
    SecretFileOpen { path: String, mode: u32 },
    #[error("TIFFIN-VERIFIER-013: bad prover address (the `prover` query parameter): {0}")]
    BadProver(String),
}

impl VerifierError {
    /// The HTTP status the service answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotAReceipt(_) | Self::BadImageId(_) | Self::NotARoot(_) | Self::BadProver(_) => {
                400
            }
            Self::Rejected(_) => 422,
            Self::TooLarge { .. } => 413,
            Self::Signing(_) | Self::SecretFile { .. } | Self::SecretFileOpen { .. } => 500,
            Self::Unavailable | Self::Busy(_) => 503,
            Self::BodyTimeout(_) => 408,
            Self::Unauthorized => 401,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::VerifierError;

    /// Every code (the derive lists them from the messages) is listed in docs/market.md, where
    /// operators look codes up.
    #[test]
    fn every_code_is_documented() {
        let docs = include_str!("../../../docs/market.md");
        assert!(VerifierError::CODES.len() >= 13, "{:?}", VerifierError::CODES);
        for code in VerifierError::CODES {
            let short = code.trim_start_matches("TIFFIN-VERIFIER");
            assert!(
                docs.contains(code) || docs.contains(&format!("`{short}`")),
                "{code} is missing from docs/market.md"
            );
        }
    }
}
