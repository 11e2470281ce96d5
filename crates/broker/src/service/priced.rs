//! A priced request, as the pricer hands it to the committer: what it will be locked (or raced)
//! for, when, and the input its preflight ran on. A leaf: plain data.

use alloy::primitives::{B256, Bytes, U256};
use tiffin_market::ProofRequest;

use crate::order::{StageTimes, order_key};
use crate::pricing::FulfillmentType;

/// A priced request waiting to be committed to.
#[derive(Debug, Clone)]
pub struct Priced {
    pub request: ProofRequest,
    pub signature: Bytes,
    pub kind: FulfillmentType,
    /// Not before this time (chain seconds).
    pub at: u64,
    pub expiry: u64,
    pub cycles: u64,
    /// The preflight's journal.
    pub journal: Vec<u8>,
    /// The input the preflight ran on, on the cluster.
    pub input: PricedInput,
    /// Our floor (lock) or the expected reward (race).
    pub price: U256,
    pub priority: bool,
    pub observed_at: u64,
    /// When it was seen and priced (stage times so far).
    pub times: StageTimes,
}

impl Priced {
    /// The key of the order it becomes.
    pub fn key(&self) -> String {
        order_key(self.request.id, self.kind)
    }
}

/// The input a preflight ran on, as uploaded to the cluster: the proof runs on the same one.
#[derive(Debug, Clone)]
pub struct PricedInput {
    pub id: String,
    pub sha256: B256,
}
