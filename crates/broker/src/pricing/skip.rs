//! Why the broker skipped a request: a stable code per reason, and a message naming the setting
//! to change.

use std::fmt;

/// Why a request was skipped. Each variant has a stable code ([`SkipCode::code`], "S-001"...)
/// for logs and metrics, and its `Display` says what to change to take such requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipCode {
    /// S-001: the request's expiry (lock deadline or final deadline) has passed.
    Expired,
    /// S-002: fewer than `min_deadline` seconds are left before the expiry.
    DeadlineTooClose,
    /// S-003: the requestor is in `deny_requestor_addresses`.
    Denied,
    /// S-004: `allow_client_addresses` is set and the requestor is not in it.
    NotAllowed,
    /// S-005: the request's `lockCollateral` is above `max_collateral`.
    CollateralTooHigh,
    /// S-006: the collateral deposited in the market is below the request's `lockCollateral`.
    InsufficientCollateralBalance,
    /// S-007: the gas to lock and fulfil costs more than the request's `maxPrice`.
    GasCostAboveMaxPrice,
    /// S-008: the prover's native balance, less the gas reserved for committed orders, cannot
    /// pay the gas.
    InsufficientGasBalance,
    /// S-009: the input is larger than `max_file_size` (priority requestors bypass it).
    InputTooLarge,
    /// S-010: the request pays for fewer than 2 cycles (price, collateral reward, time or
    /// `max_mcycle_limit`).
    CycleLimitTooLow,
    /// S-011: the execution took more cycles than `max_mcycle_limit` allows (priority
    /// requestors bypass it).
    OverCycleLimit,
    /// S-012: the execution took fewer cycles than `min_mcycle_limit`.
    UnderMinCycles,
    /// S-013: the journal is larger than `max_journal_bytes`.
    JournalTooLarge,
    /// S-014: the journal does not satisfy the request's predicate.
    PredicateFailed,
    /// S-015: the price never covers the cycles at `min_mcycle_price` plus gas before the lock
    /// deadline.
    Unprofitable,
    /// S-016: the collateral reward does not cover the cycles at
    /// `min_mcycle_price_collateral_token`.
    UnprofitableCollateral,
    /// S-017: at `peak_prove_khz` the cycles cannot be proven before the expiry.
    ProverTooSlow,
    /// S-018: the preflight execution failed (a guest error, or a cycle limit exceeded); the
    /// caller reports it.
    PreflightFailed,
    /// S-019: the request breaks the market's rules, so the market would refuse to lock it.
    InvalidRequest,
}

impl SkipCode {
    /// Every code, in code order.
    pub const ALL: [SkipCode; 19] = [
        Self::Expired,
        Self::DeadlineTooClose,
        Self::Denied,
        Self::NotAllowed,
        Self::CollateralTooHigh,
        Self::InsufficientCollateralBalance,
        Self::GasCostAboveMaxPrice,
        Self::InsufficientGasBalance,
        Self::InputTooLarge,
        Self::CycleLimitTooLow,
        Self::OverCycleLimit,
        Self::UnderMinCycles,
        Self::JournalTooLarge,
        Self::PredicateFailed,
        Self::Unprofitable,
        Self::UnprofitableCollateral,
        Self::ProverTooSlow,
        Self::PreflightFailed,
        Self::InvalidRequest,
    ];

