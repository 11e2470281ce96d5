//! Proof requests: ids, predicates, inputs, the price ramp, statuses and EIP-712 signing.

use crate::bindings::{Input, Offer, Predicate, ProofRequest, Requirements};
use crate::claim::journal_digest;
use crate::error::{MarketError, Result};
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::signers::{SignerSync, local::PrivateKeySigner};
use alloy::sol_types::{Eip712Domain, SolStruct, eip712_domain};

pub const PREDICATE_DIGEST_MATCH: u8 = 0;
pub const PREDICATE_PREFIX_MATCH: u8 = 1;
pub const PREDICATE_ANY: u8 = 2;
pub const INPUT_INLINE: u8 = 0;
pub const INPUT_URL: u8 = 1;

/// A request id: the requestor's address in the high bits, its own index in the low 32.
pub fn request_id(requestor: Address, index: u32) -> U256 {
    (U256::from_be_slice(requestor.as_slice()) << 32) | U256::from(index)
}

pub fn requestor_of(id: U256) -> Address {
    let shifted: U256 = id >> 32;
    Address::from_slice(&shifted.to_be_bytes::<32>()[12..])
}

impl Predicate {
    /// The journal's SHA-256 digest must equal `digest`.
    pub fn digest_match(digest: B256) -> Self {
        Self {
            predicateType: PREDICATE_DIGEST_MATCH,
            data: Bytes::copy_from_slice(digest.as_slice()),
        }
    }

    /// The journal must be exactly `journal`.
    pub fn journal_equals(journal: &[u8]) -> Self {
        Self::digest_match(journal_digest(journal))
    }

    /// The journal must start with `prefix`.
    pub fn prefix_match(prefix: impl Into<Bytes>) -> Self {
        Self { predicateType: PREDICATE_PREFIX_MATCH, data: prefix.into() }
    }

    /// Any journal will do.
    pub fn any() -> Self {
        Self { predicateType: PREDICATE_ANY, data: Bytes::new() }
    }
}

impl Input {
    pub fn inline(bytes: impl Into<Bytes>) -> Self {
        Self { inputType: INPUT_INLINE, data: bytes.into() }
    }

    pub fn url(url: &str) -> Self {
        Self { inputType: INPUT_URL, data: Bytes::copy_from_slice(url.as_bytes()) }
    }
}

impl Offer {
    /// Seconds since the epoch until which the request can be locked.
    pub fn lock_deadline(&self) -> u64 {
        self.biddingStart + u64::from(self.lockTimeout)
    }

    /// Seconds since the epoch until which the request can be fulfilled.
    pub fn deadline(&self) -> u64 {
        self.biddingStart + u64::from(self.timeout)
    }

    /// The price at time `t`, exactly as `ProofMarket.priceAt` computes it: minPrice until
    /// biddingStart, a linear ramp (rounded down) to maxPrice over rampUpPeriod, then maxPrice.
    pub fn price_at(&self, t: u64) -> U256 {
        if t <= self.biddingStart {
            return self.minPrice;
        }
        let elapsed = t - self.biddingStart;
        if elapsed >= u64::from(self.rampUpPeriod) {
            return self.maxPrice;
        }
        self.minPrice
            + (self.maxPrice - self.minPrice) * U256::from(elapsed) / U256::from(self.rampUpPeriod)
    }
}

impl ProofRequest {
    pub fn new(
        id: U256,
        image_id: B256,
        predicate: Predicate,
        image_url: &str,
        input: Input,
        offer: Offer,
    ) -> Self {
        Self {
            id,
            requirements: Requirements { imageId: image_id, predicate },
            imageUrl: image_url.to_string(),
            input,
            offer,
        }
    }

    pub fn requestor(&self) -> Address {
        requestor_of(self.id)
    }

    /// The EIP-712 hash the requestor signs for `market` on chain `chain_id`.
    pub fn signing_hash(&self, market: Address, chain_id: u64) -> B256 {
        self.eip712_signing_hash(&market_domain(market, chain_id))
    }

    /// The requestor's signature (65 bytes, r || s || v) that lets a prover lock this request
    /// without it having been submitted on-chain.
    pub fn sign(&self, signer: &PrivateKeySigner, market: Address, chain_id: u64) -> Result<Bytes> {
        let signature = signer
            .sign_hash_sync(&self.signing_hash(market, chain_id))
            .map_err(|e| MarketError::Signing(e.to_string()))?;
        Ok(Bytes::from(signature.as_bytes().to_vec()))
    }
}

/// The market's EIP-712 domain.
pub fn market_domain(market: Address, chain_id: u64) -> Eip712Domain {
    eip712_domain! {
        name: "TiffinProofMarket",
        version: "1",
        chain_id: chain_id,
        verifying_contract: market,
    }
}

/// Declares [`RequestStatus`] and its `ALL`, every status in the order of the contract's enum
/// (a status's `u8` is its index), from one list.
macro_rules! request_statuses {
    ($($(#[$doc:meta])* $status:ident,)+) => {
        /// A request's status as `ProofMarket.statusOf` reports it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum RequestStatus {
            $($(#[$doc])* $status,)+
        }

        impl RequestStatus {
            const ALL: &'static [RequestStatus] = &[$(RequestStatus::$status,)+];
        }
    };
}

request_statuses! {
    Unknown,
    /// Submitted on-chain, lockable.
    Open,
    /// Locked, the lock deadline has not passed.
    Locked,
    /// Locked, the lock deadline has passed but not the timeout: anyone may fulfil.
    LockExpired,
    /// Locked and not fulfilled by the timeout: the locker can be slashed.
    Slashable,
    /// Submitted on-chain, never locked, the lock deadline has passed: refundable.
    Expired,
    Fulfilled,
    Slashed,
    Refunded,
    /// Closed by its requestor before anyone locked it: the id can never be locked or reused.
    Cancelled,
}

impl TryFrom<u8> for RequestStatus {
    type Error = MarketError;

    fn try_from(value: u8) -> Result<Self> {
        Self::ALL.get(usize::from(value)).copied().ok_or(MarketError::UnknownStatus(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> Offer {
        Offer {
            minPrice: U256::from(100),
            maxPrice: U256::from(1100),
            biddingStart: 1_000,
            rampUpPeriod: 10,
            lockTimeout: 20,
            timeout: 30,
            lockCollateral: U256::from(5),
        }
    }

    #[test]
    fn price_ramps_linearly_then_holds() {
        let offer = offer();
        assert_eq!(offer.price_at(900), U256::from(100));
        assert_eq!(offer.price_at(1_000), U256::from(100));
        assert_eq!(offer.price_at(1_003), U256::from(400));
        assert_eq!(offer.price_at(1_010), U256::from(1100));
        assert_eq!(offer.price_at(1_019), U256::from(1100));
    }

    #[test]
    fn id_round_trips_the_requestor() {
        let requestor = Address::repeat_byte(0xab);
        let id = request_id(requestor, 7);
        assert_eq!(requestor_of(id), requestor);
        assert_eq!(id & U256::from(u32::MAX), U256::from(7));
    }

    #[test]
    fn status_codes_map_in_contract_order() {
        assert_eq!(RequestStatus::try_from(0).unwrap(), RequestStatus::Unknown);
        assert_eq!(RequestStatus::try_from(8).unwrap(), RequestStatus::Refunded);
        assert_eq!(RequestStatus::try_from(9).unwrap(), RequestStatus::Cancelled);
        assert!(matches!(RequestStatus::try_from(10), Err(MarketError::UnknownStatus(10))));
    }
}
