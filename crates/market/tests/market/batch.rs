use crate::support::*;
use alloy::primitives::{B256, Bytes, U256};
use tiffin_market::claim::{claim_digest, journal_digest};
use tiffin_market::merkle::MerkleTree;
use tiffin_market::{Fulfillment, ProofRequest, RequestStatus};

/// Three requests locked by the prover, their journals, and the tree of their claims.
async fn three_locked(m: &mut Market) -> (Vec<ProofRequest>, Vec<Vec<u8>>, MerkleTree) {
    let journals: Vec<Vec<u8>> = (1..=3).map(|i| format!("journal {i}").into_bytes()).collect();
    let mut requests = Vec::new();
    for journal in &journals {
        let request = m.request(journal);
        m.requestor.submit_request(&request, U256::ZERO).await.unwrap();
        requests.push(request);
    }
    // Each lock's block time is pinned: on a loaded machine the chain's clock moves between
    // transactions, and the price moves with it.
    for (t, request) in requests.iter().enumerate() {
        m.at(t as u64).await;
        m.prover.lock_request(request, Bytes::new()).await.unwrap();
    }
    let leaves = journals.iter().map(|j| claim_digest(IMAGE_ID, journal_digest(j))).collect();
    (requests, journals, MerkleTree::new(leaves).unwrap())
}

fn fills(requests: &[ProofRequest], journals: &[Vec<u8>], tree: &MerkleTree) -> Vec<Fulfillment> {
    (0..requests.len())
        .map(|i| Fulfillment {
            id: requests[i].id,
            journal: journals[i].clone().into(),
            proof: tree.proof(i).unwrap(),
        })
        .collect()
}

#[tokio::test]
async fn a_batch_of_three_is_fulfilled_through_one_root_in_one_transaction() {
    let mut m = Market::start().await;
    let (requests, journals, tree) = three_locked(&mut m).await;
    let seal = m.attestor.attest_root(SET_BUILDER_ID, tree.root(), m.prover.address()).unwrap();

    m.prover
        .submit_root_and_fulfill(tree.root(), seal, fills(&requests, &journals, &tree))
        .await
        .unwrap();

    let ids: Vec<U256> = requests.iter().map(|r| r.id).collect();
    for id in &ids {
        assert_eq!(m.prover.status(*id).await.unwrap(), RequestStatus::Fulfilled);
    }
    let market = m.prover.market();
    assert!(market.verifiedRoots(tree.root(), m.prover.address()).call().await.unwrap());
    assert!(!market.verifiedRoots(tree.root(), m.other.address()).call().await.unwrap());
    let paid = price_at(0) + price_at(1) + price_at(2);
    assert_eq!(m.balances(m.prover.address()).await, (u(paid), u(COLLATERAL)));
    assert_eq!(m.balances(m.requestor.address()).await.0, u(DEPOSIT - paid));
    m.assert_books_balance(&ids).await;
}

#[tokio::test]
async fn a_root_is_verified_once_and_only_its_leaves_fulfil() {
    let mut m = Market::start().await;
    let (requests, journals, tree) = three_locked(&mut m).await;
    let root = tree.root();
    let mut all = fills(&requests, &journals, &tree);

    let unverified = m.prover.fulfill_batch(root, all.clone()).await;
    assert_eq!(reverted(unverified), "RootNotVerified");
    let not_set_builder = m.attestor.attest_root(IMAGE_ID, root, m.prover.address()).unwrap();
    assert_eq!(reverted(m.prover.submit_root(root, not_set_builder).await), "InvalidAttestation");

    m.prover
        .submit_root(
            root,
            m.attestor.attest_root(SET_BUILDER_ID, root, m.prover.address()).unwrap(),
        )
        .await
        .unwrap();
    let mut swapped = all[1].clone();
    swapped.proof = all[0].proof.clone();
    let bad = m.prover.fulfill_batch(root, vec![swapped]).await;
    assert_eq!(reverted(bad), "InvalidInclusionProof");
    let mut foreign = all[2].clone();
    foreign.journal = b"journal 4".into();
    assert_eq!(reverted(m.prover.fulfill_batch(root, vec![foreign]).await), "JournalRejected");

    let last = all.pop().unwrap();
    m.prover.fulfill_batch(root, all).await.unwrap();
    m.prover.fulfill_batch(root, vec![last]).await.unwrap();
    let ids: Vec<U256> = requests.iter().map(|r| r.id).collect();
    for id in &ids {
        assert_eq!(m.prover.status(*id).await.unwrap(), RequestStatus::Fulfilled);
    }
    m.assert_books_balance(&ids).await;
    assert_ne!(root, B256::ZERO);
}

/// Finding 16 of the market security review: after the lock deadline anyone may fulfil, and a
/// root's seal and inclusion proofs are public. A watcher who copies them must get nothing: the
/// root seal is made out to the prover, and a root verified for the prover serves only it.
#[tokio::test]
async fn a_copied_root_seal_or_a_root_verified_for_another_prover_fulfils_nothing() {
    let mut m = Market::start().await;
    let (requests, journals, tree) = three_locked(&mut m).await;
    let root = tree.root();
    let all = fills(&requests, &journals, &tree);
    let seal = m.attestor.attest_root(SET_BUILDER_ID, root, m.prover.address()).unwrap();
    m.prover.submit_root(root, seal.clone()).await.unwrap();

    m.mine(m.lock_deadline() + 1).await;
    let borrowed = m.other.fulfill_batch(root, all.clone()).await;
    assert_eq!(reverted(borrowed), "RootNotVerified");
    let copied = m.other.submit_root_and_fulfill(root, seal, all.clone()).await;
    assert_eq!(reverted(copied), "InvalidAttestation");

    // Its own seal of the same root works.
    let own = m.attestor.attest_root(SET_BUILDER_ID, root, m.other.address()).unwrap();
    m.other.submit_root_and_fulfill(root, own, all).await.unwrap();
    let ids: Vec<U256> = requests.iter().map(|r| r.id).collect();
    let share = LOCK_COLLATERAL / 2;
    assert_eq!(m.balances(m.other.address()).await.1, u(COLLATERAL + 3 * share));
    m.assert_books_balance(&ids).await;
}
