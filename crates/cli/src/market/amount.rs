//! Amounts on the command line: native currency with a unit (`0.01ether`, `5gwei`, `1000wei`,
//! a bare number is wei) and collateral tokens (18 decimals: `100` is 100 tokens, `0.5` half a
//! token, `1000wei` base units).

use alloy::primitives::U256;
use alloy::primitives::utils::{format_units, parse_units};
use anyhow::{Result, bail};

const TOKEN_DECIMALS: u8 = 18;

/// A native amount in wei.
pub fn native(text: &str) -> Result<U256> {
    let text = text.trim();
    for (unit, decimals) in [("ether", 18), ("gwei", 9), ("wei", 0)] {
        if let Some(number) = text.strip_suffix(unit) {
            return parse(number, decimals, text);
        }
    }
    parse(text, 0, text)
}

/// A collateral amount in the token's base units.
pub fn collateral(text: &str) -> Result<U256> {
    let text = text.trim();
    match text.strip_suffix("wei") {
        Some(number) => parse(number, 0, text),
        None => parse(text.strip_suffix("tokens").unwrap_or(text), TOKEN_DECIMALS, text),
    }
}

/// `number` in units of 10^-`decimals`; more fractional digits than that are refused (parse_units
/// would silently drop them).
fn parse(number: &str, decimals: u8, whole: &str) -> Result<U256> {
    let number = number.trim();
    let digits_and_one_dot = number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1
        && number != ".";
    if number.is_empty() || !digits_and_one_dot {
        bail!("bad amount {whole:?}: expected a non-negative number with an optional unit");
    }
    let fraction = number.split_once('.').map_or(0, |(_, f)| f.len());
    if fraction > usize::from(decimals) {
        bail!("bad amount {whole:?}: more than {decimals} decimal places");
    }
    match parse_units(number, decimals) {
        Ok(value) => Ok(value.get_absolute()),
        Err(e) => bail!("bad amount {whole:?}: {e}"),
    }
}

/// Wei as ether, e.g. `0.01 ETH`.
pub fn show_native(wei: U256) -> String {
    format!("{} ETH ({wei} wei)", format_units(wei, "ether").unwrap_or_default())
}

/// Base units as tokens, e.g. `100.0 TFC`.
pub fn show_collateral(units: U256) -> String {
    format!("{} TFC", format_units(units, TOKEN_DECIMALS).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_amounts_take_units_and_default_to_wei() {
        assert_eq!(native("0.01ether").unwrap(), U256::from(10_000_000_000_000_000u64));
        assert_eq!(native("5gwei").unwrap(), U256::from(5_000_000_000u64));
        assert_eq!(native("1000wei").unwrap(), U256::from(1000));
        assert_eq!(native("1000").unwrap(), U256::from(1000));
    }

    #[test]
    fn collateral_amounts_are_whole_tokens_unless_wei() {
        let token = U256::from(10).pow(U256::from(18));
        assert_eq!(collateral("100").unwrap(), token * U256::from(100));
        assert_eq!(collateral("0.5").unwrap(), token / U256::from(2));
        assert_eq!(collateral("7wei").unwrap(), U256::from(7));
    }

    #[test]
    fn nonsense_is_refused_with_the_text() {
        for bad in ["", "-1", "1.2.3", "ten", "0.1wei", "1e18", "1 ether x"] {
            let err = native(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("bad amount"), "{bad:?} gave {err:?}");
        }
        assert!(collateral("0.0000000000000000001").is_err(), "more decimals than the token has");
    }

    #[test]
    fn amounts_show_in_whole_units() {
        assert_eq!(show_collateral(collateral("2.5").unwrap()), "2.500000000000000000 TFC");
        assert!(
            show_native(U256::from(10).pow(U256::from(18))).starts_with("1.000000000000000000 ETH")
        );
    }
}
