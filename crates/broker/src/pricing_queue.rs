//! Requests waiting for a preflight slot. Discovery can find many requests at once (a burst on
//! the market, or the lookback at start) while only `max_concurrent_preflights` run, so which
//! one is priced next matters: each free slot takes the waiting request that
//! [`capacity::order_for_pricing`] ranks first under `order_pricing_priority` (priority
//! requestors always first).
//!
//! Requestors take turns: the next request comes from the requestor whose requests were taken
//! least often so far (priority requestors first), and within it the mode's first. So one
//! requestor's flood of junk cannot hold the preflight slots while others' requests expire.
//!
//! The queue is bounded by [`MAX_WAITING`], and each requestor's share by
//! [`MAX_PER_REQUESTOR`], never by what the market sends: a flood beyond them is dropped with a
//! warning rather than held in memory.

use std::sync::Mutex;

use std::collections::HashMap;

use alloy::primitives::{Address, Bytes};
use tiffin_market::ProofRequest;

use crate::capacity::{self, Candidate, PricingPriority};
use crate::order::expiry_of;
use crate::pricing::FulfillmentType;

/// The most requests waiting to be priced.
pub const MAX_WAITING: usize = 10_000;
/// The most requests of one requestor waiting to be priced.
pub const MAX_PER_REQUESTOR: usize = 1_000;

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
            price: self.request.offer.maxPrice,
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
    /// [`MAX_PER_REQUESTOR`] requests of this requestor are waiting.
    RequestorFull,
}

/// The waiting requests, and how many each requestor has had taken.
#[derive(Debug, Default)]
pub struct PricingQueue {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    waiting: Vec<Waiting>,
    taken: HashMap<Address, u64>,
}

impl PricingQueue {
    /// Queues `w` unless it waits already or the queue (or its requestor's share) is full.
    pub fn push(&self, w: Waiting) -> Result<(), Refused> {
        let mut inner = self.inner.lock().expect("pricing queue lock");
        if inner.waiting.iter().any(|o| o.same(&w)) {
            return Err(Refused::AlreadyWaiting);
        }
        if inner.waiting.len() >= MAX_WAITING {
            return Err(Refused::Full);
        }
        let requestor = w.request.requestor();
        let own = inner.waiting.iter().filter(|o| o.request.requestor() == requestor).count();
        if own >= MAX_PER_REQUESTOR {
            return Err(Refused::RequestorFull);
        }
        inner.waiting.push(w);
        Ok(())
    }

    /// Takes the request to price next: the mode's first among the requests of the requestor
    /// taken least often (priority requestors before all); `seed` drives the random mode.
    pub fn take_next(&self, mode: PricingPriority, seed: u64) -> Option<Waiting> {
        let mut inner = self.inner.lock().expect("pricing queue lock");
        let Inner { waiting, taken } = &mut *inner;
        let turn =
            |w: &Waiting| (!w.priority, taken.get(&w.request.requestor()).copied().unwrap_or(0));
        let next_turn = waiting.iter().map(turn).min()?;
        let mut ranked: Vec<Candidate> =
            waiting.iter().filter(|w| turn(w) == next_turn).map(Waiting::candidate).collect();
        capacity::order_for_pricing(&mut ranked, mode, seed);
        let first = ranked.first()?;
        let index = waiting.iter().position(|w| w.candidate() == *first)?;
        let next = waiting.swap_remove(index);
        *taken.entry(next.request.requestor()).or_default() += 1;
        if waiting.is_empty() {
            // Turns start over with the next burst.
            taken.clear();
        }
        Some(next)
    }

    /// How many requests wait.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("pricing queue lock").waiting.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::U256;
    use tiffin_market::{Input, Offer, Predicate};

    /// A request with index `index` whose lock deadline is `lock_timeout` seconds after 1000.
    fn waiting(index: u32, lock_timeout: u32, observed_at: u64, priority: bool) -> Waiting {
        waiting_from(7, index, lock_timeout, observed_at, priority)
    }

    /// [`waiting`] from requestor `Address::repeat_byte(requestor)`.
    fn waiting_from(
        requestor: u8,
        index: u32,
        lock_timeout: u32,
        observed_at: u64,
        priority: bool,
    ) -> Waiting {
        let offer = Offer {
            minPrice: U256::from(1),
            maxPrice: U256::from(2),
            biddingStart: 1_000,
            rampUpPeriod: 0,
            lockTimeout: lock_timeout,
            timeout: 5_000,
            lockCollateral: U256::ZERO,
        };
        let id = tiffin_market::request::request_id(Address::repeat_byte(requestor), index);
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
            queue.push(waiting_from(10 + (index % 20) as u8, index, 900, 3, false)).unwrap();
        }
        assert_eq!(queue.push(waiting_from(99, 0, 900, 3, true)), Err(Refused::Full));
        assert_eq!(queue.len(), MAX_WAITING);
    }

    /// Failed before the fix: one requestor's flood filled the queue and was priced first.
    #[test]
    fn requestors_take_turns_and_none_holds_more_than_its_share() {
        let queue = PricingQueue::default();
        for index in 0..MAX_PER_REQUESTOR as u32 {
            // The flood offers more and arrives first.
            let mut w = waiting_from(1, index, 900, 1, false);
            w.request.offer.maxPrice = U256::from(1_000);
            queue.push(w).unwrap();
        }
        let refused = queue.push(waiting_from(1, 5_000, 900, 1, false));
        assert_eq!(refused, Err(Refused::RequestorFull));
        queue.push(waiting_from(2, 1, 900, 50, false)).unwrap();
        queue.push(waiting_from(2, 2, 900, 60, false)).unwrap();
        let taken: Vec<u8> = std::iter::from_fn(|| queue.take_next(PricingPriority::Price, 1))
            .take(5)
            .map(|w| w.request.requestor().0[0])
            .collect();
        assert_eq!(taken, [1, 2, 1, 2, 1], "turns alternate, whatever the price");
    }
}
