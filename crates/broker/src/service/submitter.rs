//! Fulfilment: proved orders wait in the open batch until the batching policy closes it (size,
//! age, journal bytes, fees, or a deadline within `block_deadline_buffer_secs`). The closing
//! batch takes the orders that expire first, up to `batch_max_journal_bytes` of journals; two
//! or more are fulfilled under one set-builder root ([`super::aggregator`]), a single order or a
//! batch closed by a deadline with each order's own seal from the verifier service (also the
//! fallback when aggregation fails). A failed submission is retried up to
//! `max_submission_attempts` times while the order can still be paid.

use std::sync::Arc;

use alloy::primitives::U256;
use tiffin_market::RequestStatus;

use super::aggregator;
use super::context::{Broker, lost_to, wall_clock};
use super::retry::every;
use crate::batching::{self, BatchState};
use crate::error::{BrokerError, Result};
use crate::order::{Order, OrderState};
use crate::params;

pub async fn run(b: Arc<Broker>) -> BrokerError {
    every(&b, "fulfilling orders", || b.config().batcher.batch_poll_time_ms, || step(&b)).await
}

async fn step(b: &Arc<Broker>) -> Result<()> {
    let mut proved = b.db.in_states(&[OrderState::Proved]).await?;
    if proved.is_empty() {
        return Ok(());
    }
    proved.sort_by_key(|o| o.expiry);
    let cfg = b.config();
    let params = params::batch(&cfg);
    let now = b.chain.now().await?;
    let journal_sizes: Vec<usize> =
        proved.iter().map(|o| o.journal.as_ref().map_or(0, Vec::len)).collect();
    let state = BatchState {
        opened_at: proved.iter().map(|o| o.updated_at).min().unwrap_or(now),
        orders: proved.len(),
        journal_bytes: journal_sizes.iter().sum(),
        fees: proved.iter().map(|o| o.lock_price).fold(U256::ZERO, |a, p| a + p),
        earliest_deadline: proved.first().map(|o| o.expiry),
    };
    let Some(reason) = batching::flush_reason(&state, &params, now.max(wall_clock())) else {
        return Ok(());
    };
    proved.truncate(batching::batch_len(&journal_sizes, &params));
    tracing::info!(orders = proved.len(), ?reason, "closing the batch");
    let mut batch = Vec::with_capacity(proved.len());
    for mut order in proved {
        order.state = OrderState::Fulfilling;
        order.updated_at = wall_clock();
        if b.save(&order, OrderState::Proved).await? {
            batch.push(order);
        }
    }
    if batch.is_empty() {
        return Ok(());
    }
    let mut aggregated = None;
    if batching::aggregate(batch.len(), reason) {
        match aggregator::fulfil(b, &batch).await {
            Ok(sealed) => aggregated = Some(sealed),
            Err(e) => tracing::warn!(orders = batch.len(), "fulfilling one by one: {e}"),
        }
    }
    crate::metrics::batch(if aggregated.is_some() { "aggregated" } else { "one_by_one" });
    for order in batch {
        let outcome = match aggregated {
            Some(sealed) => Ok(sealed),
            None => submit(b, &order).await,
        };
        settle(b, order, outcome).await?;
    }
    Ok(())
}

/// Records how the fulfilment of `order` (now `Fulfilling`) went: fulfilled, with the time its
/// seal was ready (`None`: found fulfilled already), or an error.
async fn settle(b: &Broker, mut order: Order, outcome: Result<Option<u64>>) -> Result<()> {
    order.updated_at = wall_clock();
    match outcome {
        Ok(sealed) => {
            tracing::info!(order = order.key(), "fulfilled");
            withdraw_earnings(b, &order).await;
            order.state = OrderState::Done;
            order.times.sealed = sealed;
            order.times.fulfilled = Some(crate::order::now_ms());
        }
        Err(e) => {
            let tries = {
                let mut map = b.submissions.lock().expect("submissions lock");
                let n = map.entry(order.key()).or_default();
                *n += 1;
                *n
            };
            tracing::warn!(order = order.key(), tries, "fulfilment failed: {e}");
            if e.is_final() || tries >= b.config().batcher.max_submission_attempts {
                order.state = OrderState::Failed;
                order.error = Some(match e {
                    BrokerError::Lost(why) => why,
                    e => format!("fulfilment failed {tries} times: {e}"),
                });
            } else {
                order.state = OrderState::Proved;
            }
        }
    }
    match order.state {
        OrderState::Done => crate::metrics::fulfilment("done", &order.times),
        OrderState::Failed => crate::metrics::fulfilment("failed", &order.times),
        _ => {}
    }
    b.save(&order, OrderState::Fulfilling).await?;
    Ok(())
}

/// With `withdraw`, moves the order's payment out of the market account. Best effort, and
/// before the order is marked done (so a shutdown waits for it): what is not withdrawn stays
/// safe in the market account.
async fn withdraw_earnings(b: &Broker, order: &Order) {
    if !b.config().batcher.withdraw || order.lock_price.is_zero() {
        return;
    }
    match b.chain.withdraw(order.lock_price).await {
        Ok(()) => tracing::info!(order = order.key(), amount = %order.lock_price, "withdrew"),
        Err(e) => tracing::warn!(order = order.key(), "withdrawing the payment failed: {e}"),
    }
}

/// Fulfils `order` with its own seal; returns when the seal was ready (`None`: the chain shows
/// it fulfilled already).
async fn submit(b: &Broker, order: &Order) -> Result<Option<u64>> {
    if b.chain.status(order.id()).await? == RequestStatus::Fulfilled {
        if let Some(other) = b.fulfilled_by_other(order.id()).await? {
            return Err(BrokerError::Lost(lost_to(other)));
        }
        return Ok(None);
    }
    let session = order
        .session_id
        .as_deref()
        .ok_or_else(|| BrokerError::Proving("a proved order without a session".into()))?;
    let receipt = b.cluster.receipt(session).await?;
    let image_id = order.request.requirements.imageId;
    let sealed = b.verifier.attest(image_id, receipt, b.chain.address()).await?;
    if !crate::pricing::predicate_matches(&order.request.requirements.predicate, &sealed.journal) {
        // Submitting would only revert (JournalRejected) and burn gas.
        return Err(BrokerError::PredicateFailed);
    }
    let sealed_at = crate::order::now_ms();
    b.chain.fulfill(order.id(), sealed.journal, sealed.seal).await?;
    Ok(Some(sealed_at))
}
