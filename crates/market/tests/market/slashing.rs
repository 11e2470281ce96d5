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

    let burned = LOCK_COLLATERAL / 2;
    let slashed = event::<ProverSlashed>(&receipt);
    assert_eq!(slashed.locker, m.prover.address());
    assert_eq!(slashed.burned, u(burned));
    assert_eq!(slashed.requestorRefund, u(MAX_PRICE));
    assert_eq!(m.balances(m.requestor.address()).await, (u(DEPOSIT), u(LOCK_COLLATERAL - burned)));
    assert_eq!(m.balances(m.prover.address()).await, (u(0), u(COLLATERAL - LOCK_COLLATERAL)));
    assert_eq!(m.balances(m.other.address()).await, (u(0), u(COLLATERAL)), "slasher gets nothing");
    assert_eq!(m.other.status(request.id).await.unwrap(), RequestStatus::Slashed);
    assert_eq!(reverted(m.other.slash(request.id).await), "NotSlashable");
    m.assert_books_balance(&[request.id]).await;
}
