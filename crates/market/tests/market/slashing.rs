use crate::support::*;
use tiffin_market::RequestStatus;
use tiffin_market::bindings::ProofMarket::ProverSlashed;

#[tokio::test]
async fn a_locker_that_misses_the_timeout_is_slashed_once() {
    let mut m = Market::start().await;
    let journal = b"journal";
    let request = m.submit_and_lock(journal, 100).await;

    m.at(m.deadline()).await;
    assert_eq!(reverted(m.other.slash(request.id).await), "NotSlashable");
    m.mine(m.deadline() + 1).await;
    assert_eq!(m.other.status(request.id).await.unwrap(), RequestStatus::Slashable);
    let late = m.prover.fulfill(request.id, journal.into(), m.seal(journal)).await;
    assert_eq!(reverted(late), "RequestExpired");

    let receipt = m.other.slash(request.id).await.unwrap();

    let slashed = event::<ProverSlashed>(&receipt);
    assert_eq!(slashed.locker, m.prover.address());
    assert_eq!(slashed.burned, u(LOCK_COLLATERAL), "the whole collateral is burned");
    assert_eq!(slashed.requestorRefund, u(MAX_PRICE));
    assert_eq!(m.balances(m.prover.address()).await, (u(0), u(COLLATERAL - LOCK_COLLATERAL)));
    assert_eq!(m.balances(m.other.address()).await, (u(0), u(COLLATERAL)), "slasher gets nothing");
    assert_eq!(m.other.status(request.id).await.unwrap(), RequestStatus::Slashed);
    assert_eq!(reverted(m.other.slash(request.id).await), "NotSlashable");
    m.assert_books_balance(&[request.id]).await;
}

/// Finding 5 of the market security review: a requestor who makes the locker miss (an input
/// that changes after the lock, a deadline it cannot meet, …) must not profit from the slash.
/// It gets the price it escrowed back, and not one token of the locker's collateral.
#[tokio::test]
async fn a_slash_gives_the_requestor_its_price_back_and_nothing_more() {
    let mut m = Market::start().await;
    let request = m.submit_and_lock(b"journal", RAMP_UP.into()).await;
    let before = m.balances(m.requestor.address()).await;
    assert_eq!(before, (u(DEPOSIT - MAX_PRICE), u(0)));

    m.at(m.deadline() + 1).await;
    m.requestor.slash(request.id).await.unwrap();

    assert_eq!(
        m.balances(m.requestor.address()).await,
        (u(DEPOSIT), u(0)),
        "the price back, no share of the collateral"
    );
    assert_eq!(m.requestor.token_balance_of(m.requestor.address()).await.unwrap(), u(0));
    let burned = m.deployer.market().totalCollateralBurned().call().await.unwrap();
    assert_eq!(burned, u(LOCK_COLLATERAL));
    m.assert_books_balance(&[request.id]).await;
}
