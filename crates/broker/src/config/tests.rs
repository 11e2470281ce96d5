//! Tests of `broker.toml` as a whole: defaults, the template and the docs, refused keys and
//! values, amounts, and the round trip through TOML.

use super::*;
use alloy::primitives::{Address, U256};
use std::path::PathBuf;

const TEMPLATE: &str = include_str!("../../../../deploy/broker-template.toml");
const DOCS: &str = include_str!("../../../../docs/broker.md");

fn gwei(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000_000u64)
}

fn tfc(n: u64) -> U256 {
    U256::from(n) * U256::from(10).pow(U256::from(18))
}

/// A configuration with every option set and every value off its default.
fn everything_set() -> BrokerConfig {
    let mut config = BrokerConfig::default();
    let m = &mut config.market;
    m.min_mcycle_price = gwei(10);
    m.min_mcycle_price_collateral_token = tfc(1) / U256::from(2);
    m.priority_requestor_addresses = vec![Address::repeat_byte(1)];
    m.priority_requestor_lists = vec!["https://example.com/list.json".into()];
    m.peak_prove_khz = Some(500);
    m.min_mcycle_limit = 1;
    m.assessor_default_image_url = Some("https://example.com/assessor".into());
    m.set_builder_default_image_url = Some("https://example.com/set-builder".into());
    m.order_pricing_priority = OrderPricingPriority::ShortestExpiry;
    m.order_commitment_priority = OrderCommitmentPriority::TightestDeadline;
    m.allow_client_addresses = Some(vec![Address::repeat_byte(2)]);
    m.deny_requestor_addresses = Some(vec![Address::repeat_byte(3), Address::repeat_byte(4)]);
    m.lockin_priority_gas = Some(1_000_000_000);
    m.balance_warn_threshold = Some(gwei(200));
    m.balance_error_threshold = Some(gwei(100));
    m.collateral_balance_warn_threshold = Some(tfc(100));
    m.collateral_balance_error_threshold = Some(tfc(10));
    m.cache_dir = Some(PathBuf::from("/var/cache/tiffin-broker"));
    m.expected_probability_win_secondary_fulfillment = 100;
    config.prover.set_builder_guest_path = Some(PathBuf::from("/opt/set-builder.elf"));
    config.prover.assessor_set_guest_path = Some(PathBuf::from("/opt/assessor.elf"));
    config.prover.receipt_kind = ReceiptKind::Composite;
    config.batcher.single_txn_fulfill = false;
    config.batcher.withdraw = true;
    config.batcher.batch_max_fees = Some(gwei(1_000_000));
    config
}

/// Every key as `section.key`.
fn every_key() -> Vec<String> {
    let text = everything_set().to_toml_string().unwrap();
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut keys = Vec::new();
    for (section, entries) in table {
        for key in entries.as_table().unwrap().keys() {
            keys.push(format!("{section}.{key}"));
        }
    }
    keys
}

/// `text` refused by `from_toml_str`.
fn refused(text: &str) -> ConfigError {
    match BrokerConfig::from_toml_str(text) {
        Ok(config) => panic!("accepted {text:?} as {config:?}"),
        Err(err) => err,
    }
}

#[test]
fn an_empty_file_is_the_defaults() {
    let config = BrokerConfig::from_toml_str("").unwrap();
    assert_eq!(config, BrokerConfig::default());
    assert_eq!(config.market.max_mcycle_limit, 8_000);
    assert_eq!(config.prover.reaper_grace_period_secs, 10_800);
    assert_eq!(config.batcher.block_deadline_buffer_secs, 165);
    let partial = BrokerConfig::from_toml_str("[prover]\nreceipt_kind = \"composite\"").unwrap();
    assert_eq!(partial.prover.receipt_kind, ReceiptKind::Composite);
    assert_eq!(partial.market, MarketConfig::default());
}

