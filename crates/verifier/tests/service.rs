//! The verifier service over real receipts: it signs only what RISC Zero verifies, and the
//! market on a real anvil accepts what it signs — one claim through `fulfill`, and a batch
//! through the set-builder guest's root.
//!
//! One test function: its receipts (two echo runs at po2 14 and a set-builder run at po2 16
//! that verifies them by composition, all composite) are proven once and shared by every
//! assertion.

use alloy::primitives::{B256, Bytes, U256};
use serde_json::Value;
use tiffin_guests::{ECHO, SET_BUILDER, set_builder_input};
use tiffin_market::bindings::AttestationVerifier;
use tiffin_market::claim::{claim_digest, journal_digest};
use tiffin_market::merkle::MerkleTree;
use tiffin_market::request::request_id;
use tiffin_market::{DevChain, Fulfillment, Input, Offer, Predicate, ProofRequest, RequestStatus};
use tiffin_verifier::{ServiceConfig, Verifier};
use tiffin_zkvm::{
    ExecuteOptions, ImageId, Receipt, encode, execute, finalize_composite, prove_segment,
};

/// risc0's own digest of the claim "image ran to exit 0 with this journal".
fn claim_digest_by_risc0(image: ImageId, journal: &[u8]) -> B256 {
    use risc0_zkvm::sha::Digestible;
    let digest = risc0_zkvm::ReceiptClaim::ok(image.0, journal.to_vec()).digest();
    B256::from_slice(digest.as_bytes())
}

/// Echo fits 2 segments at po2 14; the set-builder over three claims fits 2 at po2 16 (but
/// needs 15 at po2 14, where each segment pages its memory in again).
const ECHO_PO2: u32 = 14;
const SET_BUILDER_PO2: u32 = 16;

/// Proves `program` on `input` as a composite receipt, carrying `assumptions` (receipts the
/// guest verifies) in the order the guest used them.
fn prove(program: &[u8], input: &[u8], po2: u32, assumptions: Vec<Receipt>) -> Receipt {
    let opts = ExecuteOptions { po2, assumptions: assumptions.clone(), ..Default::default() };
    let mut segments = Vec::new();
    let exec = execute(program, input, &opts, |s| {
        segments.push(s);
        Ok::<_, String>(())
    })
    .unwrap();
    let proven = segments.iter().map(|s| prove_segment(s).unwrap()).collect();
    let used = exec.assumptions_used.iter().map(|&i| assumptions[i].clone()).collect();
    finalize_composite(proven, used, exec.journal, exec.image_id).unwrap()
}

fn image(words: [u32; 8]) -> ImageId {
    ImageId::from_words(words)
}

fn b256(id: ImageId) -> B256 {
    B256::from_slice(id.0.as_bytes())
}

fn hex_field(body: &Value, key: &str) -> Vec<u8> {
    let s = body[key].as_str().unwrap_or_else(|| panic!("no {key} in {body}"));
    hex::decode(s.trim_start_matches("0x")).unwrap()
}

struct Service {
    url: String,
    http: reqwest::Client,
}

