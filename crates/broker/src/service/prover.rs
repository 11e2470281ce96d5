//! Proving: at most `max_concurrent_proofs` orders prove at once. Each order's session id is
//! stored as soon as the cluster accepts it, so a restarted broker waits for the same session
//! instead of proving again. A failed session is retried `proof_retry_count` times (never past
//! the order's expiry); every outcome feeds the circuit breaker.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::B256;
use sha2::{Digest, Sha256};

use super::context::{Broker, wall_clock};
use super::inputs::upload;
use super::retry::{every, with_retries};
use super::speed;
use crate::cluster::{NewSession, SessionEnd};
use crate::error::{BrokerError, Result};
use crate::order::{Order, OrderState, expiry_of, now_ms};
use crate::params;
use crate::pricing::{self, FulfillmentType};

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
    let params = params::pricing(&b.config());
    let live = pending.into_iter().filter_map(|mut o| {
        if o.expiry > now {
            return Some(o);
        }
        // Locked but not started before the lock deadline: proving it before the final
        // deadline still recovers half the collateral, when that pays for the cycles.
        let late = o.kind == FulfillmentType::LockAndFulfill
            && pricing::late_proof_pays(&o.request.offer, o.cycles, &params, now);
        late.then(|| {
            o.expiry = expiry_of(&o.request, FulfillmentType::FulfillAfterLockExpire);
            o
        })
    });
    for mut order in live.take(slots) {
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
                speed::refresh(b).await?;
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

/// Starts the order's proving session on the input the preflight ran on, with the preflight's
/// cycles (rounded up to whole segments, plus one) as its cycle limit; the session id is
/// stored before anything waits on it. A failed start counts as an attempt.
async fn start(b: &Broker, order: &mut Order) -> Result<String> {
    let kind = crate::receipt_size::kind_for(params::receipt_kind(&b.config()), order.cycles);
    let started = async {
        let (image, input_id) = proof_input(b, order).await?;
        let limit = Some(cycle_limit(order.cycles));
        // The cluster orders the broker's sessions by when each must be proven.
        let due = params::proof_due(&b.config(), order.expiry, speed::khz(b));
        with_retries(b, "starting a proof", || async {
            let session = NewSession {
                image_id: &image,
                input: &input_id,
                assumptions: &[],
                execute_only: false,
                cycle_limit: limit,
                kind,
            };
            b.cluster.start_due(session, Some(due)).await
        })
        .await
    };
    let session = match started.await {
        Ok(session) => session,
        Err(e) => {
            order.attempts += 1;
            order.updated_at = wall_clock();
            let give_up = matches!(e, BrokerError::InputMismatch(_))
                || order.attempts > b.config().prover.proof_retry_count;
            if give_up {
                order.state = OrderState::Failed;
                order.error =
                    Some(format!("starting the proof failed {} times: {e}", order.attempts));
            }
            b.save(order, OrderState::Proving).await?;
            return Err(e);
        }
    };
    tracing::info!(order = order.key(), session, ?kind, "proving");
    order.session_id = Some(session.clone());
    order.updated_at = wall_clock();
    order.times.proving = Some(now_ms());
    b.save(order, OrderState::Proving).await?;
    Ok(session)
}

/// The image (hex) and the cluster's input id to prove `order` on: the input the preflight
/// uploaded, or when it is gone the request's input fetched again, which must have the digest
/// the preflight saw (a requestor cannot change its input after the lock).
async fn proof_input(b: &Broker, order: &Order) -> Result<(String, String)> {
    let image = hex::encode(order.request.requirements.imageId);
    if let Some(id) = &order.input_id {
        return Ok((image, id.clone()));
    }
    let fetcher = b.fetcher(&order.request);
    let input = fetcher.input(&order.request.input).await?;
    if let Some(want) = order.input_sha256 {
        let got = B256::from_slice(&Sha256::digest(&input));
        if got != want {
            return Err(BrokerError::InputMismatch(format!(
                "the input now has SHA-256 {got}, the preflight's had {want}"
            )));
        }
    }
    upload(b, &fetcher, &order.request, input).await
}

/// The proof's cycle limit: the preflight's cycles rounded up to whole segments of the largest
/// size, plus one segment (execution is deterministic; the margin only absorbs rounding).
pub fn cycle_limit(preflight_cycles: u64) -> u64 {
    const SEGMENT: u64 = 1 << 22;
    preflight_cycles.div_ceil(SEGMENT).saturating_add(1).saturating_mul(SEGMENT)
}

#[cfg(test)]
mod tests {
    use super::cycle_limit;

    #[test]
    fn the_proof_limit_covers_the_preflight_with_one_segment_to_spare() {
        let segment = 1u64 << 22;
        let table = [
            ("empty", 0, segment),
            ("tiny", 1, 2 * segment),
            ("one segment exactly", segment, 2 * segment),
            ("just over one", segment + 1, 3 * segment),
            ("huge", u64::MAX - 1, u64::MAX - (u64::MAX % segment)),
        ];
        for (name, cycles, want) in table {
            let got = cycle_limit(cycles);
            assert!(got >= cycles, "{name}");
            if name != "huge" {
                assert_eq!(got, want, "{name}");
            }
        }
    }
}
