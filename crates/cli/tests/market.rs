//! `tiffin market …` as requestors and provers run it, against a real anvil: a request is
//! submitted, locked, proven by `tiffin prove` (the embedded cluster), sealed by the verifier
//! service (`tiffin market verifier`) after it verifies the receipt, fulfilled and paid; a
//! signed off-chain request is locked, left to expire and slashed; bad input is refused.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use alloy::primitives::{B256, U256};
use common::{Proc, fails, field, ok, tiffin};
use tiffin_guests::SET_BUILDER;
use tiffin_market::DevChain;

const REQUESTOR: usize = 2;
const PROVER: usize = 3;
const OTHER: usize = 4;

struct Chain {
    runtime: tokio::runtime::Runtime,
    chain: DevChain,
}

impl Chain {
    fn start() -> Chain {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let set_builder = B256::from(SET_BUILDER.image_id_bytes());
        let chain = runtime
            .block_on(DevChain::start(set_builder))
            .expect("anvil starts (run scripts/setup)");
        Chain { runtime, chain }
    }

    fn key(&self, index: usize) -> String {
        self.chain.signer(index).unwrap().to_bytes().to_string()
    }

    /// `tiffin market ARGS` signed by dev key `key`, with the deployment in the environment
    /// exactly as `tiffin-chain/env` sets it.
    fn market(&self, key: usize, args: &[&str]) -> Command {
        let d = self.chain.deployment();
        let mut cmd = tiffin(&["market"]);
        cmd.args(args)
            .env("RPC_URL", self.chain.rpc_url())
            .env("PRIVATE_KEY", self.key(key))
            .env("TIFFIN_MARKET_ADDRESS", d.market.to_string())
            .env("TIFFIN_COLLATERAL_TOKEN_ADDRESS", d.collateral_token.to_string())
            .env("TIFFIN_VERIFIER_ADDRESS", d.verifier.to_string());
        cmd
    }

    fn mint_collateral(&self, to: usize, tokens: u64) {
        let amount = U256::from(tokens) * U256::from(10).pow(U256::from(18));
        self.runtime.block_on(async {
            let deployer = self.chain.client(0).await.unwrap();
            deployer.mint_collateral(self.chain.address(to), amount).await.unwrap();
        });
    }

    /// Mines an empty block `seconds` after the latest one.
    fn advance(&self, seconds: u64) {
        self.runtime.block_on(async {
            let now = self.chain.now().await.unwrap();
            self.chain.mine_at(now + seconds).await.unwrap();
        });
    }
}

/// Starts `tiffin market verifier` on a free port holding the chain's attestor key; returns it
/// with its URL.
fn verifier_service(chain: &Chain) -> (Proc, String) {
    let mut child = tiffin(&["market", "verifier", "--listen", "127.0.0.1:0"])
        .env("TIFFIN_ATTESTOR_KEY", chain.key(1))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("verifier listening on ").map(str::to_string))
        .expect("the verifier prints its URL");
    (Proc(child), url)
}

