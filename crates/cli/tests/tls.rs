//! Every link over TLS, and every secret from a file (docs/operations.md, "TLS" and "Secrets in
//! files"). No proofs: an execute-only session is the most any test here runs.
//!
//! - The broker's two links: the cluster API and the verifier service, each served over HTTPS
//!   in this process, reached with the CA that signed them and refused (`TIFFIN-TLS-005`) with
//!   another.
//! - A cluster as an operator starts it on several machines: `tiffin api` (HTTPS) and one
//!   `tiffin agent`, both on PostgreSQL (`ssl=on`, verify-full), Redis (TLS only, a password)
//!   and S3 (https), every secret in a mode-0600 file; `tiffin admin` and `tiffin session` over
//!   HTTPS with `--ca-file`, refused under another CA; then every log is searched for each
//!   secret.

mod common;

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use alloy::primitives::{Address, B256};
use common::{Proc, fails, field, ok, tiffin};
use tiffin_api::server::Server;
use tiffin_api::{ApiConfig, AppState, TenantDefaults, TenantStore};
use tiffin_broker::attest::VerifierService;
use tiffin_broker::cluster::{Cluster, NewSession, ReceiptKind};
use tiffin_storage::testing::{RedisServer, RedisTls, S3Server};
use tiffin_tls::ServerTls;
use tiffin_tls::testing::{Issued, TestCa, tls_terminator};

/// Writes `secret` to `dir/name` with mode 0600.
fn secret_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path);
    f.as_mut().unwrap().write_all(secret.as_bytes()).unwrap();
    path
}

fn load(issued: &Issued) -> ServerTls {
    ServerTls::load(&issued.cert, &issued.key).unwrap()
}

/// An API server over HTTPS (SQLite, stores in memory, no agents) and a tenant key on it.
async fn api_over_tls(dir: &Path, tls: ServerTls) -> (Server, String) {
    let sqlite = dir.join("taskdb.sqlite");
    let db = tiffin_taskdb::SqliteTaskDb::open(&sqlite, Default::default()).await.unwrap();
    let tenants = TenantStore::sqlite(&sqlite).await.unwrap();
    tenants.create_tenant("broker", &TenantDefaults::default()).await.unwrap();
    let key = tenants.create_key("broker", "test").await.unwrap().0;
    let cluster = tiffin_workflow::Cluster::new(Arc::new(db), tiffin_storage::Stores::memory(None));
    let state = AppState::new(cluster, tenants, ApiConfig::default());
    let server = Server::start_with_tls("127.0.0.1:0".parse().unwrap(), state, Some(tls));
    (server.await.unwrap(), key)
}