#[test]
fn the_template_is_the_defaults_and_lists_every_key() {
    assert_eq!(BrokerConfig::from_toml_str(TEMPLATE).unwrap(), BrokerConfig::default());
    for key in every_key() {
        let (_, name) = key.split_once('.').unwrap();
        let listed = TEMPLATE.lines().any(|line| {
            let line = line.trim_start_matches("# ");
            line.starts_with(&format!("{name} = "))
        });
        assert!(listed, "{key} is missing from deploy/broker-template.toml");
    }
    assert_eq!(every_key().len(), 36 + 13 + 10);
}

#[test]
fn the_templates_commented_examples_are_valid() {
    let uncommented: String = TEMPLATE
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.split(' ').nth(1) == Some("=") => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let config = BrokerConfig::from_toml_str(&uncommented).unwrap();
    assert_eq!(config.market.peak_prove_khz, Some(500));
    assert_eq!(config.batcher.batch_max_fees, Some(tfc(1) / U256::from(10)));
}

#[test]
fn the_docs_describe_every_key() {
    assert!(DOCS.contains("## Configuration"));
    for key in every_key() {
        let (_, name) = key.split_once('.').unwrap();
        assert!(DOCS.contains(&format!("| `{name}` |")), "{key} is missing from docs/broker.md");
    }
}

#[test]
fn unknown_keys_are_refused_naming_them() {
    let cases = [
        ("[market]\nmin_mcycle_pricee = \"1 ETH\"", "market.min_mcycle_pricee"),
        ("[prover]\nstatus_poll_mss = 5", "prover.status_poll_mss"),
        ("[batcher]\nbatch_max_tim = 5", "batcher.batch_max_tim"),
        ("[market]\nmax_mcycle_limit = 5\n\n[markets]\nx = 1", "markets"),
        ("log_level = \"info\"", "log_level"),
    ];
    for (text, key) in cases {
        let err = refused(text);
        assert_eq!(err.code(), "TIFFIN-BROKER-002", "{err}");
        assert_eq!(err.key(), Some(key), "{err}");
        let bare = key.rsplit('.').next().unwrap();
        let message = err.to_string();
        assert!(message.starts_with(&format!("TIFFIN-BROKER-002: {key}: ")), "{message}");
        assert!(message.contains(&format!("unknown field `{bare}`")), "{message}");
        assert!(message.contains("line "), "{message}");
    }
}

#[test]
fn values_of_the_wrong_type_are_refused_naming_the_key() {
    let cases = [
        ("[market]\nmax_mcycle_limit = \"lots\"", "market.max_mcycle_limit"),
        ("[market]\nmin_deadline = -1", "market.min_deadline"),
        ("[market]\nmin_mcycle_price = \"1 TFC\"", "market.min_mcycle_price"),
        ("[market]\nmax_collateral = \"1 ETH\"", "market.max_collateral"),
        ("[market]\nbalance_warn_threshold = \"-1\"", "market.balance_warn_threshold"),
        (
            "[market]\npriority_requestor_addresses = [\n  \"0x12\",\n]",
            "market.priority_requestor_addresses",
        ),
        ("[market]\norder_pricing_priority = \"fastest\"", "market.order_pricing_priority"),
        ("[market]\norder_commitment_priority = 3", "market.order_commitment_priority"),
        ("[prover]\nreceipt_kind = \"groth16\"", "prover.receipt_kind"),
        ("[prover]\nstatus_poll_ms = 1.5", "prover.status_poll_ms"),
        ("[batcher]\nsingle_txn_fulfill = \"yes\"", "batcher.single_txn_fulfill"),
        ("[batcher]\nbatch_max_fees = \"lots\"", "batcher.batch_max_fees"),
        ("market = 5", "market"),
    ];
    for (text, key) in cases {
        let err = refused(text);
        assert_eq!(err.code(), "TIFFIN-BROKER-002", "{text:?}: {err}");
        assert_eq!(err.key(), Some(key), "{text:?}: {err}");
        assert!(err.to_string().starts_with(&format!("TIFFIN-BROKER-002: {key}: ")), "{err}");
    }
    let err = refused("[market]\nmin_mcycle_price = \"1 TFC\"").to_string();
    assert!(err.contains("bad amount \"1 TFC\""), "{err}");
}

