use crate::support::*;
use alloy::primitives::Bytes;

#[tokio::test]
async fn price_ramps_from_min_to_max_and_holds_until_the_lock_deadline() {
    let m = Market::start().await;
    let offer = m.offer();
    let start = offer.biddingStart;
    let cases = [
        (start - 10, MIN_PRICE),  // before bidding starts
        (start, MIN_PRICE),       // start
        (start + 25, 1_250),      // a quarter into the ramp
        (start + 50, 1_500),      // mid-ramp
        (start + 99, 1_990),      // just before the end
        (start + 100, MAX_PRICE), // end of the ramp
        (start + 150, MAX_PRICE), // after: max until the lock deadline
        (offer.lock_deadline(), MAX_PRICE),
    ];
    for (t, expected) in cases {
        assert_eq!(
            m.requestor.price_at(&offer, t).await.unwrap(),
            u(expected),
            "t = start{:+}",
            t as i64 - start as i64
        );
        assert_eq!(offer.price_at(t), u(expected), "client mirror at {t}");
    }
}

#[tokio::test]
async fn a_lock_takes_the_price_of_its_block_and_returns_the_rest_of_the_escrow() {
    let mut m = Market::start().await;
    let request = m.request(b"journal");
    m.requestor.submit_request(&request, u(0)).await.unwrap();
    assert_eq!(
        m.balances(m.requestor.address()).await.0,
        u(DEPOSIT - MAX_PRICE),
        "maxPrice escrowed"
    );

    m.at(30).await;
    let receipt = m.prover.lock_request(&request, Bytes::new()).await.unwrap();

    let locked = event::<tiffin_market::bindings::ProofMarket::RequestLocked>(&receipt);
    assert_eq!(locked.price, u(1_300));
    assert_eq!(locked.collateral, u(LOCK_COLLATERAL));
    assert_eq!(m.balances(m.requestor.address()).await.0, u(DEPOSIT - 1_300), "change returned");
    assert_eq!(m.balances(m.prover.address()).await.1, u(COLLATERAL - LOCK_COLLATERAL));
    m.assert_books_balance(&[request.id]).await;
}
