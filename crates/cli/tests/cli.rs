//! The `tiffin` binary run the way a user runs it: `tiffin prove` on the embedded default,
//! `tiffin up` with `tiffin admin …` and `tiffin session …` against it, and the errors a user
//! sees for bad arguments (non-zero exit, a clear message, a stable code where one exists).

mod common;

use common::{fails, field, ok, tiffin, up};
use serde_json::Value;
use tiffin_guests::ECHO;
use tiffin_zkvm::{ImageId, Receipt, decode, verify};

#[test]
fn tiffin_prove_writes_a_verified_receipt_and_refuses_bad_programs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let out =
        ok(tiffin(&["prove", "--sample", "echo", "--input-hex", "68656c6c6f2c2074696666696e"])
            .args(["--po2", "14", "--receipt-kind", "composite", "--data-dir", data_s]));
    assert_eq!(field(&out, "journal (utf8):"), "hello, tiffin");
    let job = field(&out, "job:");
    let path = data.join("receipts").join(format!("{job}.receipt"));
    let receipt: Receipt = decode("receipt", &std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(receipt.journal.bytes, b"hello, tiffin");
    verify(&receipt, ImageId::from_words(ECHO.image_id)).unwrap();
    assert!(field(&out, "segments:").parse::<u32>().unwrap() >= 1);

    // A program file that is not a program, one that does not exist, an unknown sample and
    // input that is not hex: each a clear error before any job runs.
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, b"definitely not a program").unwrap();
    let err = fails(tiffin(&["prove", garbage.to_str().unwrap(), "--data-dir", data_s]));
    assert!(err.contains("TIFFIN-ZKVM-001"), "{err}");
    let err = fails(tiffin(&["prove", "/nonexistent/guest.bin", "--data-dir", data_s]));
    assert!(err.contains("reading") && err.contains("/nonexistent/guest.bin"), "{err}");
    let err = fails(tiffin(&["prove", "--sample", "nope", "--data-dir", data_s]));
    assert!(err.contains("unknown sample guest") && err.contains("echo"), "{err}");
    let err = fails(tiffin(&["prove", "--sample", "echo", "--input-hex", "xyz"]));
    assert!(err.contains("--input-hex is not valid hex"), "{err}");
    let err = fails(tiffin(&["prove", "--sample", "echo", "--receipt-kind", "groth17"]));
    assert!(err.contains("groth17"), "{err}");
    // Only the one good job left a receipt.
    assert_eq!(std::fs::read_dir(data.join("receipts")).unwrap().count(), 1);
}