impl Service {
    async fn start(verifier: Verifier, config: ServiceConfig) -> Service {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(tiffin_verifier::serve(listener, verifier, config, std::future::pending()));
        Service { url, http: reqwest::Client::new() }
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let response =
            self.http.post(format!("{}{path}", self.url)).body(body).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn receipts_are_verified_before_anything_is_signed_and_the_chain_accepts_the_seals() {
    // Two echo runs and a set-builder run over [a, b, a] (three leaves: the odd one is carried).
    let (journal_a, journal_b) = (b"first journal".to_vec(), b"second".to_vec());
    let a = prove(ECHO.program, &journal_a, ECHO_PO2, vec![]);
    let b = prove(ECHO.program, &journal_b, ECHO_PO2, vec![]);
    let echo = image(ECHO.image_id);
    let claims = [
        (ECHO.image_id_bytes(), &journal_a[..]),
        (ECHO.image_id_bytes(), &journal_b[..]),
        (ECHO.image_id_bytes(), &journal_a[..]),
    ];
    let set = prove(
        SET_BUILDER.program,
        &set_builder_input(&claims),
        SET_BUILDER_PO2,
        vec![a.clone(), b.clone()],
    );
    let leaves: Vec<B256> =
        claims.iter().map(|(_, j)| claim_digest(b256(echo), journal_digest(j))).collect();
    let tree = MerkleTree::new(leaves.clone()).unwrap();
    assert_eq!(set.journal.bytes, tree.root().as_slice(), "the guest's tree is the market's");
    assert_eq!(
        leaves[0],
        claim_digest_by_risc0(echo, &journal_a),
        "claim digests agree with risc0"
    );

    let chain = DevChain::start(b256(image(SET_BUILDER.image_id))).await.unwrap();
    let attestor = chain.attestor().unwrap();
    let verifier = Verifier::new(attestor.clone(), image(SET_BUILDER.image_id));
    let config = ServiceConfig { max_receipt_bytes: 8 << 20, ..Default::default() };
    let service = Service::start(verifier, config).await;
    // Seals are made out to the prover who will send them (dev key 3, below).
    let prover_address = chain.address(3);
    let to_prover = format!("?prover={prover_address}");

    // A good receipt: the seal is the attestor's, the chain's verifier accepts it for the prover
    // it names and for no one else.
    let (status, body) = service.post(&format!("/v1/attest/{echo}{to_prover}"), encode(&a)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(hex_field(&body, "journal"), journal_a);
    assert_eq!(hex_field(&body, "claim_digest"), leaves[0].as_slice());
    let seal = Bytes::from(hex_field(&body, "seal"));
    let on_chain = AttestationVerifier::new(chain.deployment().verifier, chain.rpc().clone());
    let digest_a = journal_digest(&journal_a);
    on_chain.verify(seal.clone(), b256(echo), digest_a, prover_address).call().await.unwrap();
    let wrong_journal =
        on_chain.verify(seal.clone(), b256(echo), journal_digest(&journal_b), prover_address);
    assert!(wrong_journal.call().await.is_err(), "a seal covers one claim only");
    let copied = on_chain.verify(seal.clone(), b256(echo), digest_a, chain.address(4));
    assert!(copied.call().await.is_err(), "a seal is useless to another account");

    // Refusals, each with its code; nothing is signed.
    let refusals = [
        (
            format!("/v1/attest/{}{to_prover}", image(SET_BUILDER.image_id)),
            encode(&a),
            422,
            "TIFFIN-VERIFIER-002",
        ),
        (
            format!("/v1/attest/{echo}{to_prover}"),
            b"not a receipt".to_vec(),
            400,
            "TIFFIN-VERIFIER-001",
        ),
        (format!("/v1/attest/{echo}{to_prover}"), tampered(&a), 422, "TIFFIN-VERIFIER-002"),
        (format!("/v1/attest/xyz{to_prover}"), encode(&a), 400, "TIFFIN-VERIFIER-004"),
        (format!("/v1/attest/{echo}{to_prover}"), vec![0; 9 << 20], 413, "TIFFIN-VERIFIER-003"),
        (format!("/v1/attest-root{to_prover}"), encode(&a), 422, "TIFFIN-VERIFIER-002"),
        (format!("/v1/attest/{echo}"), encode(&a), 400, "TIFFIN-VERIFIER-013"),
        (format!("/v1/attest/{echo}?prover=0x12"), encode(&a), 400, "TIFFIN-VERIFIER-013"),
        ("/v1/attest-root".to_string(), encode(&set), 400, "TIFFIN-VERIFIER-013"),
    ];
    for (path, body, want_status, want_code) in refusals {
        let (status, answer) = service.post(&path, body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (want_status, Some(want_code)),
            "{path}: {answer}"
        );
        assert!(answer.get("seal").is_none());
    }

    // The set-builder receipt's root: one seal, and the market fulfils leaves under it.
    let (status, body) = service.post(&format!("/v1/attest-root{to_prover}"), encode(&set)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(hex_field(&body, "root"), tree.root().as_slice());
    let root_seal = Bytes::from(hex_field(&body, "seal"));

    let requestor = chain.client(2).await.unwrap();
    let prover = chain.client(3).await.unwrap();
    let deployer = chain.client(0).await.unwrap();
    requestor.deposit(U256::from(1_000_000)).await.unwrap();
    deployer.mint_collateral(prover.address(), U256::from(1_000)).await.unwrap();
    prover.deposit_collateral(U256::from(1_000)).await.unwrap();
    let now = chain.now().await.unwrap();
    let offer = Offer {
        minPrice: U256::from(1_000),
        maxPrice: U256::from(1_000),
        biddingStart: now,
        rampUpPeriod: 0,
        lockTimeout: 3_600,
        timeout: 7_200,
        lockCollateral: U256::from(100),
    };
    let mut requests = Vec::new();
    for (index, journal) in [(1u32, &journal_a), (2, &journal_b)] {
        let request = ProofRequest::new(
            request_id(requestor.address(), index),
            b256(echo),
            Predicate::journal_equals(journal),
            "file:///echo.bin",
            Input::inline(journal.clone()),
            offer.clone(),
        );
        requestor.submit_request(&request, U256::ZERO).await.unwrap();
        prover.lock_request(&request, Bytes::new()).await.unwrap();
        requests.push(request);
    }
    // Request 1 with the single seal, request 2 as leaf 1 of the verified root.
    prover.fulfill(requests[0].id, journal_a.clone().into(), seal).await.unwrap();
    let fill = Fulfillment {
        id: requests[1].id,
        journal: journal_b.clone().into(),
        proof: tree.proof(1).unwrap(),
    };
    prover.submit_root_and_fulfill(tree.root(), root_seal, vec![fill]).await.unwrap();
    for request in &requests {
        assert_eq!(prover.status(request.id).await.unwrap(), RequestStatus::Fulfilled);
    }
    assert_eq!(prover.balance_of(prover.address()).await.unwrap(), U256::from(2_000));
    assert_eq!(prover.collateral_balance_of(prover.address()).await.unwrap(), U256::from(1_000));
    assert_eq!(requestor.balance_of(requestor.address()).await.unwrap(), U256::from(998_000));
}

/// The receipt with one journal byte changed: its seal no longer matches.
fn tampered(receipt: &Receipt) -> Vec<u8> {
    let mut bad = receipt.clone();
    bad.journal.bytes[0] ^= 1;
    encode(&bad)
}
