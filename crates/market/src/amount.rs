//! Amounts of the chain's native currency (wei) and of the collateral token (TFC, 18 decimals),
//! read from text and shown as text. The one owner of amount parsing in Tiffin.
//!
//! Two dialects:
//! - the command line ([`native`], [`collateral`]): `0.01ether`, `5gwei`, `1000wei`; a bare
//!   number is wei for native amounts and whole tokens for collateral (`100` is 100 TFC,
//!   `1000wei` 1000 base units);
//! - configuration files ([`config_native`], [`config_collateral`]): `"0.00001 ETH"`,
//!   `"10 gwei"`, `"1000 wei"`, `"5 TFC"`, `"0.5TFC"`; units in any case, with or without a
//!   space; a bare number is ETH for native amounts and whole tokens for collateral.
//!
//! Either way more fractional digits than the unit has are refused rather than rounded.

use alloy::primitives::U256;
use alloy::primitives::utils::{format_units, parse_units};

/// Decimals of the collateral token.
pub const COLLATERAL_DECIMALS: u8 = 18;

/// Symbol of the collateral token.
pub const COLLATERAL_SYMBOL: &str = "TFC";

/// An amount that could not be read; `text` is what was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad amount {text:?}: {reason}")]
pub struct AmountError {
    /// The text as given.
    pub text: String,
    /// Why it was refused.
    pub reason: String,
}

/// The units a dialect knows, and how a bare number is read.
struct Dialect {
    /// Unit suffixes with their decimals, tried in order (`gwei` before `wei`).
    units: &'static [(&'static str, u8)],
    /// Decimals of a number without a unit.
    bare: u8,
    /// Whether units match in any case (`ETH`, `eth`).
    any_case: bool,
    /// The units, for error messages.
    hint: &'static str,
}

const CLI_NATIVE: Dialect = Dialect {
    units: &[("ether", 18), ("gwei", 9), ("wei", 0)],
    bare: 0,
    any_case: false,
    hint: "ether, gwei or wei",
};

const CLI_COLLATERAL: Dialect = Dialect {
    units: &[("wei", 0), ("tokens", COLLATERAL_DECIMALS)],
    bare: COLLATERAL_DECIMALS,
    any_case: false,
    hint: "tokens or wei",
};

const CONFIG_NATIVE: Dialect = Dialect {
    units: &[("ether", 18), ("eth", 18), ("gwei", 9), ("wei", 0)],
    bare: 18,
    any_case: true,
    hint: "ETH, gwei or wei",
};

const CONFIG_COLLATERAL: Dialect = Dialect {
    units: &[("tfc", COLLATERAL_DECIMALS), ("tokens", COLLATERAL_DECIMALS), ("wei", 0)],
    bare: COLLATERAL_DECIMALS,
    any_case: true,
    hint: "TFC or wei",
};

/// A native amount from the command line, in wei: `0.01ether`, `5gwei`, `1000wei`, `1000`
/// (bare is wei).
pub fn native(text: &str) -> Result<U256, AmountError> {
    read(text, &CLI_NATIVE)
}

/// A collateral amount from the command line, in the token's base units: `100` and
/// `100tokens` are 100 tokens, `0.5` half a token, `7wei` 7 base units.
pub fn collateral(text: &str) -> Result<U256, AmountError> {
    read(text, &CLI_COLLATERAL)
}

/// A native amount from a configuration file, in wei: `0.00001 ETH`, `10 gwei`, `1000 wei`,
/// `0.5ether`; a bare number is ETH.
pub fn config_native(text: &str) -> Result<U256, AmountError> {
    read(text, &CONFIG_NATIVE)
}

/// A collateral amount from a configuration file, in base units: `5 TFC`, `0.5TFC`, `7 wei`; a
/// bare number is whole tokens.
pub fn config_collateral(text: &str) -> Result<U256, AmountError> {
    read(text, &CONFIG_COLLATERAL)
}

/// Splits `text` into a number and a unit of `dialect` and reads it.
fn read(text: &str, dialect: &Dialect) -> Result<U256, AmountError> {
    let text = text.trim();
    for &(unit, decimals) in dialect.units {
        if let Some(number) = strip_unit(text, unit, dialect.any_case) {
            return parse(number, decimals, text, dialect.hint);
        }
    }
    parse(text, dialect.bare, text, dialect.hint)
}

/// `text` without the suffix `unit`, when it ends with it.
fn strip_unit<'a>(text: &'a str, unit: &str, any_case: bool) -> Option<&'a str> {
    let start = text.len().checked_sub(unit.len())?;
    let suffix = text.get(start..)?;
    let matches = if any_case { suffix.eq_ignore_ascii_case(unit) } else { suffix == unit };
    matches.then_some(&text[..start])
}

