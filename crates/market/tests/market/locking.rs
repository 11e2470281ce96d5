use crate::support::*;
use alloy::primitives::{Bytes, U256};
use tiffin_market::RequestStatus;

#[tokio::test]
async fn a_second_lock_fails_and_leaves_the_first_in_place() {
    let mut m = Market::start().await;
    let request = m.submit_and_lock(b"journal", 10).await;

    let second = m.other.lock_request(&request, Bytes::new()).await;

    assert_eq!(reverted(second), "AlreadyLocked");
    assert_eq!(m.prover.record(request.id).await.unwrap().locker, m.prover.address());
    assert_eq!(
        m.balances(m.other.address()).await.1,
        u(COLLATERAL),
        "loser's collateral untouched"
    );
    assert_eq!(m.prover.status(request.id).await.unwrap(), RequestStatus::Locked);
    m.assert_books_balance(&[request.id]).await;
}

#[tokio::test]
async fn locking_is_possible_from_bidding_start_until_the_lock_deadline_only() {
    let mut m = Market::start().await;
    let early = m.request(b"a");
    let on_time = m.request(b"b");
    let late = m.request(b"c");
    for r in [&early, &on_time, &late] {
        m.requestor.submit_request(r, U256::ZERO).await.unwrap();
    }

    m.at(0).await;
    m.prover.lock_request(&early, Bytes::new()).await.unwrap();
    m.at(m.lock_deadline()).await;
    m.prover.lock_request(&on_time, Bytes::new()).await.unwrap();
    m.at(m.lock_deadline() + 1).await;
    let too_late = m.prover.lock_request(&late, Bytes::new()).await;

    assert_eq!(reverted(too_late), "LockDeadlinePassed");
    m.mine(m.lock_deadline() + 1).await;
    assert_eq!(m.prover.record(early.id).await.unwrap().price, MIN_PRICE as u128);
    assert_eq!(m.prover.record(on_time.id).await.unwrap().price, MAX_PRICE as u128);
    assert_eq!(m.prover.status(late.id).await.unwrap(), RequestStatus::Expired);
    m.assert_books_balance(&[early.id, on_time.id, late.id]).await;

    // Nobody locked it in time: the requestor takes the escrow back, once.
    let before = m.balances(m.requestor.address()).await.0;
    m.requestor.refund(late.id).await.unwrap();
    assert_eq!(m.balances(m.requestor.address()).await.0, before + u(MAX_PRICE));
    assert_eq!(reverted(m.requestor.refund(late.id).await), "NotRefundable");
    assert_eq!(m.prover.status(late.id).await.unwrap(), RequestStatus::Refunded);
    m.assert_books_balance(&[early.id, on_time.id, late.id]).await;
}

#[tokio::test]
async fn a_lock_before_bidding_starts_is_refused() {
    let mut m = Market::start().await;
    let request = m.request(b"journal");
    m.requestor.submit_request(&request, U256::ZERO).await.unwrap();

    let early = m.prover.lock_request(&request, Bytes::new()).await;

    assert_eq!(reverted(early), "RequestNotOpen");
    assert_eq!(m.prover.status(request.id).await.unwrap(), RequestStatus::Open);
    assert_eq!(m.balances(m.prover.address()).await.1, u(COLLATERAL));
    m.assert_books_balance(&[request.id]).await;
}

#[tokio::test]
async fn an_off_chain_signed_request_is_locked_directly() {
    let mut m = Market::start().await;
    let request = m.request(b"journal");
    let signature = m.requestor.sign_request(&request).unwrap();

    let forged = m.other.sign_request(&request).unwrap();
    assert_eq!(reverted(m.prover.lock_request(&request, forged).await), "InvalidRequestSignature");
    let mut tampered = request.clone();
    tampered.offer.maxPrice = u(MAX_PRICE * 10);
    let wrong = m.prover.lock_request(&tampered, signature.clone()).await;
    assert_eq!(reverted(wrong), "InvalidRequestSignature");
    assert_eq!(m.prover.status(request.id).await.unwrap(), RequestStatus::Unknown);

    m.at(RAMP_UP.into()).await;
    m.prover.lock_request(&request, signature).await.unwrap();

    assert_eq!(m.prover.status(request.id).await.unwrap(), RequestStatus::Locked);
    assert_eq!(
        m.balances(m.requestor.address()).await.0,
        u(DEPOSIT - MAX_PRICE),
        "price taken at lock"
    );
    let journal = b"journal";
    m.prover.fulfill(request.id, journal.into(), m.seal(journal)).await.unwrap();
    assert_eq!(m.balances(m.prover.address()).await, (u(MAX_PRICE), u(COLLATERAL)));
    m.assert_books_balance(&[request.id]).await;
}

