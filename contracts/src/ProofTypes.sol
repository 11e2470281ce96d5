// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// The proof market's data types. docs/market.md describes every field.

// Journal predicate kinds (`Predicate.predicateType`).
uint8 constant PREDICATE_DIGEST_MATCH = 0; // data: the journal's 32-byte SHA-256 digest
uint8 constant PREDICATE_PREFIX_MATCH = 1; // data: bytes the journal must start with
uint8 constant PREDICATE_ANY = 2; // data: empty

// Input kinds (`Input.inputType`).
uint8 constant INPUT_INLINE = 0; // data: the input bytes
uint8 constant INPUT_URL = 1; // data: a UTF-8 URL

struct Predicate {
    uint8 predicateType;
    bytes data;
}

struct Requirements {
    bytes32 imageId;
    Predicate predicate;
}

struct Input {
    uint8 inputType;
    bytes data;
}

/// Prices are in wei, collateral in collateral-token units; periods in seconds from biddingStart.
struct Offer {
    uint256 minPrice;
    uint256 maxPrice;
    uint64 biddingStart;
    uint32 rampUpPeriod;
    uint32 lockTimeout;
    uint32 timeout;
    uint256 lockCollateral;
}

/// `id` = requestor address << 32 | index (an index the requestor picks; each id is used once).
struct ProofRequest {
    uint256 id;
    Requirements requirements;
    string imageUrl;
    Input input;
    Offer offer;
}

/// One fulfilment in a batch: the claim digest of (imageId, sha256(journal)) is a leaf of the
/// verified root, and `proof` lists its siblings from the leaf up.
struct Fulfillment {
    uint256 id;
    bytes journal;
    bytes32[] proof;
}

/// Stored state of a request.
enum RequestState {
    None,
    Submitted, // on-chain, price escrowed, waiting for a lock
    Locked, // a prover holds the lock; price and collateral escrowed
    Fulfilled,
    Slashed,
    Refunded, // never locked; the requestor took its escrow back
    Cancelled // closed by its requestor before any lock; the id is never usable again
}

/// What `statusOf` reports: the stored state refined by the current time.
enum RequestStatus {
    Unknown,
    Open, // submitted, lockable now or once bidding starts
    Locked, // locked, lock deadline not passed
    LockExpired, // locked, lock deadline passed, timeout not: anyone may fulfil
    Slashable, // locked, timeout passed, not fulfilled
    Expired, // submitted, never locked, lock deadline passed: refundable
    Fulfilled,
    Slashed,
    Refunded,
    Cancelled
}

/// What the market keeps per request id. Requirements are kept in a compact form: the image id,
/// the predicate kind and a 32-byte value (the digest to match, or keccak256 of the prefix).
struct RequestRecord {
    address locker;
    uint64 lockDeadline;
    RequestState state;
    uint8 predicateType;
    uint128 price; // native escrow: maxPrice while submitted, the locked price once locked
    uint128 collateral; // collateral escrowed by the locker
    uint64 deadline;
    uint32 prefixLength;
    bytes32 requestDigest; // EIP-712 hash of the ProofRequest
    bytes32 imageId;
    bytes32 predicateValue;
}
