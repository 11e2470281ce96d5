//! Requests waiting for a preflight slot. Discovery can find many requests at once (a burst on
//! the market, or the lookback at start) while only `max_concurrent_preflights` run, so which
//! one is priced next matters: each free slot takes the waiting request that
//! [`capacity::order_for_pricing`] ranks first under `order_pricing_priority` (priority
//! requestors always first).
//!
//! The queue is bounded by [`MAX_WAITING`], never by what the market sends: a flood of requests
//! beyond it is dropped with a warning rather than held in memory.

use std::sync::Mutex;

use alloy::primitives::{Bytes, U256};
use tiffin_market::ProofRequest;

use crate::capacity::{self, Candidate, PricingPriority};
use crate::order::expiry_of;
use crate::pricing::FulfillmentType;

/// The most requests waiting to be priced.
pub const MAX_WAITING: usize = 10_000;

/// A request waiting to be priced.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub request: ProofRequest,
    pub signature: Bytes,
    pub kind: FulfillmentType,
    /// Whether its requestor is a priority requestor.
    pub priority: bool,
    /// When the broker saw it (milliseconds since the epoch).
    pub observed_at: u64,
}

impl Waiting {
    fn candidate(&self) -> Candidate {
        Candidate {
            id: self.request.id,
            expiry: expiry_of(&self.request, self.kind),
            price: U256::ZERO,
            cycles: 0,
            priority: self.priority,
            observed_at: self.observed_at,
        }
    }

    fn same(&self, other: &Waiting) -> bool {
        self.request.id == other.request.id && self.kind == other.kind
    }
}

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The same request (and fulfilment kind) is waiting already.
    AlreadyWaiting,
    /// [`MAX_WAITING`] requests are waiting.
    Full,
}

/// The waiting requests.
#[derive(Debug, Default)]
pub struct PricingQueue {
    waiting: Mutex<Vec<Waiting>>,
}

impl PricingQueue {
    /// Queues `w` unless it waits already or the queue is full.
    pub fn push(&self, w: Waiting) -> Result<(), Refused> {
        let mut waiting = self.waiting.lock().expect("pricing queue lock");
        if waiting.iter().any(|o| o.same(&w)) {
            return Err(Refused::AlreadyWaiting);
        }
        if waiting.len() >= MAX_WAITING {
            return Err(Refused::Full);
        }
        waiting.push(w);
        Ok(())
    }

    /// Takes the request to price next under `mode`; `seed` drives the random mode.
    pub fn take_next(&self, mode: PricingPriority, seed: u64) -> Option<Waiting> {
        let mut waiting = self.waiting.lock().expect("pricing queue lock");
        let mut ranked: Vec<Candidate> = waiting.iter().map(Waiting::candidate).collect();
        capacity::order_for_pricing(&mut ranked, mode, seed);
        let first = ranked.first()?;
        let index = waiting.iter().position(|w| w.candidate() == *first)?;
        Some(waiting.swap_remove(index))
    }

    /// How many requests wait.
    pub fn len(&self) -> usize {
        self.waiting.lock().expect("pricing queue lock").len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::Address;
    use tiffin_market::{Input, Offer, Predicate};

    /// A request with index `index` whose lock deadline is `lock_timeout` seconds after 1000.
    fn waiting(index: u32, lock_timeout: u32, observed_at: u64, priority: bool) -> Waiting {
        let offer = Offer {
            minPrice: U256::from(1),
            maxPrice: U256::from(2),
            biddingStart: 1_000,
            rampUpPeriod: 0,
            lockTimeout: lock_timeout,
            timeout: 5_000,
            lockCollateral: U256::ZERO,
        };
        let id = tiffin_market::request::request_id(Address::repeat_byte(7), index);
        let request = ProofRequest::new(
            id,
            alloy::primitives::B256::ZERO,
            Predicate::any(),
            "file:///x",
            Input::inline(vec![]),
            offer,
        );
        let kind = FulfillmentType::LockAndFulfill;
        Waiting { request, signature: Bytes::new(), kind, priority, observed_at }
    }

    fn drain(queue: &PricingQueue, mode: PricingPriority) -> Vec<u32> {
        std::iter::from_fn(|| queue.take_next(mode, 42))
            .map(|w| w.request.id.as_limbs()[0] as u32)
            .collect()
    }

    fn filled() -> PricingQueue {
        let queue = PricingQueue::default();
        // index, lock timeout, observed at, priority requestor
        for (index, timeout, seen, priority) in
            [(1, 900, 30, false), (2, 300, 20, false), (3, 600, 10, false), (4, 950, 40, true)]
        {
            queue.push(waiting(index, timeout, seen, priority)).unwrap();
        }
        queue
    }

    #[test]
    fn each_mode_takes_its_first_and_priority_requestors_before_all() {
        assert_eq!(drain(&filled(), PricingPriority::ObservationTime), [4, 3, 2, 1]);
        assert_eq!(drain(&filled(), PricingPriority::ShortestExpiry), [4, 2, 3, 1]);
        let random = drain(&filled(), PricingPriority::Random);
        assert_eq!(random[0], 4, "priority first in random mode too");
        let mut sorted = random.clone();
        sorted.sort();
        assert_eq!(sorted, [1, 2, 3, 4], "every request is taken once");
    }

    #[test]
    fn a_request_waits_once_and_the_queue_is_bounded() {
        let queue = PricingQueue::default();
        assert!(queue.take_next(PricingPriority::Random, 1).is_none());
        queue.push(waiting(1, 900, 1, false)).unwrap();
        assert_eq!(queue.push(waiting(1, 900, 2, false)), Err(Refused::AlreadyWaiting));
        let mut race = waiting(1, 900, 2, false);
        race.kind = FulfillmentType::FulfillAfterLockExpire;
        queue.push(race).unwrap();
        assert_eq!(queue.len(), 2, "a race is another order of the same request");
        for index in 2..MAX_WAITING as u32 {
            queue.push(waiting(index, 900, 3, false)).unwrap();
        }
        assert_eq!(queue.push(waiting(0, 900, 3, true)), Err(Refused::Full));
        assert_eq!(queue.len(), MAX_WAITING);
    }
}
