use crate::support::*;
use alloy::primitives::{Bytes, U256};
use alloy::signers::local::PrivateKeySigner;
use tiffin_market::bindings::ProofMarket::{LockForfeited, RequestFulfilled};
use tiffin_market::{Attestor, Predicate, RequestStatus};

#[tokio::test]
async fn the_locker_is_paid_exactly_the_locked_price_and_gets_its_collateral_back() {
    let mut m = Market::start().await;
    let journal = b"journal";
    let request = m.submit_and_lock(journal, 50).await;

    m.at(60).await;
    let receipt = m.prover.fulfill(request.id, journal.into(), m.seal(journal)).await.unwrap();

    let paid = event::<RequestFulfilled>(&receipt);
    assert_eq!(
        (paid.prover, paid.payment, paid.collateralReward),
        (m.prover.address(), u(1_500), U256::ZERO)
    );
    assert_eq!(m.balances(m.prover.address()).await, (u(1_500), u(COLLATERAL)));
    assert_eq!(m.balances(m.requestor.address()).await.0, u(DEPOSIT - 1_500));
    assert_eq!(m.prover.status(request.id).await.unwrap(), RequestStatus::Fulfilled);
    m.assert_books_balance(&[request.id]).await;

    // The prover can take its earnings out of the market.
    let before = m.chain.native_balance(m.prover.address()).await.unwrap();
    let receipt = m.prover.withdraw(u(1_500)).await.unwrap();
    let gas = U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price);
    assert_eq!(m.chain.native_balance(m.prover.address()).await.unwrap(), before + u(1_500) - gas);
    m.assert_books_balance(&[request.id]).await;
}

#[tokio::test]
async fn a_wrong_journal_a_wrong_image_or_a_bad_seal_is_rejected() {
    let mut m = Market::start().await;
    let journal = b"expected";
    let request = m.submit_and_lock(journal, 0).await;
    let id = request.id;

    let wrong_journal = m.prover.fulfill(id, b"other".into(), m.seal(b"other")).await;
    assert_eq!(reverted(wrong_journal), "JournalRejected");
    let other_image =
        m.attestor.attest_journal(OTHER_IMAGE_ID, journal, m.prover.address()).unwrap();
    let wrong_image = m.prover.fulfill(id, journal.into(), other_image).await;
    assert_eq!(reverted(wrong_image), "InvalidAttestation");
    let impostor = Attestor::new(PrivateKeySigner::random())
        .attest_journal(IMAGE_ID, journal, m.prover.address())
        .unwrap();
    assert_eq!(
        reverted(m.prover.fulfill(id, journal.into(), impostor).await),
        "InvalidAttestation"
    );
    let short = Bytes::from(m.seal(journal)[..64].to_vec());
    assert_eq!(reverted(m.prover.fulfill(id, journal.into(), short).await), "MalformedSeal");

    assert_eq!(m.prover.status(id).await.unwrap(), RequestStatus::Locked);
    m.assert_books_balance(&[id]).await;
    m.prover.fulfill(id, journal.into(), m.seal(journal)).await.unwrap();
    assert_eq!(m.prover.status(id).await.unwrap(), RequestStatus::Fulfilled);
}

#[tokio::test]
async fn prefix_and_any_predicates_accept_what_they_promise() {
    let mut m = Market::start().await;
    let prefixed = m.request_with(Predicate::prefix_match(b"tiffin:".to_vec()));
    let anything = m.request_with(Predicate::any());
    for r in [&prefixed, &anything] {
        m.requestor.submit_request(r, U256::ZERO).await.unwrap();
    }
    for (t, r) in [&prefixed, &anything].into_iter().enumerate() {
        m.at(t as u64).await;
        m.prover.lock_request(r, Bytes::new()).await.unwrap();
    }

    let short = m.prover.fulfill(prefixed.id, b"tiffin".into(), m.seal(b"tiffin")).await;
    assert_eq!(reverted(short), "JournalRejected");
    let elsewhere = m.prover.fulfill(prefixed.id, b"xtiffin:1".into(), m.seal(b"xtiffin:1")).await;
    assert_eq!(reverted(elsewhere), "JournalRejected");
    m.prover.fulfill(prefixed.id, b"tiffin:42".into(), m.seal(b"tiffin:42")).await.unwrap();
    m.prover.fulfill(anything.id, Bytes::new(), m.seal(b"")).await.unwrap();

    let paid = price_at(0) + price_at(1);
    assert_eq!(m.balances(m.prover.address()).await, (u(paid), u(COLLATERAL)));
    m.assert_books_balance(&[prefixed.id, anything.id]).await;
}

