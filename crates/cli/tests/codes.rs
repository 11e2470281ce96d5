//! Every stable error code, as the error types themselves list it (`#[derive(Coded)]`, the code
//! written once in each message), is unique and documented in docs/architecture.md's
//! "Error codes" table. No proofs, no servers.

use std::collections::BTreeSet;

const ARCHITECTURE: &str = include_str!("../../../docs/architecture.md");

/// Every coded error type of the workspace, with its crate for the failure message.
fn all_codes() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("zkvm", tiffin_zkvm::ZkvmError::CODES),
        ("taskdb", tiffin_taskdb::Error::CODES),
        ("storage", tiffin_storage::Error::CODES),
        ("workflow planner", tiffin_workflow::planner::PlanError::CODES),
        ("api", tiffin_api::error::ApiError::CODES),
        ("api admin key", tiffin_api::auth::AdminKeyError::CODES),
        ("market", tiffin_market::MarketError::CODES),
        ("verifier", tiffin_verifier::VerifierError::CODES),
        ("tls", tiffin_tls::TlsError::CODES),
        ("broker", tiffin_broker::BrokerError::CODES),
        ("broker config", tiffin_broker::config::ConfigError::CODES),
    ]
}

/// The numbers the table's row for `area` names, single (`010`) or as ranges (`001–003`).
fn documented_numbers(area: &str) -> BTreeSet<u32> {
    let row = ARCHITECTURE
        .lines()
        .find(|l| l.starts_with(&format!("| `{area}-0xx`")))
        .unwrap_or_else(|| panic!("docs/architecture.md has no row `{area}-0xx`"));
    let text = row.split('|').nth(3).unwrap_or("");
    let mut out = BTreeSet::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let three = |at: usize| -> Option<u32> {
            let s: String = chars.get(at..at + 3)?.iter().collect();
            let before = at.checked_sub(1).and_then(|b| chars.get(b)).copied();
            let after = chars.get(at + 3).copied();
            let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric());
            (s.chars().all(|c| c.is_ascii_digit()) && boundary(before) && boundary(after))
                .then(|| s.parse().ok())
                .flatten()
        };
        if let Some(first) = three(i) {
            if chars.get(i + 3) == Some(&'–')
                && let Some(last) = three(i + 4)
            {
                out.extend(first..=last);
                i += 7;
                continue;
            }
            out.insert(first);
            i += 3;
            continue;
        }
        i += 1;
    }
    out
}

#[test]
fn every_code_is_unique_and_documented() {
    let mut seen = BTreeSet::new();
    let mut missing = Vec::new();
    for (owner, codes) in all_codes() {
        assert!(!codes.is_empty(), "{owner} lists no codes");
        for code in codes {
            assert!(seen.insert(*code), "{code} ({owner}) is used by two error types");
            let (area, n) = code.rsplit_once('-').unwrap();
            if !documented_numbers(area).contains(&n.parse().unwrap()) {
                missing.push(format!("{code} ({owner})"));
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/architecture.md's Error codes table: {missing:?}");
}

#[test]
fn a_code_is_the_start_of_its_message() {
    let e = tiffin_taskdb::Error::JobNotFound(tiffin_taskdb::JobId::nil());
    assert_eq!(e.code(), "TIFFIN-TASKDB-010");
    assert!(e.to_string().starts_with("TIFFIN-TASKDB-010"), "{e}");
    let s = tiffin_storage::Error::TestServer("gone".into());
    assert!(s.to_string().starts_with(s.code()), "{s}");
}
