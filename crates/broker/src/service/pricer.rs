//! Preflight and pricing: screens a request, executes it on the cluster (execute-only, at most
//! `max_concurrent_preflights` at once, cached by image, input and limit), prices it, and
//! queues it for the committer or records why it was skipped.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{B256, Bytes, U256};
use sha2::{Digest, Sha256};
use tiffin_market::ProofRequest;

use super::context::{Broker, wall_clock};
use super::inputs::{forget_input, upload};
use super::preflights::{Preflight, PreflightKey};
use super::priced::{Priced, PricedInput};
use super::retry::with_retries;
use super::speed;
use crate::cluster::{ReceiptKind, SessionEnd};
use crate::error::{BrokerError, Result};
use crate::fetch::Fetcher;
use crate::order::{Order, OrderState, StageTimes, now_ms, order_key};
use crate::params;
use crate::pricing::{self, Decision, FulfillmentType, MarketSnapshot, Skip, SkipCode};
use crate::pricing_queue::{MAX_WAITING, Refused, Waiting};

/// The longest a preflight may hold its slot (its cycles are capped too; this bounds a slow or
/// stuck cluster).
const PREFLIGHT_WALL: Duration = Duration::from_secs(600);

/// Queues `request` for pricing; a preflight slot takes the waiting request that ranks first
/// under `order_pricing_priority` ([`crate::pricing_queue`]), not necessarily this one.
pub fn consider(b: &Arc<Broker>, request: ProofRequest, signature: Bytes, kind: FulfillmentType) {
    let id = request.id;
    let priority = b.priority_requestors().contains(&request.requestor());
    let waiting = Waiting { request, signature, kind, priority, observed_at: now_ms() };
    match b.pricing.push(waiting) {
        Ok(()) => {}
        Err(Refused::AlreadyWaiting) => return,
        Err(Refused::RequestorFull) => {
            tracing::warn!(%id, "this requestor has too many requests waiting to be priced; dropped");
            return;
        }
        Err(Refused::Full) => {
            tracing::warn!(%id, waiting = MAX_WAITING, "too many requests wait to be priced; dropped");
            return;
        }
    }
    let b = b.clone();
    tokio::spawn(async move {
        let slots = b.preflights.slots(b.config().market.max_concurrent_preflights);
        let Ok(_slot) = slots.acquire_owned().await else { return };
        let mode = params::pricing_priority(&b.config());
        let Some(next) = b.pricing.take_next(mode, now_ms()) else { return };
        let id = next.request.id;
        if let Err(e) = price_one(&b, next.request, next.signature, next.kind).await {
            tracing::warn!(%id, "pricing failed: {e}");
        }
    });
}

async fn price_one(
    b: &Arc<Broker>,
    request: ProofRequest,
    signature: Bytes,
    kind: FulfillmentType,
) -> Result<()> {
    let key = order_key(request.id, kind);
    if b.db.get(&key).await?.is_some() || b.is_queued(&key) {
        return Ok(());
    }
    let seen = now_ms();
    let cfg = b.config();
    let mut params = params::pricing(&cfg);
    params.priority_requestors = b.priority_requestors();
    params.peak_prove_khz = speed::khz(b);
    let snap = snapshot(b).await?;
    let size = Fetcher::inline_size(&request.input);
    let limits = match pricing::screen(&request, kind, &params, &snap, size) {
        Ok(limits) => limits,
        Err(skip) => return record_skip(b, request, signature, kind, skip).await,
    };
    let (preflight, input) = match preflight(b, &request, limits.preflight_cycles).await {
        Ok(p) => p,
        Err(e) => {
            // The cluster reports a run past its cycle limit with the zkVM's code.
            if e.to_string().contains("TIFFIN-ZKVM-003") {
                let skip = pricing::over_limit(&request, kind, &params, &snap, e.to_string());
                return record_skip(b, request, signature, kind, skip).await;
            }
            let skip = match &e {
                BrokerError::TooLarge { .. } => SkipCode::InputTooLarge,
                BrokerError::UrlRefused { .. } => SkipCode::UrlRefused,
                BrokerError::Fetch { .. } => SkipCode::FetchFailed,
                _ => SkipCode::PreflightFailed,
            };
            let skip = Skip::new(skip, e.to_string());
            return record_skip(b, request, signature, kind, skip).await;
        }
    };
    let priority = params.priority_requestors.contains(&request.requestor());
    let queued = |at: u64, expiry: u64, price: U256| Priced {
        request: request.clone(),
        signature: signature.clone(),
        kind,
        at,
        expiry,
        cycles: preflight.cycles,
        journal: preflight.journal.clone(),
        input: input.clone(),
        price,
        priority,
        observed_at: snap.now,
        times: StageTimes { seen: Some(seen), priced: Some(now_ms()), ..Default::default() },
    };
    match pricing::price(&request, kind, &params, &snap, preflight.cycles, &preflight.journal) {
        Decision::Skip(skip) => {
            forget_input(b, Some(&input.id)).await;
            record_skip(b, request, signature, kind, skip).await?
        }
        Decision::Lock { at, floor, expiry } => {
            tracing::info!(id = %request.id, at, %floor, cycles = preflight.cycles, "will lock");
            b.enqueue(queued(at, expiry, floor));
        }
        Decision::ProveAfterLockExpire { at, expiry, reward } => {
            tracing::info!(id = %request.id, at, %reward, "will race after the lock lapses");
            b.enqueue(queued(at, expiry, reward));
        }
    }
    Ok(())
}