#[tokio::test]
async fn a_second_fulfilment_is_rejected() {
    let mut m = Market::start().await;
    let journal = b"journal";
    let request = m.submit_and_lock(journal, 0).await;
    m.prover.fulfill(request.id, journal.into(), m.seal(journal)).await.unwrap();

    let again = m.prover.fulfill(request.id, journal.into(), m.seal(journal)).await;

    assert_eq!(reverted(again), "AlreadyFulfilled");
    assert_eq!(m.balances(m.prover.address()).await, (u(MIN_PRICE), u(COLLATERAL)), "paid once");
    m.assert_books_balance(&[request.id]).await;
}

#[tokio::test]
async fn after_the_lock_deadline_anyone_may_fulfil_for_a_share_of_the_collateral() {
    let mut m = Market::start().await;
    let journal = b"journal";
    let request = m.submit_and_lock(journal, 0).await;

    m.at(m.lock_deadline()).await;
    let other_seal = m.seal_for(m.other.address(), journal);
    let too_soon = m.other.fulfill(request.id, journal.into(), other_seal.clone()).await;
    assert_eq!(reverted(too_soon), "NotLocker");
    m.mine(m.lock_deadline() + 1).await;
    assert_eq!(m.other.status(request.id).await.unwrap(), RequestStatus::LockExpired);

    let receipt = m.other.fulfill(request.id, journal.into(), other_seal).await.unwrap();

    let share = LOCK_COLLATERAL / 2;
    let paid = event::<RequestFulfilled>(&receipt);
    assert_eq!(
        (paid.prover, paid.payment, paid.collateralReward),
        (m.other.address(), U256::ZERO, u(share))
    );
    let forfeited = event::<LockForfeited>(&receipt);
    assert_eq!(
        (forfeited.locker, forfeited.burned),
        (m.prover.address(), u(LOCK_COLLATERAL - share))
    );
    assert_eq!(m.balances(m.other.address()).await, (U256::ZERO, u(COLLATERAL + share)));
    assert_eq!(m.balances(m.prover.address()).await, (U256::ZERO, u(COLLATERAL - LOCK_COLLATERAL)));
    assert_eq!(m.balances(m.requestor.address()).await.0, u(DEPOSIT), "requestor refunded in full");
    m.assert_books_balance(&[request.id]).await;
}

/// Finding 16 of the market security review: a seal is public once its fulfilment is in a
/// block (calldata, `ProofDelivered`) or in the mempool. It is made out to its prover, so a
/// watcher who copies it after the lock deadline cannot take the race reward with it.
#[tokio::test]
async fn a_seal_copied_from_calldata_or_events_is_useless_to_another_account() {
    let mut m = Market::start().await;
    let journal = b"journal";
    let request = m.submit_and_lock(journal, 0).await;
    m.mine(m.lock_deadline() + 1).await;

    let copied = m.other.fulfill(request.id, journal.into(), m.seal(journal)).await;

    assert_eq!(reverted(copied), "InvalidAttestation");
    assert_eq!(m.other.status(request.id).await.unwrap(), RequestStatus::LockExpired);
    assert_eq!(m.balances(m.other.address()).await.1, u(COLLATERAL));
    m.prover.fulfill(request.id, journal.into(), m.seal(journal)).await.unwrap();
    assert_eq!(
        m.balances(m.prover.address()).await.1,
        u(COLLATERAL - LOCK_COLLATERAL / 2),
        "the late locker recovers the race share with its own seal"
    );
    m.assert_books_balance(&[request.id]).await;
}
