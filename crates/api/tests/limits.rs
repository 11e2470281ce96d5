//! The limits that bound request handling (docs/api.md, "Limits"), each answered with its
//! stable code by a real server: a full server sheds with 503 yet answers `/health`, a stalled
//! upload gets 408, a tenant over its rate gets 429 while others are served. (The read deadline
//! is tested on a route of known duration, in `limits`' unit tests.)

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Agents, start};
use reqwest::Method;
use serde_json::{Value, json};
use tiffin_api::limits::Pace;
use tokio::sync::mpsc;

/// (status, code, Retry-After) of an error response.
async fn coded(res: reqwest::Response) -> (u16, String, Option<String>) {
    let status = res.status().as_u16();
    let retry = res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let text = res.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body["code"].as_str().unwrap_or_default().to_string(), retry)
}

/// A request body that sends what is pushed into the returned sender and ends when it drops.
fn held_body() -> (mpsc::Sender<Bytes>, reqwest::Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    (tx, reqwest::Body::wrap_stream(stream))
}

/// Starts an input upload whose body stays open (holding a request slot) until the returned
/// sender drops.
fn open_upload(
    s: &common::TestServer,
    key: &str,
) -> (mpsc::Sender<Bytes>, tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>) {
    let (tx, body) = held_body();
    tx.try_send(Bytes::from_static(b"first part")).unwrap();
    let path = format!("/inputs/upload/{}", uuid::Uuid::new_v4());
    (tx, tokio::spawn(s.user(key, Method::PUT, &path).body(body).send()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_server_sheds_requests_with_503_and_still_answers_health() {
    let s = start(Agents::ExecOnly, |c| c.limits.max_concurrent_requests = 1).await;
    let key = s.tenant("busy", json!({})).await;
    // An upload holds the only slot. Until it does, probes are served; a probe that takes the
    // slot just as the upload arrives sheds the upload instead, which then starts again.
    let (mut tx, mut upload) = open_upload(&s, &key);
    let started = std::time::Instant::now();
    let shed = loop {
        let res = s.user(&key, Method::GET, "/version").send().await.unwrap();
        if res.status() != 200 || started.elapsed() > Duration::from_secs(10) {
            break res;
        }
        if upload.is_finished() {
            (tx, upload) = open_upload(&s, &key);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(coded(shed).await, (503, "TIFFIN-API-053".into(), Some("1".into())));
    let health = s.http.get(format!("{}/health", s.url)).send().await.unwrap();
    assert_eq!(health.status(), 200, "/health needs no slot");

    drop(tx);
    assert_eq!(upload.await.unwrap().unwrap().status(), 200);
    let served = s.user(&key, Method::GET, "/version").send().await.unwrap();
    assert_eq!(served.status(), 200, "the slot is free again");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_upload_gets_408_once_it_falls_behind_the_minimum_rate() {
    let pace = Pace { min_bytes_per_sec: 1 << 20, grace: Duration::from_millis(300) };
    let s = start(Agents::ExecOnly, |c| c.limits.upload_pace = pace).await;
    let key = s.tenant("slow", json!({})).await;
    for path in [
        format!("/inputs/upload/{}", uuid::Uuid::new_v4()),
        format!("/images/upload/{}", "0".repeat(64)),
    ] {
        let (tx, body) = held_body();
        tx.send(Bytes::from_static(b"a byte, then nothing")).await.unwrap();
        let res = tokio::time::timeout(
            Duration::from_secs(10),
            s.user(&key, Method::PUT, &path).body(body).send(),
        )
        .await
        .expect("answered, not held open");
        assert_eq!(coded(res.unwrap()).await, (408, "TIFFIN-API-041".into(), None), "{path}");
        drop(tx);
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_over_its_request_rate_gets_429_and_others_are_served() {
    let s = start(Agents::ExecOnly, |c| c.limits.tenant_requests_per_sec = 3).await;
    let (eager, calm) = (s.tenant("eager", json!({})).await, s.tenant("calm", json!({})).await);
    for _ in 0..3 {
        assert_eq!(s.user(&eager, Method::GET, "/version").send().await.unwrap().status(), 200);
    }
    let limited = s.user(&eager, Method::GET, "/version").send().await.unwrap();
    assert_eq!(coded(limited).await, (429, "TIFFIN-API-052".into(), Some("1".into())));
    assert_eq!(s.user(&calm, Method::GET, "/version").send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.user(&eager, Method::GET, "/version").send().await.unwrap().status(), 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let timeout = Duration::from_millis(300);
    let s = start(Agents::ExecOnly, |c| c.limits.header_read_timeout = timeout).await;
    let mut conn = tokio::net::TcpStream::connect(s.server.addr).await.unwrap();
    conn.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection is still open long after the header timeout");
    // A client that sends its headers in time is served as before.
    let health = s.http.get(format!("{}/health", s.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    s.shutdown().await;
}
