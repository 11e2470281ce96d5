//! Commitment: priced requests wait here until their time comes (a lock only once the price
//! ramp reaches our floor, a race only once the other prover's lock lapsed), then are taken in
//! `order_commitment_priority` order while the capacity model admits them and the circuit
//! breaker allows locking. A lock is recorded as `Locking` before its transaction is sent,
//! so a crash in between is reconciled from the chain at the next start.

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use tiffin_market::RequestStatus;

use super::context::{Broker, lost_to, wall_clock};
use super::inputs::forget_input;
use super::priced::Priced;
use super::retry::every;
use super::speed;
use crate::capacity::{self, Admission, Candidate, CommittedWork};
use crate::chain::LockOutcome;
use crate::error::{BrokerError, Result};
use crate::order::{Order, OrderState, now_ms};
use crate::params;
use crate::pricing::FulfillmentType;

pub async fn run(b: Arc<Broker>) -> BrokerError {
    every(&b, "committing orders", || 500, || step(&b)).await
}

async fn step(b: &Arc<Broker>) -> Result<()> {
    let now = b.chain.now().await?;
    let ready = take_ready(b, now);
    if ready.is_empty() {
        return Ok(());
    }
    let cfg = b.config();
    let mut cap = params::capacity(&cfg);
    cap.peak_prove_khz = speed::khz(b);
    let mut later = Vec::new();
    for p in ordered(ready, &cfg, cap.peak_prove_khz, now) {
        if p.kind == FulfillmentType::LockAndFulfill
            && let Err(open) = b.breaker.lock().expect("breaker lock").allows_locking(wall_clock())
        {
            tracing::warn!(id = %p.request.id, "not locking: {}", open.reason);
            later.push(p);
            continue;
        }
        let work = committed_work(b).await?;
        let admission = capacity::admit(&work, p.cycles, p.expiry, &cap, now);
        tracing::debug!(id = %p.request.id, committed = work.len(), ?admission, "capacity");
        match admission {
            Admission::Admit => commit(b, p).await?,
            Admission::Wait(_) => later.push(p),
            Admission::Drop(reason) => {
                tracing::info!(id = %p.request.id, code = reason.code(), "dropped: {reason}");
                record(b, &p, OrderState::Skipped, format!("{}: {reason}", reason.code())).await?;
            }
        }
    }
    for p in later {
        b.enqueue(p);
    }
    Ok(())
}

/// Takes the queued requests whose time has come; drops those past their expiry.
fn take_ready(b: &Broker, now: u64) -> Vec<Priced> {
    let mut queue = b.queue.lock().expect("queue lock");
    let (ready, waiting): (Vec<_>, Vec<_>) = queue.drain(..).partition(|p| p.at <= now);
    *queue = waiting;
    ready.into_iter().filter(|p| p.expiry > now).collect()
}

fn ordered(
    ready: Vec<Priced>,
    cfg: &crate::config::BrokerConfig,
    khz: Option<u64>,
    now: u64,
) -> Vec<Priced> {
    let mut candidates: Vec<Candidate> = ready
        .iter()
        .map(|p| Candidate {
            id: p.request.id,
            expiry: p.expiry,
            price: p.price,
            cycles: p.cycles,
            priority: p.priority,
            observed_at: p.observed_at,
        })
        .collect();
    capacity::order_for_commitment(
        &mut candidates,
        params::commitment_priority(cfg),
        now,
        khz,
        now,
    );
    let mut ready = ready;
    candidates
        .into_iter()
        .filter_map(|c| {
            let i = ready.iter().position(|p| p.request.id == c.id)?;
            Some(ready.swap_remove(i))
        })
        .collect()
}

async fn committed_work(b: &Broker) -> Result<Vec<CommittedWork>> {
    Ok(b.db
        .committed()
        .await?
        .into_iter()
        .filter(|o| {
            matches!(
                o.state,
                OrderState::Locking | OrderState::PendingProving | OrderState::Proving
            )
        })
        .map(|o| CommittedWork {
            cycles: o.cycles,
            started_at: (o.state == OrderState::Proving).then_some(o.updated_at),
            expiry: o.expiry,
        })
        .collect())
}

async fn commit(b: &Broker, p: Priced) -> Result<()> {
    let info = b.db.request_info(p.request.id).await?;
    if info.fulfilled {
        return Ok(());
    }
    match p.kind {
        FulfillmentType::FulfillAfterLockExpire => {
            record(b, &p, OrderState::PendingProving, String::new()).await
        }
        FulfillmentType::LockAndFulfill => lock(b, p).await,
    }
}

