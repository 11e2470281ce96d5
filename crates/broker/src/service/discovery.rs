//! Discovery: reads the market's events from the last block read (and `lookback_blocks` back
//! at each start), in chunks of `events_poll_blocks`, every `events_poll_ms`; mirrors them in
//! the database and hands new requests to the pricer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolValue;

use super::context::{Broker, lost_to, wall_clock};
use super::pricer;
use super::retry::every;
use crate::chain::MarketEvent;
use crate::error::{BrokerError, Result};
use crate::order::{OrderState, decode_request, order_key};
use crate::pricing::FulfillmentType;

pub async fn run(b: Arc<Broker>) -> BrokerError {
    let starting = AtomicBool::new(true);
    let (b, starting) = (&b, &starting);
    let interval = || b.config().market.events_poll_ms;
    every(b, "reading market events", interval, || async move {
        step(b, starting.load(Ordering::Relaxed)).await?;
        starting.store(false, Ordering::Relaxed);
        Ok(())
    })
    .await
}

/// Reads the events since the last block read. At a start it reads `lookback_blocks` back as
/// well: requests a stopped broker had seen but not yet priced are priced again (an order
/// already recorded is never priced twice).
async fn step(b: &Arc<Broker>, starting: bool) -> Result<()> {
    let cfg = b.config();
    let head = b.chain.head().await?;
    let chain_id = b.chain.chain_id();
    let lookback = head.saturating_sub(cfg.market.lookback_blocks);
    let from = match b.db.cursor(chain_id).await? {
        Some(done) if starting => (done + 1).min(lookback),
        Some(done) => done + 1,
        None => lookback,
    };
    if from > head {
        return Ok(());
    }
    let events = b.chain.events(from, head, cfg.market.events_poll_blocks).await?;
    for event in events {
        handle(b, event).await?;
    }
    // Only after every event of the range is recorded: a crash re-reads the range.
    b.db.set_cursor(chain_id, head).await
}

async fn handle(b: &Arc<Broker>, event: MarketEvent) -> Result<()> {
    match event {
        MarketEvent::Submitted { request } => {
            b.db.note_submitted(request.id, &request.abi_encode()).await?;
            pricer::consider(b, *request, Bytes::new(), FulfillmentType::LockAndFulfill);
        }
        MarketEvent::Locked { id, prover } => {
            b.db.note_locked(id, prover).await?;
            if prover == b.chain.address() {
                revive_own_lock(b, id).await?;
            } else {
                b.forget_queued(id, FulfillmentType::LockAndFulfill);
                // A lock by someone else may lapse: race for its collateral then.
                if let Some(request) =
                    b.db.request_info(id).await?.request.and_then(|r| decode_request(&r))
                {
                    pricer::consider(
                        b,
                        request,
                        Bytes::new(),
                        FulfillmentType::FulfillAfterLockExpire,
                    );
                }
            }
        }
        MarketEvent::Fulfilled { id, prover } => {
            b.db.note_fulfilled(id, prover).await?;
            b.forget_queued(id, FulfillmentType::LockAndFulfill);
            b.forget_queued(id, FulfillmentType::FulfillAfterLockExpire);
            if prover != b.chain.address() {
                for kind in
                    [FulfillmentType::LockAndFulfill, FulfillmentType::FulfillAfterLockExpire]
                {
                    abandon(b, id, kind, prover).await?;
                }
            }
        }
    }
    Ok(())
}

/// Someone else fulfilled a request we were proving: stop, and record the order as lost.
async fn abandon(b: &Arc<Broker>, id: U256, kind: FulfillmentType, prover: Address) -> Result<()> {
    let Some(mut order) = b.db.get(&order_key(id, kind)).await? else { return Ok(()) };
    let from = order.state;
    if !matches!(from, OrderState::PendingProving | OrderState::Proving | OrderState::Proved) {
        return Ok(());
    }
    if let Some(session) = &order.session_id {
        let _ = b.cluster.stop(session).await;
    }
    order.state = OrderState::Failed;
    order.error = Some(lost_to(prover));
    order.updated_at = wall_clock();
    b.save(&order, from).await?;
    Ok(())
}

/// The chain says we hold the lock on `id`: whatever the order's state (a lock given up as
/// failed, a restart while it was pending), it is proven. Collateral is at stake.
async fn revive_own_lock(b: &Arc<Broker>, id: U256) -> Result<()> {
    let Some(mut order) = b.db.get(&order_key(id, FulfillmentType::LockAndFulfill)).await? else {
        return Ok(());
    };
    let from = order.state;
    if !matches!(from, OrderState::Locking | OrderState::Failed | OrderState::Skipped) {
        return Ok(());
    }
    let record = b.chain.client().record(id).await?;
    if record.locker != b.chain.address() {
        return Ok(());
    }
    tracing::warn!(order = order.key(), %from, "the chain shows our lock: proving it");
    order.mark_locked(U256::from(record.price));
    order.updated_at = wall_clock();
    b.save(&order, from).await?;
    Ok(())
}
