//! The market as the broker uses it: reading events in chunks, the state pricing needs, and
//! one transaction sender for the broker's key (transactions go one after the other, so
//! nonces never race), with locks reconciled from chain state when a transaction errs.

use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolEvent;
use tiffin_market::bindings::ProofMarket::{RequestFulfilled, RequestLocked, RequestSubmitted};
use tiffin_market::{Fulfillment, MarketClient, MarketError, ProofRequest, RequestStatus};
use tokio::sync::Mutex;

use crate::config::BrokerConfig;
use crate::error::{BrokerError, Result};

/// One market event the broker cares about.
#[derive(Debug, Clone)]
pub enum MarketEvent {
    Submitted { request: Box<ProofRequest> },
    Locked { id: U256, prover: Address },
    Fulfilled { id: U256, prover: Address },
}

/// What came of a lock.
#[derive(Debug, Clone)]
pub enum LockOutcome {
    /// We hold the lock, at this price.
    Locked { price: U256 },
    /// Someone else holds it.
    LostTo(Address),
    /// Not locked (the request is closed, or the transaction failed and nobody holds it).
    Failed(String),
    /// Nobody holds it yet, but the transaction may still be mined (it timed out, or its
    /// receipt was lost): the order stays `Locking` and is checked again every poll.
    InDoubt(String),
}

/// The chain, through one key.
#[derive(Debug)]
pub struct Chain {
    client: MarketClient,
    /// Held while a transaction is sent and mined: one sender per key.
    sender: Mutex<()>,
}

fn rpc(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Chain(e.to_string())
}

impl Chain {
    /// The chain through `client`, sending as `cfg` says (read once): each transaction may stay
    /// pending `txn_timeout` seconds; one still pending after a third of that is resent with the
    /// same nonce at fees raised by an eighth (so twice before the timeout); locks add
    /// `lockin_priority_gas` wei per gas to the estimated fees.
    pub fn new(client: MarketClient, cfg: &BrokerConfig) -> Self {
        let timeout = Duration::from_secs(cfg.batcher.txn_timeout);
        let client = client
            .with_tx_timeout(timeout)
            .with_fee_bumps(Some(timeout / 3).filter(|d| !d.is_zero()))
            .with_lock_priority_fee(cfg.market.lockin_priority_gas.map(u128::from));
        Self { client, sender: Mutex::new(()) }
    }

    pub fn client(&self) -> &MarketClient {
        &self.client
    }

    pub fn address(&self) -> Address {
        self.client.address()
    }

    pub fn chain_id(&self) -> u64 {
        self.client.chain_id()
    }

    pub async fn head(&self) -> Result<u64> {
        self.client.provider().get_block_number().await.map_err(rpc)
    }

    /// The latest block's timestamp: the clock every deadline is measured on.
    pub async fn now(&self) -> Result<u64> {
        let block = self
            .client
            .provider()
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(rpc)?
            .ok_or_else(|| BrokerError::Chain("no latest block".into()))?;
        Ok(block.header.timestamp)
    }

    pub async fn gas_price(&self) -> Result<u128> {
        self.client.provider().get_gas_price().await.map_err(rpc)
    }

    pub async fn native_balance(&self) -> Result<U256> {
        self.client.provider().get_balance(self.address()).await.map_err(rpc)
    }

    pub async fn collateral_balance(&self) -> Result<U256> {
        Ok(self.client.collateral_balance_of(self.address()).await?)
    }

