//! Errors of the verifier service, each with a stable code `TIFFIN-VERIFIER-0xx`.

/// Why a receipt was not attested.
#[derive(Debug, thiserror::Error)]
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
}

impl VerifierError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAReceipt(_) => "TIFFIN-VERIFIER-001",
            Self::Rejected(_) => "TIFFIN-VERIFIER-002",
            Self::TooLarge { .. } => "TIFFIN-VERIFIER-003",
            Self::BadImageId(_) => "TIFFIN-VERIFIER-004",
            Self::NotARoot(_) => "TIFFIN-VERIFIER-005",
            Self::Signing(_) => "TIFFIN-VERIFIER-006",
            Self::Unavailable => "TIFFIN-VERIFIER-007",
            Self::BodyTimeout(_) => "TIFFIN-VERIFIER-008",
        }
    }

    /// The HTTP status the service answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotAReceipt(_) | Self::BadImageId(_) | Self::NotARoot(_) => 400,
            Self::Rejected(_) => 422,
            Self::TooLarge { .. } => 413,
            Self::Signing(_) => 500,
            Self::Unavailable => 503,
            Self::BodyTimeout(_) => 408,
        }
    }
}
