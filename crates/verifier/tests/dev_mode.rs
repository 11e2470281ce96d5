//! The verifier signs no fake receipt, whatever its environment (finding 8 of the market
//! security review): with `RISC0_DEV_MODE=1`, risc0's default verification passes a
//! `FakeReceipt` for any claim, so a service that inherited the variable from an operator's
//! shell would have signed claims nobody proved.
//!
//! This binary holds exactly one test because it sets a process-wide environment variable
//! before anything else runs.

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use risc0_zkvm::{FakeReceipt, InnerReceipt, Receipt, ReceiptClaim};
use serde_json::Value;
use tiffin_guests::{ECHO, SET_BUILDER};
use tiffin_market::Attestor;
use tiffin_verifier::{ServiceConfig, Verifier};
use tiffin_zkvm::{ImageId, encode};

fn fake(image: ImageId, journal: &[u8]) -> Vec<u8> {
    let claim = ReceiptClaim::ok(image.0, journal.to_vec());
    encode(&Receipt::new(InnerReceipt::Fake(FakeReceipt::new(claim)), journal.to_vec()))
}

#[tokio::test(flavor = "multi_thread")]
async fn fake_receipts_are_refused_with_risc0_dev_mode_set() {
    // SAFETY: the only test in this binary, set before the service or any thread reads it.
    unsafe { std::env::set_var("RISC0_DEV_MODE", "1") };
    let echo = ImageId::from_words(ECHO.image_id);
    let set_builder = ImageId::from_words(SET_BUILDER.image_id);
    let verifier = Verifier::new(Attestor::new(PrivateKeySigner::random()), set_builder);

    let prover = Address::repeat_byte(0x42);
    let refused = verifier.attest_receipt(&fake(echo, b"anything"), echo, prover).unwrap_err();
    assert_eq!(refused.code(), "TIFFIN-VERIFIER-002", "{refused}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = ServiceConfig::default();
    tokio::spawn(tiffin_verifier::serve(listener, verifier, config, std::future::pending()));
    let http = reqwest::Client::new();
    let posts = [
        (format!("{url}/v1/attest/{echo}?prover={prover}"), fake(echo, b"anything")),
        (format!("{url}/v1/attest-root?prover={prover}"), fake(set_builder, &[0u8; 32])),
    ];
    for (path, body) in posts {
        let response = http.post(&path).body(body).send().await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        assert_eq!((status, answer["code"].as_str()), (422, Some("TIFFIN-VERIFIER-002")), "{path}");
        assert!(answer.get("seal").is_none());
    }
}
