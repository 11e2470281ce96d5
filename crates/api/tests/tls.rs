//! The API over HTTPS (docs/operations.md, "TLS"): the server `tiffin up`/`tiffin api` run,
//! with a certificate from a CA made at test time. A client trusting that CA creates a tenant;
//! one trusting another CA is refused with `TIFFIN-TLS-005`; and replacing the certificate files
//! switches new handshakes to the new certificate while an open connection goes on serving.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tiffin_api::server::Server;
use tiffin_api::{ApiConfig, AppState, TenantStore, hash_key};
use tiffin_storage::Stores;
use tiffin_taskdb::{Config, SqliteTaskDb, TaskDb};
use tiffin_tls::testing::TestCa;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::client::TlsStream;

const ADMIN_KEY: &str = "tls-test-admin-key";

async fn server(dir: &Path, tls: tiffin_tls::ServerTls) -> Server {
    let sqlite = dir.join("taskdb.sqlite");
    let db: Arc<dyn TaskDb> =
        Arc::new(SqliteTaskDb::open(&sqlite, Config::default()).await.unwrap());
    let tenants = TenantStore::sqlite(&sqlite).await.unwrap();
    let cfg = ApiConfig { admin_key_hash: Some(hash_key(ADMIN_KEY)), ..ApiConfig::default() };
    let cluster = tiffin_workflow::Cluster::new(db, Stores::memory(None));
    let state = AppState::new(cluster, tenants, cfg);
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Server::start_with_tls(addr, state, Some(tls)).await.unwrap()
}

fn client(ca: &TestCa) -> reqwest::Client {
    tiffin_tls::reqwest_client(Some(&ca.ca_file())).unwrap().build().unwrap()
}

/// One `GET /health` on an open connection; the status line.
async fn health(conn: &mut TlsStream<tokio::net::TcpStream>) -> String {
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        let Some(end) = text.find("\r\n\r\n") else { continue };
        let length = text[..end]
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_string)
            })
            .map(|v| v.trim().parse::<usize>().unwrap())
            .unwrap_or(0);
        if got.len() >= end + 4 + length {
            return text.lines().next().unwrap().to_string();
        }
    }
}

#[tokio::test]
async fn https_serves_with_the_ca_refuses_another_and_reloads_without_dropping_connections() {
    let (ca, other) = (TestCa::new("api"), TestCa::new("other"));
    let files = ca.issue_localhost("api");
    let dir = tempfile::tempdir().unwrap();
    let server =
        server(dir.path(), tiffin_tls::ServerTls::load(&files.cert, &files.key).unwrap()).await;
    let url = server.url().replace("127.0.0.1", "localhost");
    assert!(url.starts_with("https://"), "{url}");

    let created = client(&ca)
        .post(format!("{url}/admin/tenants"))
        .header("x-admin-key", ADMIN_KEY)
        .json(&json!({ "name": "over-tls" }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.text().await.unwrap());

    let err = client(&other).get(format!("{url}/health")).send().await.unwrap_err();
    let refused = tiffin_tls::untrusted_certificate(&err).unwrap_or_else(|| panic!("{err:?}"));
    assert_eq!(refused.code(), "TIFFIN-TLS-005");
    let plain = reqwest::get(format!("http://{}/health", server.addr)).await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true), "no plain HTTP");

    // An open connection, then new files from the other CA in place of the old ones.
    let connector =
        tokio_rustls::TlsConnector::from(tiffin_tls::client_config(&ca.ca_file()).unwrap());
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut open = connector.connect(name, tcp).await.unwrap();
    assert!(health(&mut open).await.contains("200"));
    let renewed = other.issue_localhost("renewed");
    std::fs::copy(&renewed.key, &files.key).unwrap();
    std::fs::copy(&renewed.cert, &files.cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while client(&other).get(format!("{url}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the new certificate was not picked up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(client(&ca).get(format!("{url}/health")).send().await.is_err(), "old CA now refused");
    assert!(health(&mut open).await.contains("200"), "the open connection still serves");
    server.shutdown().await;
}
