//! Gas per market operation, measured on a real anvil: submitting and locking a request (on-
//! chain and signed off-chain), fulfilling one with an attestation, and fulfilling batches of 1,
//! 10 and 100 through one attested root. Prints a Markdown table.
//!
//! Run: `scripts/bench-market` (records the table in docs/benchmarks.md).

use alloy::primitives::{B256, Bytes, U256};
use alloy::rpc::types::TransactionReceipt;
use tiffin_market::claim::{claim_digest, journal_digest};
use tiffin_market::merkle::MerkleTree;
use tiffin_market::request::request_id;
use tiffin_market::{
    Attestor, DevChain, Fulfillment, Input, MarketClient, Offer, Predicate, ProofRequest,
};

const IMAGE: B256 = B256::repeat_byte(0x11);
const SET_BUILDER: B256 = B256::repeat_byte(0x5e);

struct Bench {
    requestor: MarketClient,
    prover: MarketClient,
    attestor: Attestor,
    offer: Offer,
    next_index: u32,
    rows: Vec<(String, usize, u64)>,
}

impl Bench {
    fn request(&mut self) -> (ProofRequest, Vec<u8>) {
        self.next_index += 1;
        let journal = format!("journal {}", self.next_index).into_bytes();
        let id = request_id(self.requestor.address(), self.next_index);
        let request = ProofRequest::new(
            id,
            IMAGE,
            Predicate::journal_equals(&journal),
            "http://127.0.0.1/guest.bin",
            Input::inline(b"input".to_vec()),
            self.offer.clone(),
        );
        (request, journal)
    }

    fn row(&mut self, operation: &str, requests: usize, receipts: &[TransactionReceipt]) {
        let gas = receipts.iter().map(|r| r.gas_used).sum();
        self.rows.push((operation.to_string(), requests, gas));
    }

    /// `n` requests submitted on-chain and locked by the prover.
    async fn locked(&mut self, n: usize) -> Vec<(ProofRequest, Vec<u8>)> {
        let mut out = Vec::new();
        for _ in 0..n {
            let (request, journal) = self.request();
            self.requestor.submit_request(&request, U256::ZERO).await.unwrap();
            self.prover.lock_request(&request, Bytes::new()).await.unwrap();
            out.push((request, journal));
        }
        out
    }

    async fn batch(&mut self, n: usize) {
        let locked = self.locked(n).await;
        let leaves = locked.iter().map(|(_, j)| claim_digest(IMAGE, journal_digest(j))).collect();
        let tree = MerkleTree::new(leaves).unwrap();
        let seal =
            self.attestor.attest_root(SET_BUILDER, tree.root(), self.prover.address()).unwrap();
        let fills = locked
            .iter()
            .enumerate()
            .map(|(i, (r, j))| Fulfillment {
                id: r.id,
                journal: j.clone().into(),
                proof: tree.proof(i).unwrap(),
            })
            .collect();
        let receipt = self.prover.submit_root_and_fulfill(tree.root(), seal, fills).await.unwrap();
        self.row(&format!("submitRootAndFulfill, batch of {n}"), n, &[receipt]);
    }
}

#[tokio::main]
async fn main() {
    let chain = DevChain::start(SET_BUILDER).await.expect("anvil starts (run scripts/setup)");
    let deployer = chain.client(0).await.unwrap();
    let requestor = chain.client(2).await.unwrap();
    let prover = chain.client(3).await.unwrap();
    let plenty = U256::from(10u64).pow(U256::from(18));
    requestor.deposit(plenty).await.unwrap();
    deployer.mint_collateral(prover.address(), plenty).await.unwrap();
    prover.deposit_collateral(plenty).await.unwrap();
    let offer = Offer {
        minPrice: U256::from(1_000),
        maxPrice: U256::from(2_000),
        biddingStart: chain.now().await.unwrap(),
        rampUpPeriod: 0,
        lockTimeout: 3_600,
        timeout: 7_200,
        lockCollateral: U256::from(100),
    };
    let attestor = chain.attestor().unwrap();
    let mut b = Bench { requestor, prover, attestor, offer, next_index: 0, rows: Vec::new() };

    // One request through every single-request step.
    let (request, journal) = b.request();
    let submit = b.requestor.submit_request(&request, U256::ZERO).await.unwrap();
    b.row("submitRequest (on-chain)", 1, &[submit]);
    let lock = b.prover.lock_request(&request, Bytes::new()).await.unwrap();
    b.row("lockRequest (submitted on-chain)", 1, &[lock]);
    let seal = b.attestor.attest_journal(IMAGE, &journal, b.prover.address()).unwrap();
    let fulfill = b.prover.fulfill(request.id, journal.into(), seal).await.unwrap();
    b.row("fulfill (one attestation)", 1, &[fulfill]);
    let (signed, _) = b.request();
    let signature = b.requestor.sign_request(&signed).unwrap();
    let lock = b.prover.lock_request(&signed, signature).await.unwrap();
    b.row("lockRequest (signed off-chain)", 1, &[lock]);
    for n in [1, 10, 100] {
        b.batch(n).await;
    }

    println!("| operation | requests | gas | gas per request |");
    println!("|---|---:|---:|---:|");
    for (operation, requests, gas) in &b.rows {
        println!("| {operation} | {requests} | {gas} | {} |", gas / *requests as u64);
    }
}
