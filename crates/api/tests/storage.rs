//! Per-tenant storage (docs/api.md, "Storage quotas"): uploads past a tenant's quota are
//! refused with TIFFIN-API-054 and store nothing, deletes give the bytes back, unused inputs
//! expire while images stay, and a full disk answers TIFFIN-API-095 (507) without leaving
//! anything behind.

mod common;

use std::time::{Duration, Instant};

use common::{Agents, TestServer, start, start_with_stores_in};
use reqwest::Method;
use serde_json::{Value, json};
use tiffin_guests::ECHO;

/// PUTs `bytes` as a new input; returns (status, code, uuid).
async fn put_input(
    s: &TestServer,
    key: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String, String) {
    let slot = s.user(key, Method::GET, "/inputs/upload").send().await.unwrap();
    let slot: Value = slot.json().await.unwrap();
    let uuid = slot["uuid"].as_str().unwrap().to_owned();
    let put = s.user(key, Method::PUT, &format!("/inputs/upload/{uuid}")).body(body);
    let res = put.send().await.unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or_default().into(), uuid)
}

/// The tenant's `storage_usage` (`GET /user/quotas`).
async fn usage(s: &TestServer, key: &str) -> i64 {
    let q = s.user(key, Method::GET, "/user/quotas").send().await.unwrap();
    q.json::<Value>().await.unwrap()["storage_usage"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_bound_what_a_tenant_stores_and_deletes_give_it_back() {
    let s = start(Agents::ExecOnly, |cfg| cfg.blob_ttl = None).await;
    let key = s.tenant("quinn", json!({ "storage_quota": 1000 })).await;
    let client = s.client(&key);

    let (status, _, kept) = put_input(&s, &key, vec![1; 600]).await;
    assert_eq!(status, 200);
    assert_eq!(usage(&s, &key).await, 600);
    let (status, code, refused) = put_input(&s, &key, vec![2; 500]).await;
    assert_eq!((status, code.as_str()), (413, "TIFFIN-API-054"));
    assert_eq!(usage(&s, &key).await, 600, "a refused upload holds nothing");
    let del = s.user(&key, Method::DELETE, &format!("/inputs/{refused}")).send().await.unwrap();
    assert_eq!(del.status(), 404, "and stored nothing");
    // A body of unknown length is held to the room left as it streams.
    let chunks = futures::stream::iter((0..5).map(|_| Ok::<_, std::io::Error>(vec![3u8; 100])));
    let (status, code, _) = put_input(&s, &key, reqwest::Body::wrap_stream(chunks)).await;
    assert_eq!((status, code.as_str()), (413, "TIFFIN-API-054"), "500 bytes do not fit in 400");
    assert_eq!(usage(&s, &key).await, 600);

    // An image counts against the tenant holding it.
    let err = client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap_err();
    assert!(err.to_string().contains("TIFFIN-API-054"), "{err}");
    let raise = json!({ "storage_quota": 1 << 20 });
    let patch = s.admin(Method::PATCH, "/admin/tenants/quinn").json(&raise);
    assert_eq!(patch.send().await.unwrap().status(), 200);
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let with_image = 600 + ECHO.program.len() as i64;
    assert_eq!(usage(&s, &key).await, with_image);
    let del = s.user(&key, Method::DELETE, &format!("/inputs/{kept}")).send().await.unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(usage(&s, &key).await, with_image - 600, "a delete gives the bytes back");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unused_inputs_expire_and_images_stay() {
    let s = start(Agents::ExecOnly, |cfg| cfg.blob_ttl = Some(Duration::from_secs(1))).await;
    let key = s.tenant("uma", json!({})).await;
    let client = s.client(&key);
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let (status, _, old) = put_input(&s, &key, vec![4; 100]).await;
    assert_eq!(status, 200);
    let image = ECHO.program.len() as i64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while usage(&s, &key).await != image {
        assert!(Instant::now() < deadline, "the unused input was never collected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let err = client.create_session(ECHO.image_id_hex(), old, vec![], true).await.unwrap_err();
    assert!(err.to_string().contains("TIFFIN-API-020"), "collected: {err}");
    assert!(client.has_img(&ECHO.image_id_hex()).await.unwrap(), "images do not expire");
    s.shutdown().await;
}

/// A 1 MiB tmpfs holds the stores: a 2 MiB input fills it, and is refused with its code,
/// deleted, and not charged; the next upload that fits succeeds. Needs permission to mount
/// (root, as CI runs); elsewhere it says so and checks nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_refuses_uploads_with_a_code_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(dir.path())
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    }
    let unmount = Unmount(dir.path().to_path_buf());
    let s = start_with_stores_in(Some(dir.path()), Agents::ExecOnly, |_| {}).await;
    let key = s.tenant("dana", json!({})).await;
    let (status, code, _) = put_input(&s, &key, vec![7; 2 << 20]).await;
    assert_eq!((status, code.as_str()), (507, "TIFFIN-API-095"));
    assert_eq!(usage(&s, &key).await, 0, "nothing charged");
    let (status, _, small) = put_input(&s, &key, vec![8; 1000]).await;
    assert_eq!(status, 200, "the failed upload left no partial file behind");
    let del = s.user(&key, Method::DELETE, &format!("/inputs/{small}")).send().await.unwrap();
    assert_eq!(del.status(), 204);
    s.shutdown().await;
    drop(unmount);
}

/// Unmounts the tmpfs when dropped (also when the test fails).
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}
