//! What every stage shares: the [`Broker`] (the chain, the cluster, the order database, the
//! configuration in force and the stages' in-memory state), what stops it ([`Stop`]) and the
//! small questions any stage asks of it. A leaf: it imports no stage.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use alloy::primitives::{Address, U256};
use tiffin_market::ProofRequest;
use tokio::sync::watch;

use super::preflights::PreflightCache;
use super::priced::Priced;
use crate::attest::VerifierService;
use crate::breaker::CircuitBreaker;
use crate::chain::Chain;
use crate::cluster::Cluster;
use crate::config::BrokerConfig;
use crate::db::Db;
use crate::error::Result;
use crate::fetch::Fetcher;
use crate::order::{Order, OrderState, order_key};
use crate::params;
use crate::pricing::FulfillmentType;
use crate::pricing_queue::PricingQueue;
use crate::speed::Known;

/// Everything the stages share.
pub struct Broker {
    pub chain: Chain,
    pub cluster: Cluster,
    pub verifier: VerifierService,
    pub db: Db,
    config: watch::Receiver<Arc<BrokerConfig>>,
    pub(super) breaker: Mutex<CircuitBreaker>,
    /// Priced requests waiting for their time and for capacity (not yet committed).
    pub(super) queue: Mutex<Vec<Priced>>,
    /// Orders a task is driving right now (by key).
    pub(super) driving: Mutex<HashSet<String>>,
    pub(super) preflights: PreflightCache,
    /// Requests waiting for a preflight slot.
    pub(super) pricing: PricingQueue,
    /// Failed submissions per order key (in memory: a restart grants a fresh budget).
    pub(super) submissions: Mutex<HashMap<String, u32>>,
    /// Priority requestors named by `priority_requestor_lists`.
    pub(super) listed_priority: Mutex<Vec<Address>>,
    /// The cluster's, measured and calibrated proving speeds ([`crate::speed`]).
    pub(super) speeds: Mutex<Known>,
}

/// What stops the broker.
#[derive(Debug, Clone)]
pub struct Stop {
    /// Stop discovering, pricing and locking (the first signal).
    pub intake: watch::Receiver<bool>,
    /// Stop everything now (the second signal).
    pub now: watch::Receiver<bool>,
}

impl Broker {
    pub fn new(
        chain: Chain,
        cluster: Cluster,
        verifier: VerifierService,
        db: Db,
        config: watch::Receiver<Arc<BrokerConfig>>,
    ) -> Arc<Self> {
        let breaker = CircuitBreaker::new(params::breaker(&config.borrow()));
        Arc::new(Self {
            chain,
            cluster,
            verifier,
            db,
            config,
            breaker: Mutex::new(breaker),
            queue: Mutex::new(Vec::new()),
            driving: Mutex::new(HashSet::new()),
            preflights: PreflightCache::default(),
            pricing: Default::default(),
            submissions: Mutex::new(Default::default()),
            listed_priority: Mutex::new(Vec::new()),
            speeds: Mutex::new(Default::default()),
        })
    }

    /// The configuration in force (re-read when the file changes).
    pub fn config(&self) -> Arc<BrokerConfig> {
        self.config.borrow().clone()
    }

    /// Every priority requestor: configured and listed.
    pub(super) fn priority_requestors(&self) -> Vec<Address> {
        let mut all = self.config().market.priority_requestor_addresses.clone();
        all.extend(self.listed_priority.lock().expect("list lock").iter().copied());
        all
    }

    /// Moves `order` to its new state if it is still in `from`; logs a lost race.
    pub(super) async fn save(&self, order: &Order, from: OrderState) -> Result<bool> {
        let moved = self.db.update(order, from).await?;
        if !moved {
            tracing::debug!(order = order.key(), %from, to = %order.state, "order moved elsewhere");
        }
        Ok(moved)
    }

    /// A fetcher for `request`'s program and input: capped at `max_file_size`, except for
    /// priority requestors, whom the operator trusts with any size.
    pub(super) fn fetcher(&self, request: &ProofRequest) -> Fetcher {
        let m = &self.config().market;
        let priority = self.priority_requestors().contains(&request.requestor());
        let cap = if priority { u64::MAX } else { m.max_file_size };
        Fetcher::new(cap, m.max_fetch_retries, m.cache_dir.clone())
            .allowing(&m.allowed_url_prefixes)
            .with_timeout(std::time::Duration::from_secs(m.fetch_timeout_secs))
    }

    pub(super) fn enqueue(&self, priced: Priced) {
        let mut queue = self.queue.lock().expect("queue lock");
        if !queue.iter().any(|p| p.key() == priced.key()) {
            queue.push(priced);
        }
    }

    pub(super) fn is_queued(&self, key: &str) -> bool {
        self.queue.lock().expect("queue lock").iter().any(|p| p.key() == key)
    }

    pub(super) fn forget_queued(&self, id: U256, kind: FulfillmentType) {
        let key = order_key(id, kind);
        self.queue.lock().expect("queue lock").retain(|p| p.key() != key);
    }

    /// Requests in the queue (for status output).
    pub fn queued(&self) -> Vec<Priced> {
        self.queue.lock().expect("queue lock").clone()
    }

    /// Who else fulfilled `id`, as the mirrored events say (`None`: we did, or nobody knows).
    pub(super) async fn fulfilled_by_other(&self, id: U256) -> Result<Option<Address>> {
        let fulfiller = self.db.request_info(id).await?.fulfiller;
        Ok(fulfiller.filter(|f| *f != self.chain.address()))
    }
}

/// The failure reason of an order someone else fulfilled: lost, not done.
pub(super) fn lost_to(prover: Address) -> String {
    format!("lost: fulfilled by {prover} first")
}

/// Seconds since the epoch by this machine's clock (for bookkeeping; deadlines use the chain's).
pub fn wall_clock() -> u64 {
    crate::order::now_ms() / 1000
}
