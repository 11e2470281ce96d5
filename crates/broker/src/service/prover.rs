//! Proving: at most `max_concurrent_proofs` orders prove at once. Each order's session id is
//! stored as soon as the cluster accepts it, so a restarted broker waits for the same session
//! instead of proving again. A failed session is retried `proof_retry_count` times (never past
//! the order's expiry); every outcome feeds the circuit breaker.

use std::sync::Arc;
use std::time::Duration;

use super::{Broker, every, pricer, wall_clock, with_retries};
use crate::cluster::SessionEnd;
use crate::error::{BrokerError, Result};
use crate::order::{Order, OrderState, now_ms};
use crate::params;

pub async fn run(b: Arc<Broker>) -> BrokerError {
    every(&b, "starting proofs", || b.config().prover.status_poll_ms, || step(&b)).await
}

async fn step(b: &Arc<Broker>) -> Result<()> {
    let proving = b.db.in_states(&[OrderState::Proving]).await?;
    for order in &proving {
        spawn_drive(b, order.clone());
    }
    let slots = (b.config().market.max_concurrent_proofs as usize).saturating_sub(proving.len());
    let now = b.chain.now().await?;
    let pending = b.db.in_states(&[OrderState::PendingProving]).await?;
    for mut order in pending.into_iter().filter(|o| o.expiry > now).take(slots) {
        order.state = OrderState::Proving;
        order.updated_at = wall_clock();
        if b.save(&order, OrderState::PendingProving).await? {
            spawn_drive(b, order);
        }
    }
    Ok(())
}

/// Drives `order` to the end of its proof unless a task already does.
fn spawn_drive(b: &Arc<Broker>, order: Order) {
    if !b.driving.lock().expect("driving lock").insert(order.key()) {
        return;
    }
    let b = b.clone();
    tokio::spawn(async move {
        let key = order.key();
        if let Err(e) = drive(&b, order).await {
            // The order stays Proving; the next tick picks it up again (or the reaper ends it).
            tracing::warn!(order = key, "proving: {e}");
            tokio::time::sleep(Duration::from_millis(b.config().prover.proof_retry_sleep_ms)).await;
        }
        b.driving.lock().expect("driving lock").remove(&key);
    });
}

async fn drive(b: &Broker, mut order: Order) -> Result<()> {
    loop {
        let cfg = b.config();
        let session = match order.session_id.clone() {
            Some(s) => s,
            None => start(b, &mut order).await?,
        };
        let poll = Duration::from_millis(cfg.prover.status_poll_ms);
        let end = b.cluster.wait(&session, poll, cfg.prover.status_poll_retry_count).await?;
        let now = wall_clock();
        match end {
            SessionEnd::Succeeded { cycles } => {
                tracing::info!(order = order.key(), session, cycles, "proven");
                b.breaker.lock().expect("breaker lock").record_success(now);
                order.state = OrderState::Proved;
                order.updated_at = now;
                order.times.proved = Some(now_ms());
                b.save(&order, OrderState::Proving).await?;
                return Ok(());
            }
            SessionEnd::Failed { status, error } => {
                tracing::warn!(order = order.key(), session, "proof ended {status}: {error}");
                b.breaker.lock().expect("breaker lock").record_failure(now);
                order.attempts += 1;
                order.session_id = None;
                order.updated_at = now;
                let chain_now = b.chain.now().await?;
                if order.attempts > cfg.prover.proof_retry_count || chain_now >= order.expiry {
                    order.state = OrderState::Failed;
                    order.error =
                        Some(format!("proving failed {} times: {status}: {error}", order.attempts));
                    b.save(&order, OrderState::Proving).await?;
                    return Ok(());
                }
                if !b.save(&order, OrderState::Proving).await? {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(cfg.prover.proof_retry_sleep_ms)).await;
            }
        }
    }
}

/// Uploads the order's program and input and starts its proving session; the session id is
/// stored before anything waits on it.
async fn start(b: &Broker, order: &mut Order) -> Result<String> {
    let input = b.fetcher(&order.request).input(&order.request.input).await?;
    let kind = params::receipt_kind(&b.config());
    let request = &order.request;
    let session = with_retries(b, "starting a proof", || async {
        let (image, input_id) = pricer::upload(b, request, input.clone()).await?;
        b.cluster.start(&image, &input_id, &[], false, None, kind).await
    })
    .await?;
    tracing::info!(order = order.key(), session, ?kind, "proving");
    order.session_id = Some(session.clone());
    order.updated_at = wall_clock();
    order.times.proving = Some(now_ms());
    b.save(order, OrderState::Proving).await?;
    Ok(session)
}