#[test]
fn a_request_is_proven_by_the_cluster_sealed_by_the_verifier_and_paid_and_a_lapsed_lock_is_slashed()
{
    let chain = Chain::start();
    let (_verifier, verifier_url) = verifier_service(&chain);
    let dir = tempfile::tempdir().unwrap();
    let input = hex::encode(b"hello, market");
    chain.mint_collateral(PROVER, 100);

    // The requestor funds its account and asks for echo's proof with exactly this journal.
    let out = ok(chain.market(REQUESTOR, &["deposit", "0.01ether"]));
    assert!(field(&out, "balance:").starts_with("0.010000000000000000 ETH"), "{out}");
    let out = ok(chain.market(
        REQUESTOR,
        &["submit", "--sample", "echo", "--input-hex", &input, "--journal-hex", &input]
            .into_iter()
            .chain(["--min-price", "1000wei", "--max-price", "1000wei", "--ramp-up", "0"])
            .chain(["--lock-collateral", "10"])
            .collect::<Vec<_>>(),
    ));
    let id = field(&out, "request id:");
    assert!(field(&chain_status(&chain, &id), "status:").contains("Open"));

    // The prover moves collateral in and locks; a second lock is refused by name.
    let out = ok(chain.market(PROVER, &["deposit-collateral", "100"]));
    assert_eq!(field(&out, "collateral:"), "100.000000000000000000 TFC");
    let out = ok(chain.market(PROVER, &["lock", &id]));
    assert!(field(&out, "price:").contains("(1000 wei)"), "{out}");
    let err = fails(chain.market(PROVER, &["lock", &id]));
    assert!(err.contains("TIFFIN-MARKET-004") && err.contains("AlreadyLocked"), "{err}");

    // The embedded cluster proves it; the verifier refuses what is not a receipt, then seals
    // the real one; the market pays.
    let data = dir.path().join("data");
    let out = ok(tiffin(&["prove", "--sample", "echo", "--input-hex", &input, "--po2", "14"])
        .args(["--receipt-kind", "composite", "--data-dir", data.to_str().unwrap()]));
    let receipt = data.join("receipts").join(format!("{}.receipt", field(&out, "job:")));
    let garbage = dir.path().join("garbage.receipt");
    std::fs::write(&garbage, b"not a receipt").unwrap();
    let fulfill = |path: &std::path::Path| {
        chain.market(
            PROVER,
            &["fulfill", &id, "--verifier-url", &verifier_url, "--receipt", path.to_str().unwrap()],
        )
    };
    let err = fails(fulfill(&garbage));
    assert!(err.contains("TIFFIN-VERIFIER-001"), "{err}");
    let out = ok(fulfill(&receipt));
    assert_eq!(field(&out, "journal:"), input);

    let out = ok(chain.market(REQUESTOR, &["wait", &id, "--timeout-secs", "30"]));
    assert_eq!(field(&out, "journal:"), input);
    assert!(out.contains("verified: the verifier contract accepts the seal"), "{out}");
    assert!(field(&chain_status(&chain, &id), "status:").contains("Fulfilled"));
    let out = ok(chain.market(PROVER, &["balance"]));
    assert!(field(&out, "balance:").contains("(1000 wei)"), "{out}");
    let out = ok(chain.market(PROVER, &["collateral-balance"]));
    assert_eq!(field(&out, "collateral:"), "100.000000000000000000 TFC", "collateral returned");

    // A signed off-chain request: not on chain until the prover locks it; never fulfilled, so
    // after its timeout anyone slashes the locker and the requestor is compensated.
    let signed = dir.path().join("request.json");
    let out = ok(chain.market(
        REQUESTOR,
        &["submit", "--sample", "echo", "--input-hex", &input, "--max-price", "500wei"]
            .into_iter()
            .chain(["--ramp-up", "0", "--lock-timeout", "10", "--timeout", "20"])
            .chain(["--lock-collateral", "10", "--offchain", signed.to_str().unwrap()])
            .collect::<Vec<_>>(),
    ));
    let offchain = field(&out, "request id:");
    assert!(field(&chain_status(&chain, &offchain), "status:").contains("Unknown"));
    ok(chain.market(PROVER, &["lock", "--request", signed.to_str().unwrap()]));
    let err = fails(chain.market(OTHER, &["slash", &offchain]));
    assert!(err.contains("NotSlashable"), "{err}");
    chain.advance(100);
    ok(chain.market(OTHER, &["slash", &offchain]));
    assert!(field(&chain_status(&chain, &offchain), "status:").contains("Slashed"));
    let err = fails(chain.market(REQUESTOR, &["wait", &offchain, "--timeout-secs", "5"]));
    assert!(err.contains("ended Slashed"), "{err}");
    let out = ok(chain.market(REQUESTOR, &["collateral-balance"]));
    assert_eq!(field(&out, "collateral:"), "5.000000000000000000 TFC", "half of 10, half burned");
    let out = ok(chain.market(REQUESTOR, &["balance"]));
    let paid = U256::from(10).pow(U256::from(16)) - U256::from(1000);
    assert!(
        field(&out, "balance:").contains(&format!("({paid} wei)")),
        "only the fulfilled one paid: {out}"
    );

    // Bad input: a clear message, nothing sent.
    let err = fails(chain.market(REQUESTOR, &["deposit", "ten"]));
    assert!(err.contains("bad amount \"ten\""), "{err}");
    let err = fails(chain.market(REQUESTOR, &["status", "nonsense"]));
    assert!(err.contains("is not a request id"), "{err}");
    let err = fails(chain.market(REQUESTOR, &["balance"]).env_remove("RPC_URL"));
    assert!(err.contains("no RPC URL"), "{err}");
    let err = fails(chain.market(PROVER, &["withdraw-collateral", "1000"]));
    assert!(err.contains("InsufficientCollateral"), "{err}");
}

fn chain_status(chain: &Chain, id: &str) -> String {
    ok(chain.market(OTHER, &["status", id]))
}