    /// The stable code, "S-001" to "S-019".
    pub fn code(self) -> &'static str {
        match self {
            Self::Expired => "S-001",
            Self::DeadlineTooClose => "S-002",
            Self::Denied => "S-003",
            Self::NotAllowed => "S-004",
            Self::CollateralTooHigh => "S-005",
            Self::InsufficientCollateralBalance => "S-006",
            Self::GasCostAboveMaxPrice => "S-007",
            Self::InsufficientGasBalance => "S-008",
            Self::InputTooLarge => "S-009",
            Self::CycleLimitTooLow => "S-010",
            Self::OverCycleLimit => "S-011",
            Self::UnderMinCycles => "S-012",
            Self::JournalTooLarge => "S-013",
            Self::PredicateFailed => "S-014",
            Self::Unprofitable => "S-015",
            Self::UnprofitableCollateral => "S-016",
            Self::ProverTooSlow => "S-017",
            Self::PreflightFailed => "S-018",
            Self::InvalidRequest => "S-019",
        }
    }

    /// What happened and which setting to change (if any) to take such requests.
    pub fn message(self) -> &'static str {
        match self {
            Self::Expired => "the request's deadline has passed",
            Self::DeadlineTooClose => {
                "too little time is left before the deadline; lower min_deadline to take such \
                 requests"
            }
            Self::Denied => "the requestor is in deny_requestor_addresses",
            Self::NotAllowed => {
                "the requestor is not in allow_client_addresses; add it there or remove the list"
            }
            Self::CollateralTooHigh => {
                "the request's lockCollateral is above max_collateral; raise max_collateral to \
                 lock it"
            }
            Self::InsufficientCollateralBalance => {
                "the collateral deposited in the market is below the request's lockCollateral; \
                 deposit more collateral"
            }
            Self::GasCostAboveMaxPrice => {
                "the gas to lock and fulfil costs more than the request's maxPrice; check \
                 lockin_gas_estimate and fulfill_gas_estimate, or wait for cheaper gas"
            }
            Self::InsufficientGasBalance => {
                "the prover's native balance, less the gas reserved for committed orders, cannot \
                 pay the gas; fund the prover's account"
            }
            Self::InputTooLarge => {
                "the input is larger than max_file_size; raise max_file_size or add the requestor \
                 to priority_requestors"
            }
            Self::CycleLimitTooLow => {
                "the request pays for fewer than 2 cycles; lower min_mcycle_price (or \
                 min_mcycle_price_collateral_token after the lock deadline), or raise \
                 max_mcycle_limit or peak_prove_khz"
            }
            Self::OverCycleLimit => {
                "the execution needs more cycles than max_mcycle_limit; raise max_mcycle_limit or \
                 add the requestor to priority_requestors"
            }
            Self::UnderMinCycles => {
                "the execution needs fewer cycles than min_mcycle_limit; lower min_mcycle_limit"
            }
            Self::JournalTooLarge => {
                "the journal is larger than max_journal_bytes; raise max_journal_bytes"
            }
            Self::PredicateFailed => {
                "the journal does not satisfy the request's predicate; the requestor's program or \
                 predicate is wrong"
            }
            Self::Unprofitable => {
                "the price never covers the cycles at min_mcycle_price plus gas before the lock \
                 deadline; lower min_mcycle_price to take it"
            }
            Self::UnprofitableCollateral => {
                "the collateral reward does not cover the cycles at \
                 min_mcycle_price_collateral_token; lower it, or raise \
                 expected_probability_win_secondary_fulfillment"
            }
            Self::ProverTooSlow => {
                "at peak_prove_khz the cycles cannot be proven before the deadline; raise \
                 peak_prove_khz if the cluster is faster"
            }
            Self::PreflightFailed => "the preflight execution failed",
            Self::InvalidRequest => {
                "the request breaks the market's rules, so the market would refuse to lock it"
            }
        }
    }
}

impl fmt::Display for SkipCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

/// A skipped request: the reason's code and the numbers behind it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({detail})")]
pub struct Skip {
    /// Why.
    pub code: SkipCode,
    /// The values that triggered the skip, for the log.
    pub detail: String,
}

impl Skip {
    /// A skip for `code` with `detail`.
    pub fn new(code: SkipCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into() }
    }

    /// The skip the caller reports when the preflight execution fails.
    pub fn preflight_failed(error: impl fmt::Display) -> Self {
        Self::new(SkipCode::PreflightFailed, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_sequential_and_unique() {
        for (i, code) in SkipCode::ALL.iter().enumerate() {
            assert_eq!(code.code(), format!("S-{:03}", i + 1), "{code:?}");
        }
        let messages: HashSet<_> = SkipCode::ALL.iter().map(|c| c.message()).collect();
        assert_eq!(messages.len(), SkipCode::ALL.len());
    }

    #[test]
    fn display_names_the_code_and_the_setting() {
        let skip = Skip::new(SkipCode::InputTooLarge, "input 2000 bytes > 1000");
        let text = skip.to_string();
        assert!(text.starts_with("S-009: "), "{text}");
        assert!(text.contains("max_file_size"), "{text}");
        assert!(text.ends_with("(input 2000 bytes > 1000)"), "{text}");
        let failed = Skip::preflight_failed("guest panicked");
        assert_eq!(failed.code, SkipCode::PreflightFailed);
        assert_eq!(failed.detail, "guest panicked");
    }
}
