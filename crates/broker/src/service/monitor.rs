//! Housekeeping: the reaper fails committed orders past their expiry (plus
//! `reaper_grace_period_secs`) and stops their sessions; the health check feeds the circuit
//! breaker; the balance monitor logs warnings and errors at the configured thresholds and
//! forgets old skipped orders.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::U256;

use super::context::{Broker, wall_clock};
use super::retry::every;
use crate::error::{BrokerError, Result};
use crate::order::OrderState;

pub async fn reaper(b: Arc<Broker>) -> BrokerError {
    let interval = || b.config().prover.reaper_interval_secs.max(1).saturating_mul(1000);
    every(&b, "reaping orders", interval, || async { reap(&b).await.map(drop) }).await
}

/// Fails every committed order whose expiry passed more than the grace period ago.
pub async fn reap(b: &Broker) -> Result<usize> {
    let now = b.chain.now().await?;
    let grace = b.config().prover.reaper_grace_period_secs;
    let mut reaped = 0;
    for mut order in b.db.committed().await? {
        if !should_reap(order.state, order.expiry, grace, now) {
            continue;
        }
        if let Some(session) = &order.session_id {
            let _ = b.cluster.stop(session).await;
        }
        let from = order.state;
        order.state = OrderState::Failed;
        order.error = Some(format!("expired at {} (now {now})", order.expiry));
        order.updated_at = wall_clock();
        if b.save(&order, from).await? {
            tracing::warn!(order = order.key(), "reaped: expired");
            reaped += 1;
        }
    }
    Ok(reaped)
}

/// Whether a committed order in `state` expiring at `expiry` is given up at `now`: only past
/// the grace period, and never while its fulfilment is being sent (the chain decides that one
/// at the next start).
pub fn should_reap(state: OrderState, expiry: u64, grace: u64, now: u64) -> bool {
    state.is_committed() && state != OrderState::Fulfilling && expiry.saturating_add(grace) < now
}

/// Asks the cluster for its health every few seconds (an unhealthy cluster stops new locks)
/// and refreshes the gauges.
pub async fn health(b: Arc<Broker>) -> BrokerError {
    loop {
        let healthy = b.cluster.healthy().await;
        let allowed = {
            let mut breaker = b.breaker.lock().expect("breaker lock");
            if !healthy && breaker.unhealthy_since().is_none() {
                tracing::warn!("the cluster does not answer: no new locks until it does");
            }
            breaker.record_health(healthy, wall_clock());
            breaker.allows_locking(wall_clock()).is_ok()
        };
        crate::metrics::locking_allowed(allowed);
        if let Err(e) = gauges(&b).await {
            tracing::warn!("refreshing metrics: {e}");
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn gauges(b: &Broker) -> Result<()> {
    crate::metrics::orders(&b.db.counts().await?);
    let at_risk =
        b.db.committed()
            .await?
            .iter()
            .filter(|o| o.kind == crate::pricing::FulfillmentType::LockAndFulfill)
            .filter(|o| o.state != OrderState::Locking)
            .fold(U256::ZERO, |sum, o| sum + o.request.offer.lockCollateral);
    crate::metrics::collateral_at_risk(at_risk);
    Ok(())
}

pub async fn balances(b: Arc<Broker>) -> BrokerError {
    loop {
        if let Err(e) = check_balances(&b).await {
            tracing::warn!("reading balances: {e}");
        }
        let _ = b.db.prune_skipped(wall_clock().saturating_sub(24 * 3600)).await;
        let _ = b.db.prune_requests(wall_clock().saturating_sub(7 * 24 * 3600)).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}

async fn check_balances(b: &Broker) -> Result<()> {
    let m = &b.config().market;
    let native = b.chain.native_balance().await?;
    warn_below("gas balance (wei)", native, m.balance_warn_threshold, m.balance_error_threshold);
    let collateral = b.chain.collateral_balance().await?;
    warn_below(
        "collateral balance",
        collateral,
        m.collateral_balance_warn_threshold,
        m.collateral_balance_error_threshold,
    );
    Ok(())
}

fn warn_below(what: &str, balance: U256, warn: Option<U256>, error: Option<U256>) {
    if error.is_some_and(|t| balance < t) {
        tracing::error!(%balance, "{what} is below balance error threshold");
    } else if warn.is_some_and(|t| balance < t) {
        tracing::warn!(%balance, "{what} is below balance warn threshold");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_committed_orders_past_the_grace_are_reaped() {
        use OrderState::*;
        let table = [
            ("proving, within the grace", Proving, 100, 50, 150, false),
            ("proving, past the grace", Proving, 100, 50, 151, true),
            ("locking past the grace: the lock deadline is long gone", Locking, 100, 0, 101, true),
            ("pending, past the grace", PendingProving, 100, 10, 200, true),
            ("proved, past the grace", Proved, 100, 10, 200, true),
            ("fulfilling is left to the chain", Fulfilling, 100, 0, 10_000, false),
            ("done is not committed", Done, 100, 0, 10_000, false),
            ("no overflow", Proving, u64::MAX, 10, u64::MAX, false),
        ];
        for (name, state, expiry, grace, now, want) in table {
            assert_eq!(should_reap(state, expiry, grace, now), want, "{name}");
        }
    }
}
