//! scripts/chain-up starts a usable chain (market deployed, keys funded, env file written) and
//! scripts/chain-down stops it and removes its directory.

use alloy::primitives::{Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tiffin_market::bindings::{AttestationVerifier, ProofMarket};
use tiffin_market::{Deployment, MarketClient};

fn root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo and nextest set it"))
        .join("../..")
}

fn script(name: &str, dir: &Path) {
    let status = Command::new(root().join("scripts").join(name))
        .env("TIFFIN_CHAIN_DIR", dir)
        .status()
        .unwrap_or_else(|e| panic!("scripts/{name}: {e}"));
    assert!(status.success(), "scripts/{name} failed");
}

/// `export KEY=value` lines of the env file.
fn read_env(dir: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(dir.join("env")).expect("chain-up writes env");
    text.lines()
        .filter_map(|line| line.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs scripts/chain-down when dropped, so a failing test leaves no anvil behind.
struct ChainDir(PathBuf);

impl Drop for ChainDir {
    fn drop(&mut self) {
        if self.0.exists() {
            script("chain-down", &self.0);
        }
    }
}

fn address(env: &HashMap<String, String>, key: &str) -> Address {
    env[key].parse().unwrap_or_else(|e| panic!("{key}: {e}"))
}

#[tokio::test]
async fn chain_up_deploys_a_usable_market_and_chain_down_removes_it() {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir =
        std::env::temp_dir().join(format!("tiffin-chain-test-{}-{nanos}", std::process::id()));
    script("chain-up", &dir);
    let guard = ChainDir(dir.clone());
    let env = read_env(&dir);

    let deployment = Deployment {
        market: address(&env, "TIFFIN_MARKET_ADDRESS"),
        collateral_token: address(&env, "TIFFIN_COLLATERAL_TOKEN_ADDRESS"),
        verifier: address(&env, "TIFFIN_VERIFIER_ADDRESS"),
    };
    let requestor: PrivateKeySigner = env["PRIVATE_KEY"].parse().unwrap();
    let attestor: PrivateKeySigner = env["TIFFIN_ATTESTOR_KEY"].parse().unwrap();
    let client = MarketClient::connect(&env["RPC_URL"], requestor, deployment).await.unwrap();
    client.deposit(U256::from(1_000)).await.unwrap();
    assert_eq!(client.balance_of(client.address()).await.unwrap(), U256::from(1_000));
    let dev_collateral = U256::from(1_000u64) * U256::from(10u64).pow(U256::from(18u64));
    assert_eq!(client.token_balance_of(client.address()).await.unwrap(), dev_collateral);
    let verifier = AttestationVerifier::new(deployment.verifier, client.provider());
    assert!(verifier.isAttestor(attestor.address()).call().await.unwrap());
    // Batch roots are the bundled set-builder guest's journals (scripts/test builds tiffin).
    let set_builder = B256::from(tiffin_guests::SET_BUILDER.image_id_bytes());
    assert_eq!(env["TIFFIN_SET_BUILDER_IMAGE_ID"], set_builder.to_string());
    let market = ProofMarket::new(deployment.market, client.provider());
    assert_eq!(market.setBuilderImageId().call().await.unwrap(), set_builder);

    let pid = std::fs::read_to_string(dir.join("anvil.pid")).unwrap();
    drop(guard);
    assert!(!dir.exists(), "chain-down removes {}", dir.display());
    assert!(!Path::new(&format!("/proc/{}", pid.trim())).exists(), "anvil stopped");
}
