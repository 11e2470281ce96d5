//! Aggregation: a batch of two or more proved orders is fulfilled under one set-builder root.
//! The set-builder guest verifies every order's receipt by composition and commits the root of
//! the Merkle tree of their claims; the verifier service seals that root once; one transaction
//! (`single_txn_fulfill`, else two) submits the root and fulfils every order with its Merkle
//! path. One seal and one transaction instead of one of each per order.
//!
//! The set-builder runs on the cluster like any session: the orders' receipts are uploaded as
//! its assumptions. Its program is `set_builder_guest_path`, else the one at
//! `set_builder_default_image_url`, else the bundled one; it must be the image the market takes
//! roots from (read from the chain). The proof must end before the earliest order's expiry less
//! `block_deadline_buffer_secs`, or it is stopped; any failure leaves the caller to fulfil the
//! orders one by one, so aggregation never costs an order.

use std::time::Duration;

use alloy::primitives::B256;
use tiffin_market::claim::{claim_digest, journal_digest};
use tiffin_market::merkle::MerkleTree;
use tiffin_market::{Fulfillment, RequestStatus};

use super::context::Broker;
use crate::cluster::{NewSession, SessionEnd};
use crate::error::{BrokerError, Result};
use crate::order::{Order, now_ms};
use crate::params;

/// The largest set-builder program fetched from `set_builder_default_image_url`.
const MAX_SET_BUILDER_BYTES: u64 = 64 << 20;

fn err(what: impl std::fmt::Display) -> BrokerError {
    BrokerError::Aggregation(what.to_string())
}

/// Fulfils `orders` (each proved, each with its journal) under one set-builder root; orders
/// the chain shows fulfilled already are left out of the tree. Returns when the root was
/// sealed (milliseconds since the epoch; `None` when nothing was left to fulfil). Every error
/// is a [`BrokerError::Aggregation`] (TIFFIN-BROKER-017) carrying its cause.
pub async fn fulfil(b: &Broker, orders: &[Order]) -> Result<Option<u64>> {
    aggregate(b, orders).await.map_err(|e| match e {
        BrokerError::Aggregation(_) => e,
        cause => err(cause),
    })
}

async fn aggregate(b: &Broker, orders: &[Order]) -> Result<Option<u64>> {
    let mut open = Vec::new();
    for order in orders {
        if b.chain.status(order.id()).await? != RequestStatus::Fulfilled {
            open.push(order);
        }
    }
    if open.is_empty() {
        return Ok(None);
    }
    let claims: Vec<([u8; 32], &[u8])> = open
        .iter()
        .map(|o| {
            let journal =
                o.journal.as_deref().ok_or_else(|| err(format!("{}: no journal", o.key())))?;
            Ok((o.request.requirements.imageId.0, journal))
        })
        .collect::<Result<_>>()?;
    let deadline = open.iter().map(|o| o.expiry).min().unwrap_or(0);
    let receipt = prove_root(b, &open, &claims, deadline).await?;
    let sealed = b.verifier.attest_root(receipt, b.chain.address()).await?;
    let sealed_at = now_ms();
    let leaves = claims
        .iter()
        .map(|(image, journal)| claim_digest(B256::from(*image), journal_digest(journal)))
        .collect();
    let tree = MerkleTree::new(leaves)?;
    if tree.root() != sealed.root {
        return Err(err(format!(
            "the set-builder's root {} is not the batch's {}",
            sealed.root,
            tree.root()
        )));
    }
    let mut fills = Vec::with_capacity(open.len());
    for (i, (order, (_, journal))) in open.iter().zip(&claims).enumerate() {
        fills.push(Fulfillment {
            id: order.id(),
            journal: journal.to_vec().into(),
            proof: tree.proof(i)?,
        });
    }
    let single_txn = b.config().batcher.single_txn_fulfill;
    b.chain.submit_root_and_fulfill(sealed.root, sealed.seal, fills, single_txn).await?;
    tracing::info!(orders = open.len(), root = %sealed.root, "fulfilled a batch under one root");
    Ok(Some(sealed_at))
}

