//! The committed contract artifacts (contracts/out/) were compiled from the committed sources:
//! contracts/compile.js records the SHA-256 of every source (and of itself) in
//! contracts/out/sources.sha256 whenever it writes the artifacts. (`node contracts/compile.js
//! --check` recompiles and compares the artifacts byte for byte; this test needs no Node.js.)

use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo and nextest set it"))
        .join("../..")
}

/// (digest, path) pairs recorded by the last compile.
fn recorded() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("contracts/out/sources.sha256"))
        .expect("contracts/out/sources.sha256 (written by node contracts/compile.js)");
    text.lines()
        .map(|line| {
            let (digest, path) = line.split_once("  ").expect("sha256sum format");
            (digest.to_string(), path.to_string())
        })
        .collect()
}

#[test]
fn committed_artifacts_were_compiled_from_the_committed_sources() {
    let recorded = recorded();
    let stale: Vec<&str> = recorded
        .iter()
        .filter(|(digest, path)| {
            let bytes = std::fs::read(root().join(path)).unwrap_or_default();
            hex(&Sha256::digest(bytes)) != *digest
        })
        .map(|(_, path)| path.as_str())
        .collect();
    assert!(
        stale.is_empty(),
        "changed since the last compile: {stale:?}; run `node contracts/compile.js`"
    );

    let listed: BTreeSet<&str> = recorded.iter().map(|(_, path)| path.as_str()).collect();
    let sources = std::fs::read_dir(root().join("contracts/src")).expect("contracts/src");
    for entry in sources {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let path = format!("contracts/src/{name}");
        assert!(
            !name.ends_with(".sol") || listed.contains(path.as_str()),
            "{path} was never compiled"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
