//! Why the broker skipped a request: a stable code per reason, and a message naming the setting
//! to change. Each code is written once, in the [`skip_codes!`] list below; docs/broker.md
//! ("Skip codes") lists them all (a test holds it to this list).

use std::fmt;

/// Defines [`SkipCode`] from one list of `Variant = "S-0NN", "message"`.
macro_rules! skip_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $message:expr; )+) => {
        /// Why a request was skipped. Each variant has a stable code ([`SkipCode::code`],
        /// "S-001"...) for logs and metrics, and its `Display` says what to change to take such
        /// requests.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum SkipCode {
            $( $(#[$doc])* $variant, )+
        }

        impl SkipCode {
            /// Every code, in code order.
            pub const ALL: &'static [SkipCode] = &[$( Self::$variant, )+];

            /// The stable code, "S-001"...
            pub fn code(self) -> &'static str {
                match self { $( Self::$variant => $code, )+ }
            }

            /// What happened and which setting to change (if any) to take such requests.
            pub fn message(self) -> &'static str {
                match self { $( Self::$variant => $message, )+ }
            }
        }
    };
}

skip_codes! {
    /// The request's expiry (lock deadline or final deadline) has passed.
    Expired = "S-001", "the request's deadline has passed";
    /// Fewer than `min_deadline` seconds are left before the expiry.
    DeadlineTooClose = "S-002",
        "too little time is left before the deadline; lower min_deadline to take such requests";
    /// The requestor is in `deny_requestor_addresses`.
    Denied = "S-003", "the requestor is in deny_requestor_addresses";
    /// `allow_client_addresses` is set and the requestor is not in it.
    NotAllowed = "S-004",
        "the requestor is not in allow_client_addresses; add it there or remove the list";
    /// The request's `lockCollateral` is above `max_collateral`.
    CollateralTooHigh = "S-005",
        "the request's lockCollateral is above max_collateral; raise max_collateral to lock it";
    /// The collateral deposited in the market is below the request's `lockCollateral`.
    InsufficientCollateralBalance = "S-006",
        "the collateral deposited in the market is below the request's lockCollateral; \
         deposit more collateral";
    /// The gas to lock and fulfil costs more than the request's `maxPrice`.
    GasCostAboveMaxPrice = "S-007",
        "the gas to lock and fulfil costs more than the request's maxPrice; check \
         lockin_gas_estimate and fulfill_gas_estimate, or wait for cheaper gas";
    /// The prover's native balance, less the gas reserved for committed orders, cannot pay.
    InsufficientGasBalance = "S-008",
        "the prover's native balance, less the gas reserved for committed orders, cannot pay \
         the gas; fund the prover's account";
    /// The input is larger than `max_file_size` (priority requestors bypass it).
    InputTooLarge = "S-009",
        "the input is larger than max_file_size; raise max_file_size or add the requestor to \
         priority_requestors";
    /// The request pays for fewer than 2 cycles.
    CycleLimitTooLow = "S-010",
        "the request pays for fewer than 2 cycles; lower min_mcycle_price (or \
         min_mcycle_price_collateral_token after the lock deadline), or raise max_mcycle_limit \
         or peak_prove_khz";
    /// The execution took more cycles than `max_mcycle_limit` allows.
    OverCycleLimit = "S-011",
        "the execution needs more cycles than max_mcycle_limit; raise max_mcycle_limit or add \
         the requestor to priority_requestors";
    /// The execution took fewer cycles than `min_mcycle_limit`.
    UnderMinCycles = "S-012",
        "the execution needs fewer cycles than min_mcycle_limit; lower min_mcycle_limit";
    /// The journal is larger than `max_journal_bytes`.
    JournalTooLarge = "S-013",
        "the journal is larger than max_journal_bytes; raise max_journal_bytes";
    /// The journal does not satisfy the request's predicate.
    PredicateFailed = "S-014",
        "the journal does not satisfy the request's predicate; the requestor's program or \
         predicate is wrong";
    /// The price never covers the cycles at `min_mcycle_price` plus gas before the lock deadline.
    Unprofitable = "S-015",
        "the price never covers the cycles at min_mcycle_price plus gas before the lock \
         deadline; lower min_mcycle_price to take it";
    /// The collateral reward does not cover the cycles at `min_mcycle_price_collateral_token`.
    UnprofitableCollateral = "S-016",
        "the collateral reward does not cover the cycles at min_mcycle_price_collateral_token; \
         lower it, or raise expected_probability_win_secondary_fulfillment";
    /// At the estimated speed the cycles cannot be proven, aggregated and submitted in time.
    ProverTooSlow = "S-017",
        "at the estimated proving speed (peak_prove_khz, else the measured one) the cycles \
         cannot be proven, aggregated and submitted before the deadline less \
         block_deadline_buffer_secs";
    /// The preflight execution failed (a guest error, or a cycle limit exceeded).
    PreflightFailed = "S-018", "the preflight execution failed";
    /// The request breaks the market's rules, so the market would refuse to lock it.
    InvalidRequest = "S-019",
        "the request breaks the market's rules, so the market would refuse to lock it";
    /// The image or input URL is not one the broker fetches (a local file, an internal address).
    UrlRefused = "S-020",
        "the image or input URL is refused: only http(s) URLs of public addresses, \
         tiffin-sample:// and what allowed_url_prefixes lists are fetched";
    /// Fetching the image or input failed or took longer than `fetch_timeout_secs`.
    FetchFailed = "S-021",
        "fetching the image or input failed or took longer than fetch_timeout_secs";
    /// No proving speed is known yet, so no deadline can be checked.
    SpeedUnknown = "S-022",
        "no proving speed is known yet: set peak_prove_khz, or wait for the calibration proof \
         the broker runs at start";
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
    fn codes_are_sequential_unique_and_documented() {
        let docs = include_str!("../../../../docs/broker.md");
        for (i, code) in SkipCode::ALL.iter().enumerate() {
            assert_eq!(code.code(), format!("S-{:03}", i + 1), "{code:?}");
            let row = format!("| `{}` |", code.code());
            assert!(docs.contains(&row), "{code:?} is missing from docs/broker.md");
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
