//! The `tiffin` binary run the way a user runs it: `tiffin prove` on the embedded default,
//! `tiffin up` with `tiffin admin …` and `tiffin session …` against it, and the errors a user
//! sees for bad arguments (non-zero exit, a clear message, a stable code where one exists).

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::{Proc, fails, field, metrics_line, ok, scrape_until, tiffin, up, up_with};
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
        cmd.arg("--json").args(args);
        cmd
    };
    let json = |s: String| -> Value { serde_json::from_str(&s).unwrap() };

    // The status page is served, without a key, by the same router.
    let page = scrape_until(&format!("{}/ui", up.url), |page| page.contains("ui/app.js"));
    assert!(page.contains("<title>Tiffin status</title>"), "{page}");

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
    let capacity = json(ok(admin(&["capacity", "--cycles", "65536", "--window-secs", "60"])));
    assert_eq!(capacity["window_secs"], 60, "{capacity}");
    assert_eq!(capacity["kinds"]["exec"]["agents_alive"], 1, "{capacity}");
    assert!(capacity["kinds"]["exec"]["tasks_finished"].as_i64() >= Some(2), "{capacity}");
    assert!(capacity["estimate"].is_null(), "no prover: nothing promised: {capacity}");
    // acme's exec reservation pins up's one executor; its idle rule is set per kind.
    let pins = json(ok(admin(&["pins"])));
    assert_eq!(
        (pins[0]["tenant"].as_str(), pins[0]["kind"].as_str(), pins[0]["idle"].as_str()),
        (Some("acme"), Some("exec"), Some("serve-others")),
        "{pins}"
    );
    let acme = json(ok(admin(&["set-tenant", "acme", "--idle", "exec=serve-others"])));
    assert_eq!(acme["reservation_idle"]["exec"], "serve-others", "{acme}");
    let err = fails(admin(&["set-tenant", "acme", "--idle", "exec=never"]));
    assert!(err.contains("--idle takes KIND=serve-others or KIND=wait"), "{err}");
    let status = ok(tiffin(&["session", "--url", &up.url, "--api-key", &acme_key, "status", &id]));
    assert_eq!(field(&status, "status:"), "SUCCEEDED");
    let args = ["session", "--url", &up.url, "--api-key", &acme_key, "status", "--json", &id];
    let status = json(ok(tiffin(&args)));
    assert_eq!(
        (status["status"].as_str(), status["stats"]["segments"].as_u64()),
        (Some("SUCCEEDED"), Some(1))
    );
    // Without --json, lists are tables: a header row, then one row per tenant.
    let table =
        ok(tiffin(&["admin", "--url", &up.url, "--data-dir", data.to_str().unwrap(), "tenants"]));
    let header = table.lines().next().unwrap_or_default();
    assert!(header.starts_with("id") && header.contains("storage_quota"), "{table}");
    assert!(table.lines().skip(1).any(|l| l.contains("acme")), "{table}");

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
    let key_file = |name: &str, text: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt as _;
        let path = if name == "admin.key" { data.join(name) } else { dir.path().join(name) };
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.to_str().unwrap().to_string()
    };
    key_file("admin.key", "\n", 0o600);
    let err = fails(up(&[]));
    assert!(err.contains("TIFFIN-CLI-002") && err.contains("admin.key"), "{err}");
    // Keys come from files only their owner can read, the saved one included.
    key_file("admin.key", "tfa_0123456789abcdef0123", 0o644);
    let err = fails(up(&[]));
    assert!(err.contains("TIFFIN-CLI-001") && err.contains("admin.key"), "{err}");
    std::fs::remove_file(data.join("admin.key")).unwrap();
    let open = key_file("open.key", "tfa_0123456789abcdef0123", 0o640);
    let err = fails(up(&["--admin-key-file", &open]));
    assert!(err.contains("TIFFIN-CLI-001") && !err.contains("tfa_0123"), "{err}");
    let short = key_file("short.key", "hunter2", 0o600);
    let err = fails(up(&["--admin-key-file", &short]));
    assert!(err.contains("TIFFIN-API-094"), "{err}");
}

