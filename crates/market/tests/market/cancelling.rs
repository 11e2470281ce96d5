//! A requestor closes its own requests before anyone locks them (finding 15 of the market
//! security review: a signature once given out could not be taken back).

use crate::support::*;
use alloy::primitives::{Bytes, U256};
use tiffin_market::RequestStatus;
use tiffin_market::bindings::ProofMarket::RequestCancelled;

#[tokio::test]
async fn a_cancelled_off_chain_request_can_no_longer_be_locked_with_its_signature() {
    let mut m = Market::start().await;
    let request = m.request(b"journal");
    let signature = m.requestor.sign_request(&request).unwrap();

    let receipt = m.requestor.cancel(request.id).await.unwrap();
    m.at(0).await;
    let lock = m.prover.lock_request(&request, signature).await;

    assert_eq!(reverted(lock), "RequestClosed");
    assert_eq!(event::<RequestCancelled>(&receipt).refund, U256::ZERO);
    assert_eq!(m.prover.status(request.id).await.unwrap(), RequestStatus::Cancelled);
    assert_eq!(m.balances(m.requestor.address()).await.0, u(DEPOSIT), "nothing was taken");
    assert_eq!(m.balances(m.prover.address()).await.1, u(COLLATERAL));
    assert_eq!(
        reverted(m.requestor.submit_request(&request, U256::ZERO).await),
        "RequestExists",
        "a cancelled id is never reused"
    );
    m.assert_books_balance(&[request.id]).await;
}

#[tokio::test]
async fn a_cancelled_on_chain_request_returns_its_escrow_and_cannot_be_locked() {
    let mut m = Market::start().await;
    let request = m.request(b"journal");
    m.requestor.submit_request(&request, U256::ZERO).await.unwrap();
    assert_eq!(m.balances(m.requestor.address()).await.0, u(DEPOSIT - MAX_PRICE));

    let receipt = m.requestor.cancel(request.id).await.unwrap();

    assert_eq!(event::<RequestCancelled>(&receipt).refund, u(MAX_PRICE));
    assert_eq!(m.balances(m.requestor.address()).await.0, u(DEPOSIT));
    m.at(0).await;
    assert_eq!(reverted(m.prover.lock_request(&request, Bytes::new()).await), "RequestClosed");
    assert_eq!(reverted(m.requestor.refund(request.id).await), "NotRefundable");
    m.assert_books_balance(&[request.id]).await;
}

#[tokio::test]
async fn only_the_requestor_cancels_and_only_before_a_lock() {
    let mut m = Market::start().await;
    let unused = m.request(b"a");
    let locked = m.submit_and_lock(b"b", 0).await;

    let stranger = m.other.cancel(unused.id).await;
    assert_eq!(reverted(stranger), "NotRequestor");
    assert_eq!(reverted(m.requestor.cancel(locked.id).await), "NotCancellable");
    m.requestor.cancel(unused.id).await.unwrap();
    assert_eq!(reverted(m.requestor.cancel(unused.id).await), "NotCancellable");

    assert_eq!(m.prover.status(locked.id).await.unwrap(), RequestStatus::Locked);
    assert_eq!(m.prover.status(unused.id).await.unwrap(), RequestStatus::Cancelled);
    m.assert_books_balance(&[unused.id, locked.id]).await;
}