    /// The market's events in blocks `from..=to`, in order, read `chunk` blocks at a time; a
    /// query the provider refuses is split in halves down to one block, so a range limit never
    /// makes the broker miss an event.
    pub async fn events(&self, from: u64, to: u64, chunk: u64) -> Result<Vec<MarketEvent>> {
        let mut out = Vec::new();
        let mut start = from;
        let mut size = chunk.max(1);
        while start <= to {
            let end = to.min(start + size - 1);
            match self.events_in(start, end).await {
                Ok(mut events) => {
                    out.append(&mut events);
                    start = end + 1;
                    size = chunk.max(1);
                }
                Err(e) if size > 1 => {
                    tracing::debug!(start, end, "log query refused, halving: {e}");
                    size = size.div_ceil(2);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn events_in(&self, from: u64, to: u64) -> Result<Vec<MarketEvent>> {
        let market = self.client.market();
        let topics = [
            RequestSubmitted::SIGNATURE_HASH,
            RequestLocked::SIGNATURE_HASH,
            RequestFulfilled::SIGNATURE_HASH,
        ];
        let filter = alloy::rpc::types::Filter::new()
            .address(*market.address())
            .event_signature(topics.to_vec())
            .from_block(from)
            .to_block(to);
        let logs = self.client.provider().get_logs(&filter).await.map_err(rpc)?;
        Ok(logs.iter().filter_map(decode).collect())
    }

    /// Locks `request`. An error is never taken for "not locked": the chain is asked who holds
    /// the lock before the order is given up.
    pub async fn lock(&self, request: &ProofRequest, signature: Bytes) -> LockOutcome {
        let sent = {
            let _one_at_a_time = self.sender.lock().await;
            self.client.lock_request(request, signature).await
        };
        match sent {
            Ok(receipt) => {
                let price = receipt
                    .inner
                    .logs()
                    .iter()
                    .find_map(|l| l.log_decode::<RequestLocked>().ok())
                    .map(|l| l.inner.data.price);
                match price {
                    Some(price) => LockOutcome::Locked { price },
                    None => self.reconcile_lock(request.id, false, "no RequestLocked event").await,
                }
            }
            Err(e) => {
                // A transaction that timed out, or whose receipt was lost with the connection,
                // may still be mined.
                let in_doubt = matches!(e, MarketError::TxTimeout { .. } | MarketError::Rpc(_));
                self.reconcile_lock(request.id, in_doubt, &e.to_string()).await
            }
        }
    }

    /// Who holds the lock on `id`, after a lock whose outcome is not known; `in_doubt`: the
    /// transaction may still be mined, so the chain is asked again for a while.
    async fn reconcile_lock(&self, id: U256, in_doubt: bool, error: &str) -> LockOutcome {
        let attempts = if in_doubt { 3 } else { 1 };
        for attempt in 0..attempts {
            match self.client.record(id).await {
                Ok(record) if record.locker == self.address() => {
                    tracing::warn!(%id, "lock reported '{error}' but the chain shows our lock");
                    return LockOutcome::Locked { price: U256::from(record.price) };
                }
                Ok(record) if record.locker != Address::ZERO => {
                    return LockOutcome::LostTo(record.locker);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%id, attempt, "reading the lock back: {e}"),
            }
            if attempt + 1 < attempts {
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
        }
        if in_doubt {
            LockOutcome::InDoubt(error.to_string())
        } else {
            LockOutcome::Failed(error.to_string())
        }
    }

    /// The set-builder image whose journal the market takes as a batch root.
    pub async fn set_builder_image_id(&self) -> Result<B256> {
        Ok(self.client.set_builder_image_id().await?)
    }

    pub async fn status(&self, id: U256) -> Result<RequestStatus> {
        Ok(self.client.status(id).await?)
    }

    pub async fn fulfill(&self, id: U256, journal: Bytes, seal: Bytes) -> Result<()> {
        let _one_at_a_time = self.sender.lock().await;
        self.client.fulfill(id, journal, seal).await.map(drop).map_err(fulfil_err)
    }

    pub async fn submit_root_and_fulfill(
        &self,
        root: B256,
        seal: Bytes,
        fills: Vec<Fulfillment>,
        single_txn: bool,
    ) -> Result<()> {
        let _one_at_a_time = self.sender.lock().await;
        if single_txn {
            self.client.submit_root_and_fulfill(root, seal, fills).await.map_err(fulfil_err)?;
        } else {
            self.client.submit_root(root, seal).await.map_err(fulfil_err)?;
            self.client.fulfill_batch(root, fills).await.map_err(fulfil_err)?;
        }
        Ok(())
    }

    pub async fn withdraw(&self, amount: U256) -> Result<()> {
        let _one_at_a_time = self.sender.lock().await;
        self.client.withdraw(amount).await.map(drop).map_err(fulfil_err)
    }
}

fn fulfil_err(e: MarketError) -> BrokerError {
    BrokerError::Chain(e.to_string())
}

fn decode(log: &alloy::rpc::types::Log) -> Option<MarketEvent> {
    let topic = *log.topic0()?;
    if topic == RequestSubmitted::SIGNATURE_HASH {
        let e = log.log_decode::<RequestSubmitted>().ok()?.inner.data;
        return Some(MarketEvent::Submitted { request: Box::new(e.request) });
    }
    if topic == RequestLocked::SIGNATURE_HASH {
        let e = log.log_decode::<RequestLocked>().ok()?.inner.data;
        return Some(MarketEvent::Locked { id: e.id, prover: e.prover });
    }
    if topic == RequestFulfilled::SIGNATURE_HASH {
        let e = log.log_decode::<RequestFulfilled>().ok()?.inner.data;
        return Some(MarketEvent::Fulfilled { id: e.id, prover: e.prover });
    }
    None
}