/// `tiffin.toml` (`--config` or `TIFFIN_CONFIG`) sets any subcommand's flags under the command
/// line and the environment; its values are checked as the flags are, and unknown keys are
/// refused by name before anything starts.
#[test]
fn settings_file_values_sit_under_flags_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiffin.toml");
    let data = dir.path().join("data");
    let settings = format!(
        "data_dir = {:?}\n[up]\npo2 = 18\nsession_timeout_secs = 60\nadmin_key = \"short\"\nagents = 0\n",
        data.to_str().unwrap()
    );
    std::fs::write(&file, settings).unwrap();
    let cfg = file.to_str().unwrap();
    let printed = ok(tiffin(&["--config", cfg, "config", "print", "up", "--po2", "16"])
        .env("TIFFIN_SESSION_TIMEOUT_SECS", "90"));
    let line = |key: &str| {
        printed.lines().find(|l| l.starts_with(&format!("{key} ="))).unwrap_or_default().to_string()
    };
    assert_eq!(line("po2"), "po2 = \"16\"  # flag", "{printed}");
    assert_eq!(
        line("session_timeout_secs"),
        "session_timeout_secs = \"90\"  # environment TIFFIN_SESSION_TIMEOUT_SECS"
    );
    assert!(line("data_dir").ends_with(&format!("# file {cfg}")), "{printed}");
    assert!(line("admin_key").contains("<hidden>"), "secrets stay hidden: {printed}");
    assert!(line("listen").ends_with("# default"), "{printed}");
    // The file's values reach the command: its short admin key is refused at start, with
    // the same code as the flag.
    let err = fails(tiffin(&["up", "--listen", "127.0.0.1:0"]).env("TIFFIN_CONFIG", cfg));
    assert!(err.contains("TIFFIN-API-094"), "{err}");
    // An unknown key or a bad value is named before anything starts.
    std::fs::write(&file, "[up]\npo3 = 18\n").unwrap();
    let err = fails(tiffin(&["--config", cfg, "up"]));
    assert!(err.contains("\"po3\"") && err.contains("[up]"), "{err}");
    std::fs::write(&file, "[up]\npo2 = \"eighteen\"\n").unwrap();
    let err = fails(tiffin(&["--config", cfg, "up"]));
    assert!(err.contains("--po2") && err.contains("eighteen"), "{err}");
    // So is a segment size every session would refuse (po2 15 thrashes under risc0 3.1).
    std::fs::write(&file, "[up]\npo2 = 15\n").unwrap();
    let err = fails(tiffin(&["--config", cfg, "up"]));
    assert!(err.contains("--po2") && err.contains("TIFFIN-ZKVM-011"), "{err}");
}

/// `--metrics-listen` serves the process's metrics on a listener of its own: `tiffin up`'s
/// carry the API's and its in-process agents' series, which count an execute-only session.
#[test]
fn tiffin_up_serves_api_and_agent_metrics_on_metrics_listen() {
    let dir = tempfile::tempdir().unwrap();
    let up = up_with(&dir.path().join("data"), 16, 0, &["--metrics-listen", "127.0.0.1:0"]);
    let metrics = up.metrics_url.clone().expect("tiffin up prints where metrics are served");
    let mut session = tiffin(&["session", "--url", &up.url, "--api-key", &up.key, "submit"]);
    session.args(["--sample", "echo", "--input-hex", "00", "--execute-only", "--wait"]);
    ok(session);

    let completed = r#"tiffin_agent_tasks_completed_total{kind="exec"} 1"#;
    let text = scrape_until(&metrics, |t| t.contains(completed));
    for series in [
        completed,
        r#"tiffin_agent_tasks_claimed_total{kind="exec"} 1"#,
        r#"tiffin_agent_task_seconds_bucket{kind="exec",le="+Inf"} 1"#,
        r#"tiffin_agent_tasks_claimed_total{kind="snark"} 0"#,
        "tiffin_api_sessions_created_total 1",
        r#"tiffin_api_requests_total{method="POST",route="/sessions/create",status="200"} 1"#,
        r#"tiffin_queue_ready_tasks{tenant="default",kind="exec"} 0"#,
        r#"tiffin_agents_alive{kind="exec"} 1"#,
        r#"tiffin_queue_oldest_ready_seconds{kind="prove"} 0"#,
    ] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
    // Every series the shipped Grafana dashboard queries exists on a live cluster.
    let dashboard = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo and nextest set it"),
    )
    .join("../../deploy/grafana/tiffin-cluster.json");
    let dashboard: Value = serde_json::from_slice(&std::fs::read(dashboard).unwrap()).unwrap();
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= 15, "{exprs:?}");
    for expr in exprs {
        let names = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("tiffin_"));
        for name in names {
            let present = text.lines().any(|l| !l.starts_with('#') && l.starts_with(name));
            assert!(present, "the dashboard queries {name} ({expr}); /metrics has none");
        }
    }
}

