//! Serde for the amounts in `broker.toml`, read and written by [`tiffin_market::amount`]: a
//! native amount is `"0.00001 ETH"`, `"10 gwei"`, `"1000 wei"` (a bare number is ETH), a
//! collateral amount `"5 TFC"` or `"0.5TFC"` (a bare number is whole tokens). Both are written
//! back as the shortest exact string (`"0.00001 ETH"`, `"10 TFC"`), so a config round-trips.
//! Use with `#[serde(with = "amounts::native")]` and friends.

use alloy::primitives::U256;
use serde::{Deserializer, Serializer, de};
use std::fmt;
use tiffin_market::amount::{self, AmountError};

/// Reads an amount from the text of a TOML string, integer or float.
struct AmountVisitor {
    parse: fn(&str) -> Result<U256, AmountError>,
    expecting: &'static str,
}

impl de::Visitor<'_> for AmountVisitor {
    type Value = U256;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<U256, E> {
        (self.parse)(text).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<U256, E> {
        self.visit_str(&number.to_string())
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<U256, E> {
        self.visit_str(&number.to_string())
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<U256, E> {
        self.visit_str(&number.to_string())
    }
}

const NATIVE: AmountVisitor = AmountVisitor {
    parse: amount::config_native,
    expecting: "a native amount such as \"0.00001 ETH\", \"10 gwei\" or \"1000 wei\"",
};

const COLLATERAL: AmountVisitor = AmountVisitor {
    parse: amount::config_collateral,
    expecting: "a collateral amount such as \"5 TFC\" or \"0.5 TFC\"",
};

/// A native amount in wei.
pub mod native {
    use super::*;

    /// Writes `"0.00001 ETH"`.
    pub fn serialize<S: Serializer>(wei: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&amount::format_native(*wei))
    }

    /// Reads `"0.00001 ETH"`, `"10 gwei"`, `"1000 wei"` or a bare number of ETH.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
        deserializer.deserialize_any(NATIVE)
    }
}

/// An optional native amount in wei (absent from the file: `None`).
pub mod native_opt {
    use super::*;

    /// Writes `"0.00001 ETH"`, or nothing.
    pub fn serialize<S: Serializer>(wei: &Option<U256>, serializer: S) -> Result<S::Ok, S::Error> {
        match wei {
            Some(wei) => serializer.serialize_some(&amount::format_native(*wei)),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a present amount as [`native`] does.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<U256>, D::Error> {
        native::deserialize(deserializer).map(Some)
    }
}

/// A collateral amount in the token's base units.
pub mod collateral {
    use super::*;

    /// Writes `"10 TFC"`.
    pub fn serialize<S: Serializer>(units: &U256, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&amount::format_collateral(*units))
    }

    /// Reads `"5 TFC"`, `"0.5TFC"`, `"7 wei"` or a bare number of tokens.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<U256, D::Error> {
        deserializer.deserialize_any(COLLATERAL)
    }
}

/// An optional collateral amount in base units (absent from the file: `None`).
pub mod collateral_opt {
    use super::*;

    /// Writes `"10 TFC"`, or nothing.
    pub fn serialize<S: Serializer>(
        units: &Option<U256>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match units {
            Some(units) => serializer.serialize_some(&amount::format_collateral(*units)),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a present amount as [`collateral`] does.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<U256>, D::Error> {
        collateral::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Amounts {
        #[serde(with = "native")]
        price: U256,
        #[serde(with = "collateral")]
        stake: U256,
        #[serde(with = "native_opt", default, skip_serializing_if = "Option::is_none")]
        fees: Option<U256>,
    }

    fn read(text: &str) -> Result<Amounts, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn strings_integers_and_floats_are_read() {
        let amounts = read("price = \"10 gwei\"\nstake = 5\nfees = 0.00001").unwrap();
        assert_eq!(amounts.price, U256::from(10_000_000_000u64));
        assert_eq!(amounts.stake, U256::from(5_000_000_000_000_000_000u64));
        assert_eq!(amounts.fees, Some(U256::from(10_000_000_000_000u64)));
        assert_eq!(read("price = 1\nstake = \"0.5TFC\"").unwrap().fees, None);
    }

    #[test]
    fn amounts_are_written_readably_and_read_back() {
        let amounts =
            read("price = \"0.00001 ETH\"\nstake = \"10 TFC\"\nfees = \"1 wei\"").unwrap();
        let text = toml::to_string(&amounts).unwrap();
        assert!(text.contains("price = \"0.00001 ETH\""), "{text}");
        assert!(text.contains("stake = \"10 TFC\""), "{text}");
        assert_eq!(read(&text).unwrap(), amounts);
    }

    #[test]
    fn bad_amounts_are_refused_with_the_text() {
        for bad in ["price = \"-1 ETH\"\nstake = 1", "price = -1\nstake = 1", "price = true"] {
            assert!(read(bad).is_err(), "{bad:?} was accepted");
        }
        let err = read("price = \"1 ETH\"\nstake = \"1 ETH\"").unwrap_err().to_string();
        assert!(err.contains("bad amount \"1 ETH\""), "{err}");
    }
}
