//! The broker's errors, each with a stable code (`TIFFIN-BROKER-0xx`; 001-009 are the
//! configuration's, in [`crate::config`]).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("TIFFIN-BROKER-010: order database: {0}")]
    Db(String),
    #[error("TIFFIN-BROKER-011: the cluster: {0}")]
    Cluster(String),
    #[error("TIFFIN-BROKER-012: the chain: {0}")]
    Chain(String),
    #[error("TIFFIN-BROKER-013: fetching {what}: {detail}")]
    Fetch { what: &'static str, detail: String },
    #[error("TIFFIN-BROKER-014: {what} is larger than {limit} bytes (market.max_file_size)")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("TIFFIN-BROKER-015: the verifier service: {0}")]
    Verifier(String),
    #[error("TIFFIN-BROKER-016: proving failed: {0}")]
    Proving(String),
    #[error("TIFFIN-BROKER-017: aggregating a batch: {0}")]
    Aggregation(String),
    #[error(
        "TIFFIN-BROKER-018: {stage} failed {failures} times in a row \
         (market.max_critical_task_retries); last error: {last}"
    )]
    StageGaveUp { stage: &'static str, failures: u32, last: String },
    #[error(
        "TIFFIN-BROKER-019: {what} URL refused: {reason} (requests may name http(s) URLs of \
         public addresses, tiffin-sample:// or what market.allowed_url_prefixes lists)"
    )]
    UrlRefused { what: &'static str, reason: String },
    #[error("TIFFIN-BROKER-020: the order's input is not the one priced: {0}")]
    InputMismatch(String),
    #[error("TIFFIN-BROKER-021: {0}")]
    Lost(String),
    #[error("TIFFIN-BROKER-022: the proof's journal does not satisfy the request's predicate")]
    PredicateFailed,
}

impl BrokerError {
    /// Whether retrying cannot help (the order is lost, or its proof can never be accepted).
    pub fn is_final(&self) -> bool {
        matches!(self, BrokerError::Lost(_) | BrokerError::PredicateFailed)
    }
}

impl BrokerError {
    /// The stable code, e.g. `TIFFIN-BROKER-011`.
    pub fn code(&self) -> &'static str {
        match self {
            BrokerError::Db(_) => "TIFFIN-BROKER-010",
            BrokerError::Cluster(_) => "TIFFIN-BROKER-011",
            BrokerError::Chain(_) => "TIFFIN-BROKER-012",
            BrokerError::Fetch { .. } => "TIFFIN-BROKER-013",
            BrokerError::TooLarge { .. } => "TIFFIN-BROKER-014",
            BrokerError::Verifier(_) => "TIFFIN-BROKER-015",
            BrokerError::Proving(_) => "TIFFIN-BROKER-016",
            BrokerError::Aggregation(_) => "TIFFIN-BROKER-017",
            BrokerError::StageGaveUp { .. } => "TIFFIN-BROKER-018",
            BrokerError::UrlRefused { .. } => "TIFFIN-BROKER-019",
            BrokerError::InputMismatch(_) => "TIFFIN-BROKER-020",
            BrokerError::Lost(_) => "TIFFIN-BROKER-021",
            BrokerError::PredicateFailed => "TIFFIN-BROKER-022",
        }
    }
}

impl From<sqlx::Error> for BrokerError {
    fn from(e: sqlx::Error) -> Self {
        BrokerError::Db(e.to_string())
    }
}

impl From<tiffin_market::MarketError> for BrokerError {
    fn from(e: tiffin_market::MarketError) -> Self {
        BrokerError::Chain(e.to_string())
    }
}

pub type Result<T, E = BrokerError> = std::result::Result<T, E>;

/// `e` for an error message: its text, or the coded TLS refusal (`TIFFIN-TLS-005`) when a
/// server's certificate was refused somewhere in its chain (reqwest's own text hides that).
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    match tiffin_tls::untrusted_certificate(e) {
        Some(tls) => format!("{e}: {tls}"),
        None => e.to_string(),
    }
}