/// `number` in units of 10^-`decimals`; more fractional digits than that are refused (parse_units
/// would silently drop them). `units` names the dialect's units in the message.
fn parse(number: &str, decimals: u8, whole: &str, units: &str) -> Result<U256, AmountError> {
    let refuse = |reason: String| AmountError { text: whole.to_string(), reason };
    let number = number.trim();
    let digits_and_one_dot = number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1
        && number != ".";
    if number.is_empty() || !digits_and_one_dot {
        let reason = format!("expected a non-negative number with an optional unit ({units})");
        return Err(refuse(reason));
    }
    let fraction = number.split_once('.').map_or(0, |(_, f)| f.len());
    if fraction > usize::from(decimals) {
        return Err(refuse(format!("more than {decimals} decimal places")));
    }
    parse_units(number, decimals)
        .map(|value| value.get_absolute())
        .map_err(|e| refuse(e.to_string()))
}

/// Wei as ether with every decimal and the wei, e.g. `0.010000000000000000 ETH (10000000000000000
/// wei)`.
pub fn show_native(wei: U256) -> String {
    format!("{} ETH ({wei} wei)", format_units(wei, "ether").unwrap_or_default())
}

/// Base units as tokens with every decimal, e.g. `100.000000000000000000 TFC`.
pub fn show_collateral(units: U256) -> String {
    format!("{} {COLLATERAL_SYMBOL}", format_units(units, COLLATERAL_DECIMALS).unwrap_or_default())
}

/// Wei as the shortest exact ether amount, e.g. `0.00001 ETH`; [`config_native`] reads it back.
pub fn format_native(wei: U256) -> String {
    format!("{} ETH", shortest(wei, 18))
}

/// Base units as the shortest exact token amount, e.g. `10 TFC`; [`config_collateral`] reads it
/// back.
pub fn format_collateral(units: U256) -> String {
    format!("{} {COLLATERAL_SYMBOL}", shortest(units, COLLATERAL_DECIMALS))
}

/// `value` / 10^`decimals` without trailing zeros (`10`, `0.5`).
fn shortest(value: U256, decimals: u8) -> String {
    let full = format_units(value, decimals).unwrap_or_else(|_| value.to_string());
    match full.split_once('.') {
        Some((whole, fraction)) => match fraction.trim_end_matches('0') {
            "" => whole.to_string(),
            fraction => format!("{whole}.{fraction}"),
        },
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(n: u64) -> U256 {
        U256::from(n) * U256::from(10).pow(U256::from(COLLATERAL_DECIMALS))
    }

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

    #[test]
    fn cli_units_stay_case_sensitive() {
        assert!(native("1ETH").is_err());
        assert!(collateral("1TFC").is_err());
    }

    #[test]
    fn config_native_amounts_are_eth_unless_a_unit_says_otherwise() {
        let microether = U256::from(10_000_000_000_000u64);
        for text in ["0.00001 ETH", "0.00001ETH", "0.00001 eth", "0.00001 ether", "0.00001"] {
            assert_eq!(config_native(text).unwrap(), microether, "{text:?}");
        }
        assert_eq!(config_native("10 gwei").unwrap(), U256::from(10_000_000_000u64));
        assert_eq!(config_native("10 GWEI").unwrap(), U256::from(10_000_000_000u64));
        assert_eq!(config_native("1000 wei").unwrap(), U256::from(1000));
        assert_eq!(config_native(" 2 ").unwrap(), U256::from(2_000_000_000_000_000_000u64));
    }

    #[test]
    fn config_collateral_amounts_are_tokens_unless_wei() {
        assert_eq!(config_collateral("5 TFC").unwrap(), tokens(5));
        assert_eq!(config_collateral("0.5TFC").unwrap(), tokens(1) / U256::from(2));
        assert_eq!(config_collateral("5 tfc").unwrap(), tokens(5));
        assert_eq!(config_collateral("5").unwrap(), tokens(5));
        assert_eq!(config_collateral("7 wei").unwrap(), U256::from(7));
    }

    #[test]
    fn config_amounts_refuse_nonsense_and_other_units() {
        for bad in ["", "ETH", "-1 ETH", "1.2.3 ETH", "1 TFC", "0.1 wei", "1e-5", "1 ETH ETH"] {
            assert!(config_native(bad).is_err(), "{bad:?} was accepted");
        }
        for bad in ["", "TFC", "1 ETH", "1 gwei", "ten TFC", "0.0000000000000000001 TFC"] {
            assert!(config_collateral(bad).is_err(), "{bad:?} was accepted");
        }
        let err = config_native("lots").unwrap_err();
        assert_eq!(err.text, "lots");
        assert!(err.to_string().starts_with("bad amount \"lots\""), "{err}");
        assert!(err.to_string().contains("(ETH, gwei or wei)"), "{err}");
    }

    #[test]
    fn formatted_amounts_are_short_and_read_back_exactly() {
        let microether = config_native("0.00001 ETH").unwrap();
        assert_eq!(format_native(microether), "0.00001 ETH");
        assert_eq!(format_native(U256::ZERO), "0 ETH");
        assert_eq!(format_native(U256::from(1)), "0.000000000000000001 ETH");
        assert_eq!(format_collateral(tokens(10)), "10 TFC");
        assert_eq!(format_collateral(tokens(1) / U256::from(1000)), "0.001 TFC");
        for wei in [U256::from(1), U256::from(123_456_789u64), tokens(12345), U256::MAX] {
            assert_eq!(config_native(&format_native(wei)).unwrap(), wei);
            assert_eq!(config_collateral(&format_collateral(wei)).unwrap(), wei);
        }
    }
}
