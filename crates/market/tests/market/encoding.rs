//! The client and the contracts compute the same digests.

use crate::support::*;
use alloy::primitives::B256;
use tiffin_market::attestation::attestation_hash;
use tiffin_market::bindings::AttestationVerifier;
use tiffin_market::claim::{claim_digest, journal_digest};

#[tokio::test]
async fn client_and_contracts_agree_on_claim_attestation_and_request_digests() {
    let mut m = Market::start().await;
    let verifier = AttestationVerifier::new(m.prover.deployment().verifier, m.prover.provider());
    let journal_digest = journal_digest(b"journal");
    let claim = claim_digest(IMAGE_ID, journal_digest);

    assert_eq!(verifier.claimDigest(IMAGE_ID, journal_digest).call().await.unwrap(), claim);
    let prover = m.prover.address();
    assert_eq!(
        verifier.attestationHash(claim, prover).call().await.unwrap(),
        attestation_hash(claim, prover)
    );
    assert!(verifier.isAttestor(m.attestor.address()).call().await.unwrap());

    let request = m.request(b"journal");
    let on_chain = m.requestor.request_digest(&request).await.unwrap();
    let market = m.requestor.deployment().market;
    assert_eq!(on_chain, request.signing_hash(market, m.requestor.chain_id()));
    assert_ne!(on_chain, B256::ZERO);
}
