//! Fulfilment: proven orders wait in the open batch until the batching policy closes it (size,
//! age, fees, or a deadline within `block_deadline_buffer_secs`); then each order's receipt is
//! sealed by the verifier service and fulfilled on-chain. A failed submission is retried up to
//! `max_submission_attempts` times while the order can still be paid.

use std::sync::Arc;

use alloy::primitives::U256;
use tiffin_market::RequestStatus;

use super::{Broker, every, wall_clock};
use crate::batching::{self, BatchState};
use crate::error::{BrokerError, Result};
use crate::order::{Order, OrderState};
use crate::params;

pub async fn run(b: Arc<Broker>) {
    every("fulfilling orders", || b.config().batcher.batch_poll_time_ms, || step(&b)).await
}

async fn step(b: &Arc<Broker>) -> Result<()> {
    let proved = b.db.in_states(&[OrderState::Proved]).await?;
    if proved.is_empty() {
        return Ok(());
    }
    let cfg = b.config();
    let now = b.chain.now().await?;
    let state = BatchState {
        opened_at: proved.iter().map(|o| o.updated_at).min().unwrap_or(now),
        orders: proved.len(),
        journal_bytes: 0,
        fees: proved.iter().map(|o| o.lock_price).fold(U256::ZERO, |a, p| a + p),
        earliest_deadline: proved.iter().map(|o| o.expiry).min(),
    };
    let Some(reason) = batching::flush_reason(&state, &params::batch(&cfg), now.max(wall_clock()))
    else {
        return Ok(());
    };
    tracing::info!(orders = proved.len(), ?reason, "closing the batch");
    for order in proved {
        fulfil(b, order).await?;
    }
    Ok(())
}

async fn fulfil(b: &Broker, mut order: Order) -> Result<()> {
    order.state = OrderState::Fulfilling;
    order.updated_at = wall_clock();
    if !b.save(&order, OrderState::Proved).await? {
        return Ok(());
    }
    let outcome = submit(b, &order).await;
    order.updated_at = wall_clock();
    match outcome {
        Ok(()) => {
            tracing::info!(order = order.key(), "fulfilled");
            withdraw_earnings(b, &order).await;
            order.state = OrderState::Done;
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
            if tries >= b.config().batcher.max_submission_attempts {
                order.state = OrderState::Failed;
                order.error = Some(format!("fulfilment failed {tries} times: {e}"));
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

async fn submit(b: &Broker, order: &Order) -> Result<()> {
    if b.chain.status(order.id()).await? == RequestStatus::Fulfilled {
        return Ok(());
    }
    let session = order
        .session_id
        .as_deref()
        .ok_or_else(|| BrokerError::Proving("a proved order without a session".into()))?;
    let receipt = b.cluster.receipt(session).await?;
    let sealed = b.verifier.attest(order.request.requirements.imageId, receipt).await?;
    b.chain.fulfill(order.id(), sealed.journal, sealed.seal).await
}
