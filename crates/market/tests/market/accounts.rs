use crate::support::*;
use alloy::primitives::{Bytes, U256};
use std::time::Duration;
use tiffin_market::request::request_id;
use tiffin_market::{Input, MarketError, Predicate, ProofRequest};

#[tokio::test]
async fn deposits_and_withdrawals_move_exact_amounts() {
    let m = Market::start().await;
    let prover = m.prover.address();

    m.prover.deposit(u(700)).await.unwrap();
    m.prover.withdraw(u(200)).await.unwrap();
    m.prover.withdraw_collateral(u(4_000)).await.unwrap();

    assert_eq!(m.balances(prover).await, (u(500), u(COLLATERAL - 4_000)));
    assert_eq!(m.prover.token_balance_of(prover).await.unwrap(), u(4_000));
    assert_eq!(reverted(m.prover.withdraw(u(501)).await), "InsufficientBalance");
    assert_eq!(reverted(m.prover.withdraw_collateral(u(6_001)).await), "InsufficientCollateral");
    m.assert_books_balance(&[]).await;
}

#[tokio::test]
async fn insufficient_balance_or_collateral_is_refused_without_side_effects() {
    let mut m = Market::start().await;
    let pauper = m.chain.client(PAUPER_KEY).await.unwrap();

    // A requestor without funds can neither submit nor have its signed request locked.
    let broke = ProofRequest::new(
        request_id(pauper.address(), 1),
        IMAGE_ID,
        Predicate::any(),
        "http://127.0.0.1:1/guest.bin",
        Input::url("http://127.0.0.1:1/input.bin"),
        m.offer(),
    );
    assert_eq!(reverted(pauper.submit_request(&broke, U256::ZERO).await), "InsufficientBalance");
    let signature = pauper.sign_request(&broke).unwrap();
    m.at(0).await;
    assert_eq!(reverted(m.prover.lock_request(&broke, signature).await), "InsufficientBalance");
    // Nor may anyone submit in another requestor's name.
    assert_eq!(reverted(m.prover.submit_request(&broke, U256::ZERO).await), "NotRequestor");

    // A prover without collateral cannot lock.
    let request = m.request(b"journal");
    m.requestor.submit_request(&request, U256::ZERO).await.unwrap();
    let no_collateral = pauper.lock_request(&request, Bytes::new()).await;
    assert_eq!(reverted(no_collateral), "InsufficientCollateral");

    assert_eq!(m.balances(pauper.address()).await, (U256::ZERO, U256::ZERO));
    assert_eq!(m.balances(m.requestor.address()).await.0, u(DEPOSIT - MAX_PRICE));
    m.assert_books_balance(&[broke.id, request.id]).await;
}

#[tokio::test]
async fn a_transaction_that_is_not_mined_times_out_and_may_land_later() {
    let m = Market::start().await;
    let impatient =
        m.chain.client(OTHER_KEY).await.unwrap().with_tx_timeout(Duration::from_millis(300));
    m.chain.set_automine(false).await.unwrap();

    let stuck = impatient.deposit(u(100)).await;

    assert!(matches!(stuck, Err(MarketError::TxTimeout { action: "deposit", .. })), "{stuck:?}");
    assert_eq!(m.balances(m.other.address()).await.0, U256::ZERO, "not mined yet");
    m.chain.set_automine(true).await.unwrap();
    m.mine(0).await;
    assert_eq!(m.balances(m.other.address()).await.0, u(100), "mined after the timeout");
    // The key's next transaction gets the next nonce (nonces are read from the node).
    m.other.deposit(u(1)).await.unwrap();
    assert_eq!(m.balances(m.other.address()).await.0, u(101));
    m.assert_books_balance(&[]).await;
}
