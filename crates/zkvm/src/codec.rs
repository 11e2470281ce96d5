//! Bytes in and out for every artefact that travels between agents (segments, segment and
//! succinct receipts, final receipts). bincode 1 is what Bonsai clients decode receipts with,
//! so one format serves both the wire and the stores.

use serde::{Serialize, de::DeserializeOwned};

use crate::ZkvmError;

/// Serialises an artefact. Infallible for risc0's types (they are plain data).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serialize(value).expect("risc0 artefacts always serialise")
}

/// Deserialises an artefact; `what` names it in the error (e.g. "segment").
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, ZkvmError> {
    bincode::deserialize(bytes).map_err(|e| ZkvmError::Corrupt { what, detail: e.to_string() })
}
