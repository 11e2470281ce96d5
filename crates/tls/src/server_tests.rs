//! Tests of server.rs (beside it, so that the test CA of `testing`, which uses the server, is
//! not imported by the server module itself).

use std::path::Path;
use std::time::Duration;

use crate::server::*;
use crate::testing::TestCa;

#[test]
fn a_pair_loads_only_when_both_files_hold_a_certificate_and_its_key() {
    let (ca, other) = (TestCa::new("a"), TestCa::new("b"));
    let good = ca.issue_localhost("good");
    let foreign = other.issue_localhost("foreign");
    let empty = ca.dir().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let missing = ca.dir().join("missing.pem");
    /// Name, --tls-cert, --tls-key, the code expected (none: loads).
    type Case<'a> = (&'a str, Option<&'a Path>, Option<&'a Path>, Option<&'a str>);
    let cases: [Case; 7] = [
        ("both", Some(&good.cert), Some(&good.key), None),
        ("neither: plain HTTP", None, None, None),
        ("cert only", Some(&good.cert), None, Some("TIFFIN-TLS-004")),
        ("key only", None, Some(&good.key), Some("TIFFIN-TLS-004")),
        ("missing cert", Some(&missing), Some(&good.key), Some("TIFFIN-TLS-001")),
        ("no certificate", Some(&empty), Some(&good.key), Some("TIFFIN-TLS-002")),
        ("another's key", Some(&good.cert), Some(&foreign.key), Some("TIFFIN-TLS-003")),
    ];
    for (name, cert, key, want) in cases {
        match (tls_pair(cert, key), want) {
            (Ok(_), None) => {}
            (Err(e), Some(code)) => {
                assert_eq!(e.code(), code, "{name}: {e}");
                assert!(e.to_string().starts_with(code), "{name}: {e}");
                let key_text = std::fs::read_to_string(&foreign.key).unwrap();
                let body = key_text.lines().nth(1).unwrap();
                assert!(!e.to_string().contains(body), "{name}: no key bytes in errors");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
    let empty_key = ca.dir().join("empty-key.pem");
    std::fs::write(&empty_key, "").unwrap();
    let err = ServerTls::load(&good.cert, &empty_key).unwrap_err();
    assert_eq!(err.code(), "TIFFIN-TLS-003", "{err}");
}

#[test]
fn a_failed_reload_keeps_the_certificate_in_use() {
    let ca = TestCa::new("a");
    let files = ca.issue_localhost("srv");
    let tls = ServerTls::load(&files.cert, &files.key).unwrap();
    let before = tls.current_certificate();
    assert!(!tls.reload_if_changed().unwrap(), "nothing changed");
    std::fs::write(&files.cert, "half-written").unwrap();
    assert_eq!(tls.reload_if_changed().unwrap_err().code(), "TIFFIN-TLS-002");
    assert_eq!(tls.current_certificate(), before, "the old certificate stays");
    let renewed = ca.issue_localhost("renewed");
    std::fs::copy(&renewed.cert, &files.cert).unwrap();
    std::fs::copy(&renewed.key, &files.key).unwrap();
    assert!(tls.reload_if_changed().unwrap());
    assert_ne!(tls.current_certificate(), before, "the new certificate is in use");
}

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let ca = TestCa::new("a");
    let files = ca.issue_localhost("srv");
    let tls = ServerTls::load(&files.cert, &files.key).unwrap();
    let before = tls.current_certificate();
    // A poll too slow to matter: only the signal can reload within the test.
    let reloader = tls.spawn_reloader(Duration::from_secs(3600)).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // its first, immediate check
    let renewed = ca.issue_localhost("renewed");
    std::fs::copy(&renewed.cert, &files.cert).unwrap();
    std::fs::copy(&renewed.key, &files.key).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(tls.current_certificate(), before, "nothing reloads it yet");
    let pid = std::process::id().to_string();
    let sent = std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(sent.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while tls.current_certificate() == before {
        assert!(std::time::Instant::now() < deadline, "SIGHUP did not reload");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reloader.abort();
}
