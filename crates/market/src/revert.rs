//! Turning a contract call's failure into a [`MarketError`] that names the Solidity error.

use crate::bindings::{AttestationVerifier, CollateralToken, ProofMarket};
use crate::error::MarketError;
use alloy::sol_types::{GenericContractError, SolInterface};

/// Names the custom error in the revert data of `err` (the market's, the token's, the
/// verifier's, or a plain `Error(string)`/`Panic`), or reports the RPC failure.
pub(crate) fn from_contract_error(
    action: &'static str,
    err: alloy::contract::Error,
) -> MarketError {
    let Some(data) = err.as_revert_data() else {
        return MarketError::Rpc(format!("{action}: {err}"));
    };
    let decoded = decode::<ProofMarket::ProofMarketErrors>(&data)
        .or_else(|| decode::<AttestationVerifier::AttestationVerifierErrors>(&data))
        .or_else(|| decode::<CollateralToken::CollateralTokenErrors>(&data))
        .or_else(|| decode::<GenericContractError>(&data))
        .unwrap_or_else(|| format!("unknown(0x{data:x})"));
    let (name, detail) = split_variant(&decoded);
    MarketError::Reverted { action, name, detail }
}

fn decode<E: SolInterface + std::fmt::Debug>(data: &[u8]) -> Option<String> {
    E::abi_decode(data).ok().map(|e| format!("{e:?}"))
}

/// `AlreadyLocked(AlreadyLocked { id: 1, .. })` -> ("AlreadyLocked", " { id: 1, .. }").
fn split_variant(debug: &str) -> (String, String) {
    let Some((name, rest)) = debug.split_once('(') else {
        return (debug.to_string(), String::new());
    };
    let inner = rest.strip_suffix(')').unwrap_or(rest);
    let detail = inner.strip_prefix(name).unwrap_or(inner);
    let detail = if detail.is_empty() { String::new() } else { format!(":{detail}") };
    (name.to_string(), detail)
}

#[cfg(test)]
mod tests {
    use super::split_variant;

    #[test]
    fn variant_name_and_fields_are_split() {
        let (name, detail) = split_variant("AlreadyLocked(AlreadyLocked { id: 1 })");
        assert_eq!(name, "AlreadyLocked");
        assert_eq!(detail, ": { id: 1 }");
        assert_eq!(split_variant("NotLocked"), ("NotLocked".to_string(), String::new()));
    }
}
