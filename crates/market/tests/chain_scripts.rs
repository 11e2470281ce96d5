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

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
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
    // The public env names no key; each role's env file names only its own key's file, and
    // keys and role files are readable by their owner alone.
    assert!(env.keys().all(|k| !k.contains("KEY")), "no key in the public env: {env:?}");
    let key = |role: &str| -> PrivateKeySigner {
        let path = dir.join("keys").join(format!("{role}.key"));
        assert_eq!(mode(&path), 0o600, "{path:?}");
        std::fs::read_to_string(&path).unwrap().trim().parse().unwrap()
    };
    for role in ["requestor", "prover", "attestor", "deployer"] {
        let file = dir.join(format!("{role}.env"));
        assert_eq!(mode(&file), 0o600, "{file:?}");
        let text = std::fs::read_to_string(&file).unwrap();
        let own = dir.join("keys").join(format!("{role}.key"));
        assert!(text.contains(&own.display().to_string()), "{role}.env names its key");
        assert_eq!(text.matches("keys/").count(), 1, "{role}.env names one key: {text}");
    }
    let requestor = key("requestor");
    let attestor = key("attestor");
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