/// A lone `tiffin agent` serves its metrics on `--metrics-listen` (its only HTTP endpoint):
/// its series start at zero for the kinds it serves, and there is nothing of the API's.
#[test]
fn tiffin_agent_serves_its_metrics_on_metrics_listen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("agent");
    let mut child = tiffin(&["agent", "--kinds", "exec,prove", "--metrics-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn tiffin agent");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let _agent = Proc(child);
    let metrics = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| metrics_line(&l))
        .expect("tiffin agent prints where metrics are served");

    let claimed = r#"tiffin_agent_tasks_claimed_total{kind="prove"} 0"#;
    let text = scrape_until(&metrics, |t| t.contains(claimed));
    for series in [
        claimed,
        r#"tiffin_agent_tasks_claimed_total{kind="exec"} 0"#,
        r#"tiffin_agent_tasks_failed_total{kind="exec",failure="permanent"} 0"#,
        "tiffin_agent_cycles_proven_total 0",
    ] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
    assert!(!text.contains("kind=\"join\"") && !text.contains("tiffin_api_"), "{text}");
}

/// The proving worker children of process `pid` (`tiffin __worker`).
fn workers(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1));
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            ppid == Some(&pid.to_string()) && String::from_utf8_lossy(&cmd).contains("__worker")
        })
        .collect()
}

/// (CPU seconds used, threads, resident KiB) of process `pid`.
fn usage(pid: u32) -> (f64, u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (ticks as f64 / 100.0, field("Threads:"), field("VmRSS:"))
}

/// Stopping a session kills its proof: the proving worker child is gone within 2 s of the
/// stop and `tiffin up` is idle again, and twenty stop-and-resubmit cycles leave its thread
/// count and memory where the first left them (stopped proofs used to run on to the end in
/// the agent's threads).
#[test]
fn stopped_sessions_free_the_cpu_at_once_and_leave_nothing_behind() {
    use tiffin_guests::{SPIN, spin_input};
    let dir = tempfile::tempdir().unwrap();
    let up = up(&dir.path().join("data"), 16, 1);
    let pid = up.proc.0.id();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client =
        bonsai_sdk::non_blocking::Client::from_parts(up.url, up.key, "3.1.0-rc.1").unwrap();
    let wait_for = |what: &str, limit: std::time::Duration, done: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while !done() {
            assert!(start.elapsed() < limit, "{what} after {limit:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    // Two segments at po2 16: the first proof alone takes tens of seconds.
    let input = rt.block_on(async {
        client.upload_img(&SPIN.image_id_hex(), SPIN.program.to_vec()).await.unwrap();
        client.upload_input(spin_input(30_000)).await.unwrap()
    });
    let mut first = None;
    for cycle in 1..=20 {
        let session =
            rt.block_on(client.create_session(SPIN.image_id_hex(), input.clone(), vec![], false));
        let session = session.unwrap();
        wait_for("no proving worker started", std::time::Duration::from_secs(60), &|| {
            !workers(pid).is_empty()
        });
        rt.block_on(session.stop(&client)).unwrap();
        let two = std::time::Duration::from_secs(2);
        wait_for("a proving worker still runs", two, &|| workers(pid).is_empty());
        let (cpu, threads, rss) = usage(pid);
        std::thread::sleep(std::time::Duration::from_millis(500));
        let busy = usage(pid).0 - cpu;
        assert!(busy < 0.2, "cycle {cycle}: tiffin up used {busy:.2} s of CPU in 0.5 s");
        let status = rt.block_on(session.status(&client)).unwrap();
        assert_eq!(status.status, "ABORTED", "cycle {cycle}");
        first.get_or_insert((threads, rss));
    }
    // Nothing stacked up: once the runtime's idle blocking threads retire (10 s), threads and
    // memory are back to what they were after the first cycle (stopped proofs that ran on
    // used to keep a thread and a prover's memory each, for minutes).
    let (t0, r0) = first.unwrap();
    let settled = || {
        let (_, threads, rss) = usage(pid);
        threads <= t0 + 2 && rss <= r0 + 128 * 1024
    };
    let limit = std::time::Duration::from_secs(20);
    wait_for("threads or memory still above the first cycle's", limit, &settled);
}
