//! `tiffin market …` as requestors and provers run it, against a real anvil: a request is
//! submitted, locked, proven by `tiffin prove` (the embedded cluster), sealed by the verifier
//! service (`tiffin market verifier`) after it verifies the receipt, fulfilled and paid; a
//! signed off-chain request is locked, left to expire and slashed (the requestor gets its price
//! back, the collateral is burned); requests are cancelled and refunded; the verifier refuses
//! fake receipts with `RISC0_DEV_MODE=1` in its environment, clients without its token, and a
//! key file others can read; bad input is refused.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
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

/// Writes `text` to `dir/name` with `mode`.
fn secret_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// Starts `tiffin market verifier` on a free port holding the chain's attestor key (from a 0600
/// file) and requiring the bearer token in `token_file`, with `RISC0_DEV_MODE=1` in its
/// environment (which must change nothing); returns it with its URL.
fn verifier_service(chain: &Chain, dir: &Path, token_file: &Path) -> (Proc, String) {
    let key_file = secret_file(dir, "attestor.key", &chain.key(1), 0o600);
    let mut child = tiffin(&["market", "verifier", "--listen", "127.0.0.1:0"])
        .arg("--attestor-key-file")
        .arg(&key_file)
        .arg("--token-file")
        .arg(token_file)
        .env_remove("TIFFIN_ATTESTOR_KEY")
        .env("RISC0_DEV_MODE", "1")
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
    let dir = tempfile::tempdir().unwrap();
    let token = secret_file(dir.path(), "verifier.token", "market-test-token", 0o600);
    let (_verifier, verifier_url) = verifier_service(&chain, dir.path(), &token);
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
    let fake = dir.path().join("fake.receipt");
    std::fs::write(&fake, fake_receipt(&hex::decode(&input).unwrap())).unwrap();
    let fulfill_with = |path: &Path, token: Option<&Path>| {
        let mut cmd = chain.market(
            PROVER,
            &["fulfill", &id, "--verifier-url", &verifier_url, "--receipt", path.to_str().unwrap()],
        );
        if let Some(token) = token {
            cmd.arg("--verifier-token-file").arg(token);
        }
        cmd
    };
    let fulfill = |path: &Path| fulfill_with(path, Some(&token));
    let wrong_token = secret_file(dir.path(), "wrong.token", "not-the-token", 0o600);
    for token in [None, Some(wrong_token.as_path())] {
        let err = fails(fulfill_with(&receipt, token));
        assert!(err.contains("TIFFIN-VERIFIER-010"), "{token:?}: {err}");
    }
    let err = fails(fulfill(&garbage));
    assert!(err.contains("TIFFIN-VERIFIER-001"), "{err}");
    let err = fails(fulfill(&fake));
    assert!(err.contains("TIFFIN-VERIFIER-002"), "a fake receipt, dev mode or not: {err}");
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
    assert_eq!(
        field(&out, "collateral:"),
        "0.000000000000000000 TFC",
        "burned, none to the requestor"
    );
    let out = ok(chain.market(REQUESTOR, &["balance"]));
    let paid = U256::from(10).pow(U256::from(16)) - U256::from(1000);
    assert!(
        field(&out, "balance:").contains(&format!("({paid} wei)")),
        "only the fulfilled one paid: {out}"
    );

    // The requestor cancels a signed request before anyone locks it: the signature is dead.
    // An on-chain request nobody locked in time is refunded.
    let revoked = dir.path().join("revoked.json");
    let out = ok(chain.market(
        REQUESTOR,
        &["submit", "--sample", "echo", "--input-hex", &input, "--max-price", "700wei"]
            .into_iter()
            .chain(["--lock-collateral", "10", "--offchain", revoked.to_str().unwrap()])
            .collect::<Vec<_>>(),
    ));
    let revoked_id = field(&out, "request id:");
    let out = ok(chain.market(REQUESTOR, &["cancel", &revoked_id]));
    assert!(field(&out, "refunded:").contains("(0 wei)"), "{out}");
    let err = fails(chain.market(PROVER, &["lock", "--request", revoked.to_str().unwrap()]));
    assert!(err.contains("RequestClosed"), "{err}");
    assert!(field(&chain_status(&chain, &revoked_id), "status:").contains("Cancelled"));
    let err = fails(chain.market(OTHER, &["cancel", &revoked_id]));
    assert!(err.contains("NotRequestor"), "{err}");
    let out = ok(chain.market(
        REQUESTOR,
        &["submit", "--sample", "echo", "--input-hex", &input, "--max-price", "300wei"]
            .into_iter()
            .chain(["--ramp-up", "0", "--lock-timeout", "10", "--timeout", "20"])
            .collect::<Vec<_>>(),
    ));
    let unlocked = field(&out, "request id:");
    let err = fails(chain.market(REQUESTOR, &["refund", &unlocked]));
    assert!(err.contains("NotRefundable"), "{err}");
    chain.advance(100);
    let out = ok(chain.market(REQUESTOR, &["refund", &unlocked]));
    assert!(field(&out, "amount:").contains("(300 wei)"), "{out}");

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

/// A dev-mode receipt of echo "proving" `journal`: nothing backs it.
fn fake_receipt(journal: &[u8]) -> Vec<u8> {
    use risc0_zkvm::{FakeReceipt, InnerReceipt, Receipt, ReceiptClaim};
    let image = tiffin_zkvm::ImageId::from_words(tiffin_guests::ECHO.image_id);
    let claim = ReceiptClaim::ok(image.0, journal.to_vec());
    let receipt = Receipt::new(InnerReceipt::Fake(FakeReceipt::new(claim)), journal.to_vec());
    tiffin_zkvm::encode(&receipt)
}

/// The verifier will not start with a key file others can read, and never prints the key.
#[test]
fn the_verifier_refuses_an_attestor_key_file_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    let open = secret_file(dir.path(), "open.key", key, 0o644);
    let out = tiffin(&["market", "verifier", "--listen", "127.0.0.1:0", "--attestor-key-file"])
        .arg(&open)
        .env_remove("TIFFIN_ATTESTOR_KEY")
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("TIFFIN-VERIFIER-012"), "{text}");
    assert!(!text.contains(&key[2..]), "the key is never printed: {text}");
    let err = fails(tiffin(&["market", "verifier"]).env_remove("TIFFIN_ATTESTOR_KEY"));
    assert!(err.contains("no attestor key"), "{err}");
}
