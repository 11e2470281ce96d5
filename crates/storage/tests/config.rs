//! Store config strings: the embedded defaults, and clear coded errors for bad strings.

use bytes::Bytes;
use tiffin_storage::{S3Config, StoreConfig, open_cold, open_hot, redact_url};

#[tokio::test]
async fn embedded_defaults_live_under_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.hot_budget_bytes = Some(1 << 20);
    let stores = config.open().await.unwrap();
    stores.cold.put("images/i", Bytes::from_static(b"elf")).await.unwrap();
    stores.hot.put("jobs/j/seg/0", Bytes::from_static(b"seg")).await.unwrap();
    assert!(dir.path().join("cold/images/i").is_file());
    assert!(dir.path().join("hot/jobs/j/seg/0").is_file());
    assert_eq!(stores.hot.budget(), Some(1 << 20));
    assert_eq!(stores.hot.usage().await.unwrap(), 3);
}

#[tokio::test]
async fn bad_config_strings_give_coded_errors() {
    for spec in [
        "",
        "ftp://host/x",
        "file://relative/path",
        "s3://",
        "s3://b?bogus=1",
        "s3://b?endpoint=ftp://x",
        "s3://b?endpoint=notaurl",
        "s3://b?allow_http=maybe",
        "s3://b?access_key_id=only-one",
        "s3://user:pw@bucket",
    ] {
        let e = open_cold(spec).unwrap_err();
        assert_eq!(e.code(), "TIFFIN-STORAGE-001", "{spec:?}: {e}");
        assert!(e.is_permanent());
        assert!(!e.to_string().contains("pw@"), "{e}");
    }
    for spec in ["", "mongodb://x", "file://relative", "redis://[bad"] {
        let e = open_hot(spec, None).await.unwrap_err();
        assert_eq!(e.code(), "TIFFIN-STORAGE-001", "{spec:?}: {e}");
    }
    let e = open_hot("redis://127.0.0.1:1/?namespace=", None).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-001", "{e}");
}

#[test]
fn s3_urls_parse_and_never_show_secrets() {
    let c = S3Config::parse(
        "s3://bucket/some/prefix?endpoint=http://127.0.0.1:9000&region=garage&access_key_id=AK&secret_access_key=SECRET",
    )
    .unwrap();
    assert_eq!(c.bucket, "bucket");
    assert_eq!(c.prefix, "some/prefix");
    assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(c.region, "garage");
    assert!(c.allow_http && c.path_style);
    assert!(!format!("{c:?}").contains("SECRET"));
    assert!(!c.describe().contains("SECRET"));

    let aws = S3Config::parse("s3://bucket?region=eu-west-1").unwrap();
    assert!(aws.endpoint.is_none() && !aws.allow_http && !aws.path_style);
    let https =
        S3Config::parse("s3://b?endpoint=https://minio.example:9000&path_style=false").unwrap();
    assert!(!https.allow_http && !https.path_style);

    let shown = redact_url("s3://b?secret_access_key=SECRET&region=r");
    assert!(!shown.contains("SECRET") && shown.contains("region=r"), "{shown}");
    assert!(!redact_url("redis://:pw@host:6379/").contains("pw"));
}

#[test]
fn missing_s3s_fs_names_the_setup_script() {
    // Only this test in this binary touches TIFFIN_S3S_FS (the S3 tests live in cold.rs).
    unsafe { std::env::set_var("TIFFIN_S3S_FS", "/nonexistent/s3s-fs") };
    let e = tiffin_storage::testing::S3Server::start().unwrap_err();
    unsafe { std::env::remove_var("TIFFIN_S3S_FS") };
    assert_eq!(e.code(), "TIFFIN-STORAGE-090");
    assert!(
        e.to_string().contains("scripts/setup") && e.to_string().contains("/nonexistent/s3s-fs"),
        "{e}"
    );
}
