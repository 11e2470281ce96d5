//! One conformance suite for every cold-store backend: local directory (path and file:// URL),
//! memory, and S3 through a real s3s-fs server.

use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use tiffin_storage::{ColdStore, PART_SIZE, open_cold, testing::S3Server};

/// Deterministic, incompressible-looking test data.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn conformance(store: &dyn ColdStore) {
    store.check().await.unwrap();
    // put / get / head / exists
    store.put("images/abc", Bytes::from_static(b"elf bytes")).await.unwrap();
    assert_eq!(store.get("images/abc").await.unwrap(), Bytes::from_static(b"elf bytes"));
    assert_eq!(store.head("images/abc").await.unwrap().unwrap().size, 9);
    assert!(store.exists("images/abc").await.unwrap());

    // empty blob
    store.put("inputs/empty", Bytes::new()).await.unwrap();
    assert_eq!(store.get("inputs/empty").await.unwrap().len(), 0);

    // overwrite
    store.put("images/abc", Bytes::from_static(b"v2")).await.unwrap();
    assert_eq!(store.get("images/abc").await.unwrap(), Bytes::from_static(b"v2"));
    assert_eq!(store.head("images/abc").await.unwrap().unwrap().size, 2);

    // missing key
    let e = store.get("images/missing").await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-010", "{e}");
    assert!(e.is_not_found() && e.is_permanent());
    assert!(e.to_string().contains("images/missing"), "{e}");
    assert!(store.get_stream("images/missing").await.err().unwrap().is_not_found());
    assert!(store.head("images/missing").await.unwrap().is_none());
    assert!(!store.exists("images/missing").await.unwrap());

    // invalid keys
    for bad in ["", "/abs", "a//b", "../etc/passwd", "a/"] {
        let e = store.put(bad, Bytes::new()).await.unwrap_err();
        assert_eq!(e.code(), "TIFFIN-STORAGE-002", "{bad:?}: {e}");
        assert_eq!(store.get(bad).await.unwrap_err().code(), "TIFFIN-STORAGE-002");
    }

    // delete (idempotent)
    store.delete("images/abc").await.unwrap();
    assert!(!store.exists("images/abc").await.unwrap());
    store.delete("images/abc").await.unwrap();
    store.delete("never/existed").await.unwrap();

    // list and delete_prefix are plain string prefixes
    for k in ["jobs/a/receipt", "jobs/a/logs/0", "jobs/ab/receipt", "images/x"] {
        store.put(k, Bytes::from(k.as_bytes().to_vec())).await.unwrap();
    }
    let keys = |v: Vec<tiffin_storage::BlobInfo>| v.into_iter().map(|b| b.key).collect::<Vec<_>>();
    assert_eq!(keys(store.list("jobs/a/").await.unwrap()), ["jobs/a/logs/0", "jobs/a/receipt"]);
    assert_eq!(
        keys(store.list("jobs/a").await.unwrap()),
        ["jobs/a/logs/0", "jobs/a/receipt", "jobs/ab/receipt"]
    );
    assert_eq!(
        keys(store.list("").await.unwrap()),
        ["images/x", "inputs/empty", "jobs/a/logs/0", "jobs/a/receipt", "jobs/ab/receipt"]
    );
    assert!(store.list("nothing/").await.unwrap().is_empty());
    let listed = store.list("jobs/ab/").await.unwrap();
    assert_eq!(listed[0].size, "jobs/ab/receipt".len() as u64);
    assert_eq!(store.delete_prefix("jobs/a/").await.unwrap(), 2);
    assert_eq!(keys(store.list("jobs/").await.unwrap()), ["jobs/ab/receipt"]);
    assert_eq!(store.delete_prefix("jobs/a/").await.unwrap(), 0);
    assert_eq!(store.get("jobs/ab/receipt").await.unwrap(), Bytes::from_static(b"jobs/ab/receipt"));

    // A 12 MB file: streamed up from disk (multipart, since it is above PART_SIZE), streamed down.
    let size = 12 * 1024 * 1024 + 17;
    assert!(size > PART_SIZE);
    let data = pattern(size, 7);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("upload.bin");
    std::fs::write(&src, &data).unwrap();
    let t = Instant::now();
    assert_eq!(store.put_file("jobs/big/segment", &src).await.unwrap(), size as u64);
    eprintln!("{}: put_file 12 MB in {:?}", store.describe(), t.elapsed());
    assert_eq!(store.head("jobs/big/segment").await.unwrap().unwrap().size, size as u64);
    let mut stream = store.get_stream("jobs/big/segment").await.unwrap();
    let (mut got, mut chunks) = (Vec::with_capacity(size), 0);
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
        chunks += 1;
    }
    assert!(got == data, "streamed download differs");
    assert!(chunks >= 1);
    let dst = dir.path().join("download.bin");
    assert_eq!(store.get_to_file("jobs/big/segment", &dst).await.unwrap(), size as u64);
    assert!(std::fs::read(&dst).unwrap() == data, "downloaded file differs");
    assert!(
        store
            .get_to_file("jobs/big/missing", &dir.path().join("x"))
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(!dir.path().join("x").exists() && !dir.path().join("x.tiffin-partial").exists());

    // put_reader of a small stream, and a big in-memory put (multipart path of put).
    let mut reader: &[u8] = b"from a reader";
    assert_eq!(store.put_reader("logs/r", &mut reader).await.unwrap(), 13);
    assert_eq!(store.get("logs/r").await.unwrap(), Bytes::from_static(b"from a reader"));
    let big = Bytes::from(pattern(PART_SIZE + 1024, 9));
    store.put("jobs/big/receipt", big.clone()).await.unwrap();
    assert!(store.get("jobs/big/receipt").await.unwrap() == big);

    assert_eq!(store.delete_prefix("").await.unwrap(), 6);
    assert!(store.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn local_dir() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_cold(dir.path().join("cold").to_str().unwrap()).unwrap();
    conformance(&*store).await;
}

#[tokio::test]
async fn local_file_url() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_cold(&format!("file://{}", dir.path().display())).unwrap();
    store.put("a/b", Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("a/b")).unwrap(), b"x");
    store.delete_prefix("").await.unwrap();
    conformance(&*store).await;
}