#[tokio::test]
async fn malformed_requests_are_refused_at_submission_and_at_a_signed_lock() {
    let mut m = Market::start().await;
    let mut inverted = m.request(b"journal");
    inverted.offer.minPrice = u(MAX_PRICE + 1);
    let mut slow_ramp = m.request(b"journal");
    slow_ramp.offer.rampUpPeriod = LOCK_TIMEOUT + 1;
    let mut late_lock = m.request(b"journal");
    late_lock.offer.lockTimeout = TIMEOUT + 1;
    let mut short_digest = m.request(b"journal");
    short_digest.requirements.predicate.data = vec![1u8; 31].into();
    for request in [&inverted, &slow_ramp, &late_lock, &short_digest] {
        let submitted = m.requestor.submit_request(request, U256::ZERO).await;
        assert_eq!(reverted(submitted), "InvalidRequest", "{:?}", request.offer);
    }
    let signature = m.requestor.sign_request(&inverted).unwrap();
    m.at(0).await;
    assert_eq!(reverted(m.prover.lock_request(&inverted, signature).await), "InvalidRequest");
    assert_eq!(m.balances(m.requestor.address()).await.0, u(DEPOSIT));
    m.assert_books_balance(&[inverted.id, slow_ramp.id, late_lock.id, short_digest.id]).await;
}

#[tokio::test]
async fn only_the_submitted_request_can_be_locked_and_only_a_locked_one_fulfilled() {
    let mut m = Market::start().await;
    let journal = b"journal";
    let request = m.request(journal);
    m.requestor.submit_request(&request, U256::ZERO).await.unwrap();
    let unlocked = m.prover.fulfill(request.id, journal.into(), m.seal(journal)).await;
    assert_eq!(reverted(unlocked), "NotLocked");

    let mut altered = request.clone();
    altered.imageUrl = "http://127.0.0.1:1/other.bin".to_string();
    m.at(0).await;
    assert_eq!(
        reverted(m.prover.lock_request(&altered, Bytes::new()).await),
        "RequestDigestMismatch"
    );
    m.prover.lock_request(&request, Bytes::new()).await.unwrap();
    m.prover.fulfill(request.id, journal.into(), m.seal(journal)).await.unwrap();
    let relock = m.other.lock_request(&request, Bytes::new()).await;
    assert_eq!(reverted(relock), "RequestClosed");
    assert_eq!(reverted(m.requestor.submit_request(&request, U256::ZERO).await), "RequestExists");
    m.assert_books_balance(&[request.id]).await;
}

#[tokio::test]
async fn a_lock_left_pending_is_resent_at_higher_fees_and_mined_once() {
    use alloy::consensus::Transaction as _;
    use alloy::providers::Provider;
    use std::time::Duration;

    let mut m = Market::start().await;
    let request = m.request(b"journal");
    m.requestor.submit_request(&request, U256::ZERO).await.unwrap();
    m.mine(0).await;
    let extra = 3_000_000_000u128;
    let bumping = m
        .prover
        .clone()
        .with_tx_timeout(Duration::from_secs(20))
        .with_fee_bumps(Some(Duration::from_millis(300)))
        .with_lock_priority_fee(Some(extra));
    let rpc = m.chain.rpc().clone();
    let node_tip = rpc.estimate_eip1559_fees().await.unwrap().max_priority_fee_per_gas;
    let nonce = rpc.get_transaction_count(m.prover.address()).await.unwrap();

    // Nothing is mined while the lock waits: it is resent every 300 ms at higher fees.
    m.chain.set_automine(false).await.unwrap();
    let id = request.id;
    let lock = tokio::spawn(async move { bumping.lock_request(&request, Bytes::new()).await });
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    m.chain.set_automine(true).await.unwrap();
    m.chain.mine().await.unwrap();
    let receipt = lock.await.unwrap().expect("the lock is mined");

    let mined = rpc.get_transaction_by_hash(receipt.transaction_hash).await.unwrap().unwrap();
    let tip = mined.max_priority_fee_per_gas().unwrap();
    assert!(tip > node_tip + extra, "a bumped version was mined: tip {tip}");
    assert_eq!(
        rpc.get_transaction_count(m.prover.address()).await.unwrap(),
        nonce + 1,
        "one version mined, the others replaced"
    );
    assert_eq!(m.prover.record(id).await.unwrap().locker, m.prover.address());
}
