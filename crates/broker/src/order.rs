//! An order: one request the broker has looked at, and where it stands.
//!
//! Only the lock and everything after it must survive a crash (a locked request left unproven
//! costs collateral), so the database is the source of truth from `Locking` on. Skipped
//! requests are recorded too, with their code, so operators (and tests) can see why.

use alloy::primitives::{B256, Bytes, U256};
use alloy::sol_types::SolValue;
use serde::{Deserialize, Serialize};
use tiffin_market::ProofRequest;

use crate::pricing::FulfillmentType;

/// Where an order stands. The names are stored in the database: do not rename them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderState {
    /// The lock transaction is being sent (or its outcome is not known yet).
    Locking,
    /// Locked (or, for a race, committed to) and waiting for the cluster.
    PendingProving,
    /// A proving session runs on the cluster (`session_id`).
    Proving,
    /// Proven; waiting to be fulfilled on-chain (alone or in a batch).
    Proved,
    /// The fulfilment transaction is being sent.
    Fulfilling,
    /// Fulfilled on-chain: paid.
    Done,
    /// Given up, with a reason (`error`).
    Failed,
    /// Never committed to, with a skip code (`error`).
    Skipped,
}

impl OrderState {
    /// The states in which the broker holds a commitment it must see through.
    pub const COMMITTED: [OrderState; 5] = [
        OrderState::Locking,
        OrderState::PendingProving,
        OrderState::Proving,
        OrderState::Proved,
        OrderState::Fulfilling,
    ];

    /// Every state.
    pub const ALL: [OrderState; 8] = [
        OrderState::Locking,
        OrderState::PendingProving,
        OrderState::Proving,
        OrderState::Proved,
        OrderState::Fulfilling,
        OrderState::Done,
        OrderState::Failed,
        OrderState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Locking => "Locking",
            OrderState::PendingProving => "PendingProving",
            OrderState::Proving => "Proving",
            OrderState::Proved => "Proved",
            OrderState::Fulfilling => "Fulfilling",
            OrderState::Done => "Done",
            OrderState::Failed => "Failed",
            OrderState::Skipped => "Skipped",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn is_committed(self) -> bool {
        Self::COMMITTED.contains(&self)
    }
}

impl std::fmt::Display for OrderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When an order passed each stage, in milliseconds since the epoch (this machine's clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTimes {
    /// The request was seen on the market.
    pub seen: Option<u64>,
    /// Its preflight and pricing ended.
    pub priced: Option<u64>,
    /// It was locked (or, for a race, committed to).
    pub locked: Option<u64>,
    /// Its proving session started.
    pub proving: Option<u64>,
    /// Its proof was done.
    pub proved: Option<u64>,
    /// Its seal was ready: its batch closed and was sealed under one set-builder root, or its
    /// own receipt was sealed (absent in orders recorded before this stage was kept).
    #[serde(default)]
    pub sealed: Option<u64>,
    /// It was fulfilled on-chain.
    pub fulfilled: Option<u64>,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One order as the database keeps it.
#[derive(Debug, Clone)]
pub struct Order {
    pub request: ProofRequest,
    /// The requestor's signature of an off-chain request; empty for one submitted on-chain.
    pub signature: Bytes,
    pub kind: FulfillmentType,
    pub state: OrderState,
    /// Cycles the preflight measured (0 before it).
    pub cycles: u64,
    /// The journal the preflight produced (absent for orders recorded before journals were
    /// kept, and for skipped requests).
    pub journal: Option<Vec<u8>>,
    /// The cluster's id of the input the preflight ran on (the proof runs on it too).
    pub input_id: Option<String>,
    /// That input's SHA-256 (an input fetched again must match it).
    pub input_sha256: Option<B256>,
    /// The price the lock paid (0 for a race).
    pub lock_price: U256,
    /// Seconds since the epoch after which proving is pointless.
    pub expiry: u64,
    /// The cluster's proving session.
    pub session_id: Option<String>,
    /// Proving attempts made so far.
    pub attempts: u32,
    /// The skip code or failure reason.
    pub error: Option<String>,
    /// When the order entered its current state (seconds since the epoch).
    pub updated_at: u64,
    /// When it passed each stage.
    pub times: StageTimes,
}

impl Order {
    pub fn new(request: ProofRequest, signature: Bytes, kind: FulfillmentType, now: u64) -> Self {
        let expiry = expiry_of(&request, kind);
        Self {
            request,
            signature,
            kind,
            state: OrderState::PendingProving,
            cycles: 0,
            journal: None,
            input_id: None,
            input_sha256: None,
            lock_price: U256::ZERO,
            expiry,
            session_id: None,
            attempts: 0,
            error: None,
            updated_at: now,
            times: StageTimes::default(),
        }
    }

    /// Records that the broker holds this order's lock at `price`: it waits for a proving slot.
    pub fn mark_locked(&mut self, price: U256) {
        self.state = OrderState::PendingProving;
        self.lock_price = price;
        self.error = None;
        self.times.locked.get_or_insert(now_ms());
    }

    /// The database key: the request id and how it is fulfilled (a request may be looked at
    /// once to lock it and once more to race for it).
    pub fn key(&self) -> String {
        order_key(self.request.id, self.kind)
    }

    pub fn id(&self) -> U256 {
        self.request.id
    }

    /// The request, ABI-encoded as the contract takes it.
    pub fn encoded_request(&self) -> Vec<u8> {
        self.request.abi_encode()
    }
}

/// When proving `request` as `kind` stops being worth it: the lock deadline for a lock, the
/// request's deadline for a race.
pub fn expiry_of(request: &ProofRequest, kind: FulfillmentType) -> u64 {
    match kind {
        FulfillmentType::LockAndFulfill => request.offer.lock_deadline(),
        FulfillmentType::FulfillAfterLockExpire => request.offer.deadline(),
    }
}

/// The key of the order for request `id` fulfilled as `kind`.
pub fn order_key(id: U256, kind: FulfillmentType) -> String {
    let suffix = match kind {
        FulfillmentType::LockAndFulfill => "lock",
        FulfillmentType::FulfillAfterLockExpire => "race",
    };
    format!("{id:#x}-{suffix}")
}

/// Decodes a request stored by [`Order::encoded_request`].
pub fn decode_request(bytes: &[u8]) -> Option<ProofRequest> {
    ProofRequest::abi_decode(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_its_stored_name() {
        for s in OrderState::ALL {
            assert_eq!(OrderState::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderState::parse("Lost"), None);
        assert!(OrderState::Proving.is_committed());
        assert!(!OrderState::Done.is_committed());
    }

    #[test]
    fn keys_tell_a_lock_from_a_race() {
        let id = U256::from(0x1234);
        assert_eq!(order_key(id, FulfillmentType::LockAndFulfill), "0x1234-lock");
        assert_eq!(order_key(id, FulfillmentType::FulfillAfterLockExpire), "0x1234-race");
    }
}