#[test]
fn tiffin_admin_and_session_against_tiffin_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let up = up(&data, 16, 0);
    let admin = |args: &[&str]| {
        let mut cmd = tiffin(&["admin", "--url", &up.url, "--data-dir", data.to_str().unwrap()]);
        cmd.args(args);
        cmd
    };
    let json = |s: String| -> Value { serde_json::from_str(&s).unwrap() };

    // The admin key comes from the data dir `tiffin up` wrote it to.
    let tenants = json(ok(admin(&["tenants"])));
    assert!(tenants.as_array().unwrap().iter().any(|t| t["name"] == "default"), "{tenants}");
    let created = json(ok(admin(&["create-tenant", "acme", "--concurrent-proofs", "3"]).args([
        "--priority",
        "2",
        "--reserve",
        "exec=1",
    ])));
    let acme_key = created["key"].as_str().expect("first key shown once").to_string();
    let acme = json(ok(admin(&["set-tenant", "acme", "--exec-cycle-limit", "5"])));
    assert_eq!(acme["concurrent_proofs"], 3);
    assert_eq!(acme["exec_cycle_limit"], 5);
    assert_eq!(acme["priority"], 2.0);
    assert_eq!(acme["reservations"]["exec"], 1);
    let shown = json(ok(admin(&["tenant", "acme"])));
    assert_eq!(shown["exec_cycle_limit"], 5, "{shown}");

    // A second key works until it is revoked.
    let second = json(ok(admin(&["create-key", "acme", "--label", "ci"])));
    let session = |key: &str, input_hex: &str| {
        let mut cmd = tiffin(&["session", "--url", &up.url, "--api-key", key, "submit"]);
        cmd.args(["--sample", "echo", "--input-hex", input_hex, "--execute-only", "--wait"]);
        cmd
    };
    let out = ok(session(second["key"].as_str().unwrap(), "6f6e65"));
    assert_eq!(field(&out, "journal (hex):"), "6f6e65");
    ok(admin(&["revoke-key", second["id"].as_str().unwrap()]));
    let err = fails(session(second["key"].as_str().unwrap(), "6f6e65"));
    assert!(err.contains("TIFFIN-API-002"), "{err}");

    // The first key: a session, then its job in the admin views.
    let out = ok(session(&acme_key, "74776f"));
    let id = field(&out, "session:");
    let jobs = json(ok(admin(&["jobs", "--tenant", "acme"])));
    assert!(jobs.as_array().unwrap().iter().any(|j| j["id"] == id.as_str()), "{jobs}");
    let job = json(ok(admin(&["job", &id])));
    assert_eq!(job["state"], "succeeded", "{job}");
    let queues = json(ok(admin(&["queues"])));
    assert!(queues.as_array().unwrap().iter().any(|q| q["tenant"] == "acme"), "{queues}");
    let agents = json(ok(admin(&["agents"])));
    assert!(!agents.as_array().unwrap().is_empty(), "up's executor reports itself");
    assert!(agents[0]["host"].is_string() && agents[0]["status"] == "alive", "{agents}");
    let report = json(ok(admin(&["queue-report", "--target-secs", "60"])));
    assert_eq!(report["target_secs"], 60, "{report}");
    assert_eq!(report["kinds"]["exec"]["agents_alive"], 1, "{report}");
    let status = ok(tiffin(&["session", "--url", &up.url, "--api-key", &acme_key, "status", &id]));
    assert_eq!(field(&status, "status:"), "SUCCEEDED");

    // The default tenant's key printed by `tiffin up` works too.
    ok(session(&up.key, "00"));

    // Errors: a wrong admin key, no admin key at all, a bad --reserve, an unknown tenant.
    let err = fails(admin(&["--admin-key", "wrong-key", "tenants"]));
    assert!(err.contains("401") && err.contains("TIFFIN-API-"), "{err}");
    let elsewhere = dir.path().join("elsewhere");
    let err =
        fails(tiffin(&["admin", "--url", &up.url, "--data-dir"]).arg(&elsewhere).arg("tenants"));
    assert!(err.contains("admin.key"), "{err}");
    let err = fails(admin(&["set-tenant", "acme", "--reserve", "prove"]));
    assert!(err.contains("KIND=N"), "{err}");
    ok(admin(&["delete-tenant", "acme"]));
    let err = fails(admin(&["tenant", "acme"]));
    assert!(err.contains("404"), "{err}");
    let err = fails(session(&acme_key, "00"));
    assert!(err.contains("TIFFIN-API-002"), "a deleted tenant's key is refused: {err}");
}

/// An empty or short admin key would let anyone administer the cluster (an empty
/// `x-admin-key` header matched an empty key): `tiffin up` refuses to start with one, whether
/// it comes from the flag, the environment or a saved admin.key.
#[test]
fn tiffin_up_refuses_an_empty_or_short_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let up = |extra: &[&str]| {
        let mut cmd = tiffin(&["up", "--listen", "127.0.0.1:0", "--agents", "0"]);
        cmd.args(["--data-dir", data_s]).args(extra);
        cmd
    };
    let err = fails(up(&["--admin-key", ""]));
    assert!(err.contains("TIFFIN-API-093"), "{err}");
    let err = fails(up(&[]).env("TIFFIN_ADMIN_KEY", "hunter2"));
    assert!(err.contains("TIFFIN-API-094"), "{err}");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("admin.key"), "\n").unwrap();
    let err = fails(up(&[]));
    assert!(err.contains("TIFFIN-API-093") && err.contains("admin.key"), "{err}");
}