async fn lock(b: &Broker, p: Priced) -> Result<()> {
    let mut order = new_order(&p, OrderState::Locking);
    if !b.db.insert(&order).await? {
        return Ok(());
    }
    b.breaker.lock().expect("breaker lock").record_lock(wall_clock());
    let outcome = b.chain.lock(&p.request, p.signature.clone()).await;
    order.updated_at = wall_clock();
    let label = match &outcome {
        LockOutcome::Locked { .. } => "locked",
        LockOutcome::LostTo(_) => "lost",
        LockOutcome::Failed(_) => "failed",
        LockOutcome::InDoubt(_) => "in_doubt",
    };
    match outcome {
        LockOutcome::Locked { price } => {
            tracing::info!(id = %p.request.id, %price, "locked");
            order.mark_locked(price);
        }
        LockOutcome::LostTo(locker) => {
            forget_input(b, order.input_id.as_deref()).await;
            order.state = OrderState::Failed;
            order.error = Some(format!("locked by {locker} first"));
        }
        LockOutcome::InDoubt(e) => {
            // Collateral may be at stake: never give up before the lock deadline.
            tracing::warn!(id = %p.request.id, "lock in doubt, checking every poll: {e}");
            order.error = Some(format!("lock in doubt: {e}"));
        }
        LockOutcome::Failed(e) => {
            tracing::warn!(id = %p.request.id, "lock failed: {e}");
            order.state = OrderState::Failed;
            order.error = Some(format!("lock failed: {e}"));
        }
    }
    crate::metrics::lock(label, &order.times);
    b.save(&order, OrderState::Locking).await?;
    Ok(())
}

fn new_order(p: &Priced, state: OrderState) -> Order {
    let mut order = Order::new(p.request.clone(), p.signature.clone(), p.kind, wall_clock());
    order.state = state;
    order.cycles = p.cycles;
    order.journal = Some(p.journal.clone());
    order.input_id = Some(p.input.id.clone());
    order.input_sha256 = Some(p.input.sha256);
    order.times = p.times;
    if state == OrderState::PendingProving {
        order.times.locked = Some(now_ms());
    }
    order
}

async fn record(b: &Broker, p: &Priced, state: OrderState, error: String) -> Result<()> {
    if state == OrderState::Skipped {
        forget_input(b, Some(&p.input.id)).await;
    }
    let mut order = new_order(p, state);
    order.error = (!error.is_empty()).then_some(error);
    b.db.insert(&order).await?;
    Ok(())
}

/// At start: settles orders a crash left between two steps. A `Locking` order is locked if
/// the chain says we hold the lock; a `Fulfilling` one is done if the chain says fulfilled.
pub async fn recover(b: &Broker) -> Result<()> {
    for mut order in b.db.in_states(&[OrderState::Locking, OrderState::Fulfilling]).await? {
        let from = order.state;
        let record = b.chain.client().record(order.id()).await?;
        let status = b.chain.status(order.id()).await?;
        order.updated_at = wall_clock();
        order.state = match (from, status) {
            (OrderState::Locking, _) if record.locker == b.chain.address() => {
                order.lock_price = U256::from(record.price);
                OrderState::PendingProving
            }
            // Not mined (yet): the committer checks it every poll until the lock deadline.
            (OrderState::Locking, _) if record.locker == Address::ZERO => OrderState::Locking,
            (OrderState::Locking, _) => {
                order.error = Some(format!("locked by {} first", record.locker));
                OrderState::Failed
            }
            (_, RequestStatus::Fulfilled) => match b.fulfilled_by_other(order.id()).await? {
                Some(other) => {
                    order.error = Some(lost_to(other));
                    OrderState::Failed
                }
                None => OrderState::Done,
            },
            _ => OrderState::Proved,
        };
        tracing::info!(order = order.key(), %from, to = %order.state, "recovered");
        b.save(&order, from).await?;
    }
    Ok(())
}

/// Watches the locks in doubt every half second: a work stage, so it goes on while a
/// shutdown drains the committed orders (a `Locking` order is one of them).
pub async fn watch_locks(b: Arc<Broker>) -> BrokerError {
    every(
        &b,
        "checking locks in doubt",
        || 500,
        || async {
            let now = b.chain.now().await?;
            recheck_locking(&b, now).await
        },
    )
    .await
}

/// Orders left `Locking` (a lock in doubt, or a restart while it was pending): the chain is
/// asked who holds each lock; ours proceeds to proving, another's fails, and one nobody holds
/// stays until its lock deadline.
async fn recheck_locking(b: &Broker, now: u64) -> Result<()> {
    for mut order in b.db.in_states(&[OrderState::Locking]).await? {
        let record = b.chain.client().record(order.id()).await?;
        order.updated_at = wall_clock();
        if record.locker == b.chain.address() {
            tracing::warn!(order = order.key(), "the lock in doubt was mined: proving it");
            order.mark_locked(U256::from(record.price));
        } else if record.locker != Address::ZERO {
            order.state = OrderState::Failed;
            order.error = Some(format!("locked by {} first", record.locker));
        } else if now >= order.expiry {
            order.state = OrderState::Failed;
            order.error = Some("the lock was never mined before the lock deadline".into());
        } else {
            continue;
        }
        b.save(&order, OrderState::Locking).await?;
    }
    Ok(())
}
