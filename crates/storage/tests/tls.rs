//! The stores over TLS (docs/operations.md, "TLS"): a real redis-server speaking only TLS
//! (`rediss://`) and the s3s-fs server behind a TLS terminator (s3s-fs serves plain HTTP
//! only), each reached with the CA that signed its certificate — and each refusing a server
//! whose certificate another CA signed, with the coded error `TIFFIN-TLS-005`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tiffin_storage::testing::{RedisServer, RedisTls, S3Server};
use tiffin_storage::{StoreConfig, open_hot_with_ca};
use tiffin_tls::testing::{TestCa, tls_terminator};

#[tokio::test]
async fn redis_over_tls_trusts_the_ca_file_and_refuses_another_ca() {
    let (ca, other) = (TestCa::new("redis"), TestCa::new("other"));
    let issued = ca.issue_localhost("redis");
    let tls = RedisTls { cert: issued.cert, key: issued.key, ca: ca.ca_file(), password: None };
    let redis = RedisServer::start_tls(tls).expect("redis-server with TLS starts");
    assert!(redis.url().starts_with("rediss://"), "{}", redis.url());

    let hot = open_hot_with_ca(&redis.url(), None, Some(&ca.ca_file())).await.unwrap();
    hot.put("jobs/j/seg/0", Bytes::from_static(b"over tls")).await.unwrap();
    assert_eq!(hot.get("jobs/j/seg/0").await.unwrap(), Bytes::from_static(b"over tls"));

    let started = Instant::now();
    let err = open_hot_with_ca(&redis.url(), None, Some(&other.ca_file())).await.unwrap_err();
    let refused = tiffin_tls::untrusted_certificate(&err).unwrap_or_else(|| panic!("{err}"));
    assert_eq!(refused.code(), "TIFFIN-TLS-005", "{refused}");
    assert!(started.elapsed() < Duration::from_secs(10), "refused at once");

    // A CA file needs a TLS URL: no silent plain-text fallback.
    let plain = redis.url().replacen("rediss://", "redis://", 1);
    let err = open_hot_with_ca(&plain, None, Some(&ca.ca_file())).await.err().unwrap();
    assert!(err.to_string().contains("rediss://"), "{err}");
}

#[tokio::test]
async fn s3_over_https_trusts_the_ca_file_and_refuses_another_ca() {
    let (ca, other) = (TestCa::new("s3"), TestCa::new("other"));
    let issued = ca.issue_localhost("s3");
    let s3 = S3Server::start().expect("s3s-fs starts (scripts/setup)");
    let plain: std::net::SocketAddr = s3.endpoint().trim_start_matches("http://").parse().unwrap();
    let server_tls = tiffin_tls::ServerTls::load(&issued.cert, &issued.key).unwrap();
    let https = tls_terminator(server_tls, plain).await.unwrap();
    let url =
        s3.store_url().replace(&s3.endpoint(), &format!("https://localhost:{}", https.port()));

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = StoreConfig::new(dir.path());
    cfg.store = Some(url);
    cfg.hot_store = Some("memory://".into());
    cfg.ca_file = Some(ca.ca_file());
    let stores = cfg.open().await.unwrap();
    stores.cold.put("images/i", Bytes::from_static(b"over https")).await.unwrap();
    assert_eq!(stores.cold.get("images/i").await.unwrap(), Bytes::from_static(b"over https"));

    cfg.ca_file = Some(other.ca_file());
    let started = Instant::now();
    let err = cfg.open().await.expect_err("another CA's certificate is refused");
    assert!(err.to_string().contains("TIFFIN-TLS-005"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "refused at once, not retried");
}