/// A verifier service over HTTPS; its URL.
async fn verifier_over_tls(tls: ServerTls) -> String {
    use alloy::signers::local::PrivateKeySigner;
    let verifier = tiffin_verifier::Verifier::new(
        tiffin_market::Attestor::new(PrivateKeySigner::random()),
        tiffin_zkvm::ImageId::from_words(tiffin_guests::SET_BUILDER.image_id),
    );
    let config = tiffin_verifier::ServiceConfig { tls: Some(tls), ..Default::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(tiffin_verifier::serve(listener, verifier, config, std::future::pending()));
    format!("https://localhost:{port}")
}

#[test]
fn the_broker_reaches_the_api_and_the_verifier_over_tls_and_refuses_another_ca() {
    let (ca, other) = (TestCa::new("cluster"), TestCa::new("other"));
    // What `tiffin broker --ca-file` does for bonsai-sdk's client, before any thread starts.
    // SAFETY: the test's own process (nextest runs each test alone), no thread yet.
    unsafe { std::env::set_var("SSL_CERT_FILE", ca.ca_file()) };
    tiffin_tls::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (api, key) = api_over_tls(dir.path(), load(&ca.issue_localhost("api"))).await;
        let url = api.url().replace("127.0.0.1", "localhost");
        let cluster = Cluster::with_ca(&url, &key, Some(&ca.ca_file())).unwrap();
        assert!(!cluster.has_image(&"ab".repeat(32)).await.unwrap(), "bonsai-sdk over HTTPS");
        let input = cluster.upload_input(b"over tls".to_vec()).await.unwrap();
        let session = NewSession {
            image_id: &"ab".repeat(32),
            input: &input,
            assumptions: &[],
            execute_only: true,
            cycle_limit: None,
            kind: ReceiptKind::Succinct,
        };
        let err = cluster.start_due(session, None).await.unwrap_err().to_string();
        assert!(
            err.contains("TIFFIN-API-") && !err.contains("TIFFIN-TLS"),
            "the API answers: {err}"
        );
        let wrong = Cluster::with_ca(&url, &key, Some(&other.ca_file())).unwrap();
        let err = wrong.start_due(session, None).await.unwrap_err().to_string();
        assert!(err.contains("TIFFIN-TLS-005"), "{err}");

        let verifier = verifier_over_tls(load(&ca.issue_localhost("verifier"))).await;
        let prover = Address::repeat_byte(7);
        let service = VerifierService::with_ca(&verifier, Some(&ca.ca_file())).unwrap();
        let err = service.attest(B256::ZERO, b"no receipt".to_vec(), prover).await.unwrap_err();
        let err = err.to_string();
        assert!(err.contains("TIFFIN-VERIFIER-") && !err.contains("TIFFIN-TLS"), "{err}");
        let service = VerifierService::with_ca(&verifier, Some(&other.ca_file())).unwrap();
        let err = service.attest(B256::ZERO, b"no receipt".to_vec(), prover).await.unwrap_err();
        assert!(err.to_string().contains("TIFFIN-TLS-005"), "{err}");
        api.shutdown().await;
    });
}

/// The secrets of the cluster below: each must appear in no log.
const PG_PASSWORD: &str = "pg-secret-7f3a91c2";
const REDIS_PASSWORD: &str = "redis-secret-52be0d17";
const ADMIN_KEY: &str = "tfa_admin-secret-c0ffee4242";

/// Spawns a `tiffin` process with `args`, its stderr (at debug level) in `log`.
fn spawn_logged(args: &[String], log: &Path) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_tiffin"))
        .args(args)
        .env("TIFFIN_LOG", "debug")
        .env_remove("TIFFIN_ADMIN_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("spawn tiffin");
    Proc(child)
}

/// PostgreSQL, Redis and S3 over TLS (certificates of `ca`), and the flags that reach them
/// with every secret in a file under `dir`.
struct Backends {
    _pg: tiffin_taskdb::testing::TestPostgres,
    _redis: RedisServer,
    _s3: S3Server,
    _rt: tokio::runtime::Runtime,
    args: Vec<String>,
}

fn backends(ca: &TestCa, dir: &Path) -> Backends {
    let pg_cert = ca.issue_localhost("postgres");
    let pg = tiffin_taskdb::testing::TestPostgres::start_tls(&pg_cert.cert, &pg_cert.key).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(pg.create_database());
    // verify-full and sslrootcert come from --ca-file.
    let db_url = db.replacen("postgres@", &format!("postgres:{PG_PASSWORD}@"), 1);
    let r = ca.issue_localhost("redis");
    let tls = RedisTls {
        cert: r.cert,
        key: r.key,
        ca: ca.ca_file(),
        password: Some(REDIS_PASSWORD.into()),
    };
    let redis = RedisServer::start_tls(tls).unwrap();
    let s3 = S3Server::start().expect("s3s-fs starts (scripts/setup)");
    let plain = s3.endpoint().trim_start_matches("http://").parse().unwrap();
    let https = rt.block_on(tls_terminator(load(&ca.issue_localhost("s3")), plain)).unwrap();
    let store = format!(
        "s3://{}?endpoint=https://localhost:{}&region={}",
        S3Server::BUCKET,
        https.port(),
        S3Server::REGION
    );
    let file = |name: &str, secret: &str| secret_file(dir, name, secret).display().to_string();
    let args = vec![
        "--database-url-file".into(),
        file("db-url", &db_url),
        "--hot-store".into(),
        redis.url(),
        "--redis-password-file".into(),
        file("redis-password", REDIS_PASSWORD),
        "--store".into(),
        store,
        "--s3-access-key-file".into(),
        file("s3-access", S3Server::ACCESS_KEY),
        "--s3-secret-key-file".into(),
        file("s3-secret", S3Server::SECRET_KEY),
        "--ca-file".into(),
        ca.ca_file().display().to_string(),
    ];
    Backends { _pg: pg, _redis: redis, _s3: s3, _rt: rt, args }
}