#[test]
fn broken_toml_is_refused_with_the_line() {
    let err = refused("[market]\nmax_mcycle_limit = \n");
    assert_eq!(err.code(), "TIFFIN-BROKER-002");
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn out_of_range_values_are_refused_naming_the_key() {
    let cases = [
        ("[market]\nmax_concurrent_proofs = 0", "market.max_concurrent_proofs"),
        ("[market]\nmax_concurrent_preflights = 0", "market.max_concurrent_preflights"),
        ("[market]\nevents_poll_ms = 0", "market.events_poll_ms"),
        ("[market]\nevents_poll_blocks = 0", "market.events_poll_blocks"),
        ("[market]\npeak_prove_khz = 0", "market.peak_prove_khz"),
        (
            "[market]\nexpected_probability_win_secondary_fulfillment = 101",
            "market.expected_probability_win_secondary_fulfillment",
        ),
        ("[market]\nmin_mcycle_limit = 9000", "market.min_mcycle_limit"),
        (
            "[market]\nbalance_warn_threshold = \"1 gwei\"\nbalance_error_threshold = \"2 gwei\"",
            "market.balance_warn_threshold",
        ),
        (
            "[market]\ncollateral_balance_warn_threshold = 1\ncollateral_balance_error_threshold = 2",
            "market.collateral_balance_warn_threshold",
        ),
        ("[prover]\nstatus_poll_ms = 0", "prover.status_poll_ms"),
        ("[batcher]\nmin_batch_size = 0", "batcher.min_batch_size"),
        ("[batcher]\nbatch_poll_time_ms = 0", "batcher.batch_poll_time_ms"),
        ("[batcher]\ntxn_timeout = 0", "batcher.txn_timeout"),
        ("[batcher]\nmax_submission_attempts = 0", "batcher.max_submission_attempts"),
    ];
    for (text, key) in cases {
        let err = refused(text);
        assert_eq!(err.code(), "TIFFIN-BROKER-003", "{text:?}: {err}");
        assert_eq!(err.key(), Some(key), "{text:?}: {err}");
        assert!(err.to_string().starts_with(&format!("TIFFIN-BROKER-003: invalid {key}: ")));
    }
}

#[test]
fn amounts_take_units() {
    let text = "[market]\nmin_mcycle_price = \"10 gwei\"\n\
                min_mcycle_price_collateral_token = \"0.5TFC\"\nmax_collateral = 5\n\
                balance_warn_threshold = \"0.002 ETH\"\nbalance_error_threshold = \"1000 wei\"\n\
                [batcher]\nbatch_max_fees = 0.1\n";
    let config = BrokerConfig::from_toml_str(text).unwrap();
    assert_eq!(config.market.min_mcycle_price, gwei(10));
    assert_eq!(config.market.min_mcycle_price_collateral_token, tfc(1) / U256::from(2));
    assert_eq!(config.market.max_collateral, tfc(5));
    assert_eq!(config.market.balance_warn_threshold, Some(gwei(2_000_000)));
    assert_eq!(config.market.balance_error_threshold, Some(U256::from(1000)));
    assert_eq!(config.batcher.batch_max_fees, Some(gwei(100_000_000)));
}

#[test]
fn configs_round_trip_through_toml() {
    for config in [BrokerConfig::default(), everything_set()] {
        config.validate().unwrap();
        let text = config.to_toml_string().unwrap();
        assert_eq!(BrokerConfig::from_toml_str(&text).unwrap(), config, "{text}");
    }
    let text = BrokerConfig::default().to_toml_string().unwrap();
    assert!(text.contains("min_mcycle_price = \"0.00001 ETH\""), "{text}");
    assert!(text.contains("max_collateral = \"10 TFC\""), "{text}");
}

#[test]
fn files_are_loaded_and_unreadable_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    let err = BrokerConfig::load(&path).unwrap_err();
    assert_eq!(err.code(), "TIFFIN-BROKER-001");
    assert!(err.to_string().contains("broker.toml"), "{err}");
    std::fs::write(&path, "[market]\nmax_concurrent_proofs = 4\n").unwrap();
    assert_eq!(BrokerConfig::load(&path).unwrap().market.max_concurrent_proofs, 4);
}