/// Proves the set-builder over `orders`' receipts on the cluster; returns its receipt.
async fn prove_root(
    b: &Broker,
    orders: &[&Order],
    claims: &[([u8; 32], &[u8])],
    deadline: u64,
) -> Result<Vec<u8>> {
    let cfg = b.config();
    // The budget runs from now, before anything is uploaded: with no time left, nothing is.
    let left = deadline
        .saturating_sub(b.chain.now().await?)
        .saturating_sub(cfg.batcher.block_deadline_buffer_secs);
    if left == 0 {
        return Err(err("no time left before the earliest expiry less the buffer"));
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(left);
    let image = set_builder_image(b).await?;
    let mut assumptions = Vec::with_capacity(orders.len());
    for order in orders {
        let session = order
            .session_id
            .as_deref()
            .ok_or_else(|| err(format!("{}: proved without a session", order.key())))?;
        let receipt = b.cluster.receipt(session).await?;
        assumptions.push(b.cluster.upload_receipt(receipt).await?);
    }
    let input = b.cluster.upload_input(tiffin_guests::set_builder_input(claims)).await?;
    let kind = params::receipt_kind(&cfg);
    let session = NewSession {
        image_id: &image,
        input: &input,
        assumptions: &assumptions,
        execute_only: false,
        cycle_limit: None,
        kind,
    };
    let due = deadline.saturating_sub(cfg.batcher.block_deadline_buffer_secs);
    let session = b.cluster.start_due(session, Some(due)).await?;
    tracing::info!(session, orders = orders.len(), "proving the batch's set-builder");
    let poll = Duration::from_millis(cfg.prover.status_poll_ms);
    let waited = tokio::time::timeout_at(
        until,
        b.cluster.wait(&session, poll, cfg.prover.status_poll_retry_count),
    )
    .await;
    match waited {
        Ok(Ok(SessionEnd::Succeeded { .. })) => b.cluster.receipt(&session).await,
        Ok(Ok(SessionEnd::Failed { status, error })) => {
            Err(err(format!("set-builder session {session} ended {status}: {error}")))
        }
        Ok(Err(e)) => Err(e),
        Err(_) => {
            if let Err(e) = b.cluster.stop(&session).await {
                tracing::warn!(session, "stopping the late set-builder session: {e}");
            }
            Err(err(format!(
                "set-builder session {session} not done {left} s before the earliest expiry less the buffer"
            )))
        }
    }
}

/// The market's set-builder image (hex), uploaded to the cluster unless it has it.
async fn set_builder_image(b: &Broker) -> Result<String> {
    let id = b.chain.set_builder_image_id().await?;
    let image = hex::encode(id);
    if b.cluster.has_image(&image).await? {
        return Ok(image);
    }
    let cfg = b.config();
    let program = if let Some(path) = &cfg.prover.set_builder_guest_path {
        tokio::fs::read(path).await.map_err(|e| err(format!("reading {}: {e}", path.display())))?
    } else if let Some(url) = &cfg.market.set_builder_default_image_url {
        crate::fetch::Fetcher::operator(MAX_SET_BUILDER_BYTES, cfg.market.max_fetch_retries)
            .program(&image, url)
            .await?
    } else if tiffin_guests::SET_BUILDER.image_id_bytes() == id.0 {
        tiffin_guests::SET_BUILDER.program.to_vec()
    } else {
        return Err(err(format!(
            "the market takes roots from image {image}, not the bundled set-builder; set \
             prover.set_builder_guest_path or market.set_builder_default_image_url"
        )));
    };
    // The cluster computes the program's image id and refuses one that is not `image`.
    b.cluster.upload_image(&image, program).await?;
    Ok(image)
}