#[test]
fn a_cluster_over_tls_with_secrets_in_files_works_and_logs_no_secret() {
    let (ca, other) = (TestCa::new("cluster"), TestCa::new("other"));
    let dir = tempfile::tempdir().unwrap();
    let b = backends(&ca, dir.path());
    let api_cert = ca.issue_localhost("api");
    let admin_file = secret_file(dir.path(), "admin-key", ADMIN_KEY);
    let mut api_args: Vec<String> = ["api", "--listen", "127.0.0.1:0"].map(String::from).to_vec();
    api_args.extend(["--tls-cert".into(), api_cert.cert.display().to_string()]);
    api_args.extend(["--tls-key".into(), api_cert.key.display().to_string()]);
    api_args.extend(["--admin-key-file".into(), admin_file.display().to_string()]);
    api_args.extend(["--data-dir".into(), dir.path().join("api").display().to_string()]);
    api_args.extend(b.args.iter().cloned());
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut api = spawn_logged(&api_args, &logs.join("api.log"));
    let mut lines = BufReader::new(api.0.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("tiffin api exited early; see its log").unwrap();
        if let Some(url) = line.strip_prefix("Tiffin API listening on ") {
            break url.trim().replace("127.0.0.1", "localhost");
        }
    };
    assert!(url.starts_with("https://"), "{url}");
    std::thread::spawn(move || for _ in lines {});
    let mut agent_args: Vec<String> =
        ["agent", "--id", "tls-agent", "--kinds", "exec,aux"].map(String::from).to_vec();
    agent_args.extend(["--data-dir".into(), dir.path().join("agent").display().to_string()]);
    agent_args.extend(b.args.iter().cloned());
    let _agent = spawn_logged(&agent_args, &logs.join("agent.log"));

    let ca_file = ca.ca_file().display().to_string();
    let admin = |ca: &str| {
        let file = admin_file.to_str().unwrap();
        tiffin(&["admin", "--url", &url, "--ca-file", ca, "--admin-key-file", file, "--json"])
    };
    let created: serde_json::Value =
        serde_json::from_str(&ok(admin(&ca_file).args(["create-tenant", "acme"]))).unwrap();
    let api_key = created["key"].as_str().unwrap().to_string();
    let key_file = secret_file(dir.path(), "api-key", &api_key).display().to_string();
    let session = |ca: &str| {
        tiffin(&["session", "--url", &url, "--ca-file", ca, "--api-key-file", &key_file])
    };
    let out = session(&ca_file)
        .args(["submit", "--sample", "echo", "--input-hex", "6f6e65", "--execute-only", "--wait"])
        .output()
        .unwrap();
    let shown = format!("{}{}", common::stdout(&out), common::stderr(&out));
    assert!(out.status.success(), "{shown}");
    assert_eq!(field(&shown, "journal (hex):"), "6f6e65", "executed by the agent over TLS");
    let id = field(&shown, "session:");

    let other_ca = other.ca_file().display().to_string();
    let err = fails(admin(&other_ca).arg("tenants"));
    assert!(err.contains("TIFFIN-TLS-005"), "{err}");
    let err = fails(session(&other_ca).args(["status", &id]));
    assert!(err.contains("TIFFIN-TLS-005"), "{err}");
    std::fs::write(logs.join("session.log"), &shown).unwrap();

    drop(api);
    let secrets = [PG_PASSWORD, REDIS_PASSWORD, S3Server::SECRET_KEY, ADMIN_KEY, api_key.as_str()];
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.is_empty() || path.ends_with("session.log"), "{path:?} logged nothing");
        for secret in secrets {
            assert!(!text.contains(secret), "{path:?} shows a secret:\n{text}");
        }
    }
}
