//! The verifier contract's owner rotates the attestor set (finding 12 of the market security
//! review): a new key's seals verify once it is added, a removed key's stop verifying at once,
//! and nobody else can change the set.

use crate::support::*;
use alloy::signers::local::PrivateKeySigner;
use tiffin_market::Attestor;

#[tokio::test]
async fn the_owner_adds_and_removes_attestors_and_seals_follow_the_set() {
    let mut m = Market::start().await;
    let journal = b"journal";
    let first = m.submit_and_lock(journal, 0).await;
    let second = m.submit_and_lock(journal, 10).await;
    let old = m.attestor.clone();
    let new = Attestor::new(PrivateKeySigner::random());
    let new_seal = new.attest_journal(IMAGE_ID, journal, m.prover.address()).unwrap();

    let early = m.prover.fulfill(first.id, journal.into(), new_seal.clone()).await;
    assert_eq!(reverted(early), "InvalidAttestation", "not an attestor yet");
    let usurper = m.prover.add_attestor(m.prover.address()).await;
    assert_eq!(reverted(usurper), "NotOwner");
    assert_eq!(reverted(m.other.remove_attestor(old.address()).await), "NotOwner");

    m.deployer.add_attestor(new.address()).await.unwrap();
    m.deployer.remove_attestor(old.address()).await.unwrap();

    assert!(m.prover.is_attestor(new.address()).await.unwrap());
    assert!(!m.prover.is_attestor(old.address()).await.unwrap());
    let old_seal = old.attest_journal(IMAGE_ID, journal, m.prover.address()).unwrap();
    let stale = m.prover.fulfill(first.id, journal.into(), old_seal).await;
    assert_eq!(reverted(stale), "InvalidAttestation", "a removed key's seals stop at once");
    m.prover.fulfill(first.id, journal.into(), new_seal).await.unwrap();

    // With no attestor left, fulfilment is paused.
    m.deployer.remove_attestor(new.address()).await.unwrap();
    let seal = new.attest_journal(IMAGE_ID, journal, m.prover.address()).unwrap();
    let paused = m.prover.fulfill(second.id, journal.into(), seal).await;
    assert_eq!(reverted(paused), "InvalidAttestation");
    m.assert_books_balance(&[first.id, second.id]).await;
}