#[tokio::test]
async fn memory() {
    conformance(&*open_cold("memory://").unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3() {
    let server = S3Server::start().unwrap();
    let store = open_cold(&server.store_url()).unwrap();
    assert!(!store.describe().contains(S3Server::SECRET_KEY), "{}", store.describe());
    conformance(&*store).await;
    // Objects really are in the server's bucket directory (buckets are directories in s3s-fs).
    store.put("images/on-disk", Bytes::from_static(b"y")).await.unwrap();
    assert!(server.data_dir().join(S3Server::BUCKET).join("images/on-disk").exists());
}

#[tokio::test]
async fn s3_prefix_in_url_isolates_keys() {
    let server = S3Server::start().unwrap();
    let url = server.store_url().replacen(
        S3Server::BUCKET,
        &format!("{}/cluster-a", S3Server::BUCKET),
        1,
    );
    let a = open_cold(&url).unwrap();
    let root = open_cold(&server.store_url()).unwrap();
    a.put("images/i", Bytes::from_static(b"z")).await.unwrap();
    assert_eq!(a.list("").await.unwrap().len(), 1);
    assert_eq!(root.get("cluster-a/images/i").await.unwrap(), Bytes::from_static(b"z"));
}

#[tokio::test]
async fn s3_wrong_secret_is_refused() {
    let server = S3Server::start().unwrap();
    let store = open_cold(&server.store_url_with(S3Server::BUCKET, "not-the-secret")).unwrap();
    let e = store.check().await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-012", "{e}");
    let e = store.put("images/x", Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-012", "{e}");
    assert!(e.is_permanent());
    assert!(e.to_string().contains("secret"), "{e}");
    assert!(!e.to_string().contains("not-the-secret"), "the secret leaked into the error: {e}");
    let e = store.get("images/x").await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-012", "{e}");
}

#[tokio::test]
async fn s3_missing_bucket_is_an_error() {
    let server = S3Server::start().unwrap();
    let store = open_cold(&server.store_url_with("no-such-bucket", S3Server::SECRET_KEY)).unwrap();
    let e = store.check().await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-011", "{e}");
    assert!(e.to_string().contains("NoSuchBucket"), "{e}");
    assert!(store.list("").await.is_err());
    open_cold(&server.store_url()).unwrap().check().await.unwrap();
}

#[tokio::test]
async fn s3_unreachable_endpoint_is_transient() {
    let port = tiffin_storage::testing::free_port().unwrap();
    let store = open_cold(&format!(
        "s3://b?endpoint=http://127.0.0.1:{port}&access_key_id=a&secret_access_key=b"
    ))
    .unwrap();
    let e = store.get("images/x").await.unwrap_err();
    assert_eq!(e.code(), "TIFFIN-STORAGE-011", "{e}");
    assert!(e.is_transient());
}