/// The chain state pricing needs.
pub async fn snapshot(b: &Broker) -> Result<MarketSnapshot> {
    let committed = b.db.committed().await?.len() as u64;
    Ok(MarketSnapshot {
        now: b.chain.now().await?,
        gas_price: b.chain.gas_price().await?,
        native_balance: b.chain.native_balance().await?,
        collateral_balance: b.chain.collateral_balance().await?,
        reserved_gas: committed * b.config().market.fulfill_gas_estimate,
    })
}

async fn record_skip(
    b: &Broker,
    request: ProofRequest,
    signature: Bytes,
    kind: FulfillmentType,
    skip: Skip,
) -> Result<()> {
    tracing::info!(id = %request.id, code = skip.code.code(), "skipped: {skip}");
    crate::metrics::skipped(skip.code.code());
    let mut order = Order::new(request, signature, kind, wall_clock());
    order.state = OrderState::Skipped;
    order.error = Some(skip.to_string());
    b.db.insert(&order).await?;
    Ok(())
}

/// Executes `request` on the cluster with a cycle limit (the measurement is cached by image,
/// input digest and limit); the input is uploaded once and kept for the proof. On an error
/// the uploaded input is deleted again.
async fn preflight(
    b: &Broker,
    request: &ProofRequest,
    limit: u64,
) -> Result<(Preflight, PricedInput)> {
    let fetcher = b.fetcher(request);
    let input = fetcher.input(&request.input).await?;
    let sha256 = B256::from_slice(&Sha256::digest(&input));
    let (image_hex, id) = with_retries(b, "uploading a preflight's input", || async {
        upload(b, &fetcher, request, input.clone()).await
    })
    .await?;
    let uploaded = PricedInput { id, sha256 };
    match execute(b, &image_hex, &uploaded, (request.requirements.imageId, sha256, limit)).await {
        Ok(measured) => Ok((measured, uploaded)),
        Err(e) => {
            forget_input(b, Some(&uploaded.id)).await;
            Err(e)
        }
    }
}

async fn execute(
    b: &Broker,
    image_hex: &str,
    input: &PricedInput,
    key: PreflightKey,
) -> Result<Preflight> {
    if let Some(hit) = b.preflights.get(&key) {
        return Ok(hit);
    }
    let cfg = b.config();
    let limit = Some(key.2);
    let session = with_retries(b, "starting a preflight", || async {
        b.cluster.start(image_hex, &input.id, &[], true, limit, ReceiptKind::Succinct).await
    })
    .await?;
    let poll = Duration::from_millis(cfg.prover.status_poll_ms);
    let waited = tokio::time::timeout(
        PREFLIGHT_WALL,
        b.cluster.wait(&session, poll, cfg.prover.status_poll_retry_count),
    )
    .await;
    let Ok(end) = waited else {
        let _ = b.cluster.stop(&session).await;
        return Err(BrokerError::Proving(format!(
            "preflight {session} ran longer than {} s; stopped",
            PREFLIGHT_WALL.as_secs()
        )));
    };
    match end? {
        SessionEnd::Succeeded { cycles } => {
            let result = Preflight { cycles, journal: b.cluster.journal(&session).await? };
            b.preflights.put(key, result.clone());
            Ok(result)
        }
        SessionEnd::Failed { status, error } => {
            Err(BrokerError::Proving(format!("preflight {session} ended {status}: {error}")))
        }
    }
}
