//! The verifier service's own limits (finding 9 of the market security review): a request takes
//! a verification slot, or a place in a short bounded queue, before a byte of its body is read,
//! and is answered 503 `TIFFIN-VERIFIER-009` otherwise; connections that send no headers are
//! closed; connections over the cap are closed at once; with a token, `/v1/attest*` needs it.
//! No receipts are proven: every request here is refused before or at decoding.

use alloy::signers::local::PrivateKeySigner;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tiffin_market::Attestor;
use tiffin_verifier::{BearerToken, ServiceConfig, Verifier};
use tiffin_zkvm::ImageId;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The account seals are made out to.
const PROVER: &str = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";

async fn start(config: ServiceConfig) -> SocketAddr {
    let verifier = Verifier::new(
        Attestor::new(PrivateKeySigner::random()),
        ImageId::from_words(tiffin_guests::SET_BUILDER.image_id),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tiffin_verifier::serve(listener, verifier, config, std::future::pending()));
    addr
}

/// Sends the headers of a `POST /v1/attest-root` announcing `length` body bytes, then only
/// `sent` of them: the connection stays open with the body incomplete.
async fn post_partly(addr: SocketAddr, length: usize, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/attest-root?prover={PROVER} HTTP/1.1\r\nHost: verifier\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&vec![7u8; sent]).await.unwrap();
    stream
}

/// The status, headers and JSON body of the response on `stream`, read within `within`.
async fn response(stream: &mut TcpStream, within: Duration) -> (u16, String, Value) {
    tokio::time::timeout(within, async {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before a response: {:?}", String::from_utf8_lossy(&bytes));
            bytes.extend_from_slice(&buf[..n]);
            if let Some(i) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        while bytes.len() < head_end + length {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed mid-body");
            bytes.extend_from_slice(&buf[..n]);
        }
        let body = serde_json::from_slice(&bytes[head_end..head_end + length]).unwrap();
        (status, head, body)
    })
    .await
    .expect("a response in time")
}

/// Whether the server closes `stream` (EOF or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn a_request_waits_for_a_slot_in_a_bounded_queue_or_gets_503_before_its_body_is_read() {
    let config = ServiceConfig {
        max_concurrent: 1,
        max_queue: 1,
        queue_wait: Duration::from_secs(3),
        body_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let addr = start(config).await;
    let eight_mib = 8 << 20;

    // A slow upload holds the only slot; the next one queues; the rest are refused at once,
    // though they announced 8 MiB each and sent 1 KiB: nothing of theirs is buffered.
    let holder = post_partly(addr, eight_mib, 1024).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut queued = post_partly(addr, eight_mib, 1024).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut refused = Vec::new();
    for _ in 0..20 {
        refused.push(post_partly(addr, eight_mib, 1024).await);
    }
    for stream in &mut refused {
        let (status, head, body) = response(stream, Duration::from_secs(2)).await;
        assert_eq!((status, body["code"].as_str()), (503, Some("TIFFIN-VERIFIER-009")), "{body}");
        assert!(head.contains("retry-after: 1"), "{head}");
    }
    assert!(started.elapsed() < Duration::from_millis(1500), "refused without waiting");

    // The queued one gives up after its wait, with the same code.
    let (status, _, body) = response(&mut queued, Duration::from_secs(6)).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("TIFFIN-VERIFIER-009")), "{body}");

    // Once the holder goes away its slot is free again.
    drop(holder);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut next = post_partly(addr, 13, 13).await;
    let (status, _, body) = response(&mut next, Duration::from_secs(5)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("TIFFIN-VERIFIER-001")), "{body}");
}

#[tokio::test]
async fn connections_without_headers_are_closed_and_connections_over_the_cap_refused() {
    let config = ServiceConfig {
        header_read_timeout: Duration::from_millis(500),
        max_connections: 2,
        ..Default::default()
    };
    let addr = start(config).await;

    // Silent, and a byte at a time: both closed after the header-read timeout.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut trickle = TcpStream::connect(addr).await.unwrap();
    trickle.write_all(b"POST /v1/attest-root HTTP/1.1\r\nHo").await.unwrap();
    // Both slots are taken: a third connection is closed at once.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_millis(300)).await, "over the cap");
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await, "silent connection");
    assert!(closed_within(&mut trickle, Duration::from_secs(3)).await, "trickled headers");

    // The slots are free again.
    let info = reqwest::get(format!("http://{addr}/v1/info")).await.unwrap();
    assert_eq!(info.status(), 200);
}

#[tokio::test]
async fn with_a_token_attestation_needs_it_and_info_stays_open() {
    let config =
        ServiceConfig { token: Some(BearerToken::new("s3cret-token")), ..Default::default() };
    let addr = start(config).await;
    let http = reqwest::Client::new();
    let post = |path: &str| {
        http.post(format!("http://{addr}{path}?prover={PROVER}")).body("not a receipt")
    };

    let cases = [
        ("no token", post("/v1/attest-root"), 401, "TIFFIN-VERIFIER-010"),
        ("wrong token", post("/v1/attest-root").bearer_auth("guess"), 401, "TIFFIN-VERIFIER-010"),
        ("no token, bad image id", post("/v1/attest/xyz"), 401, "TIFFIN-VERIFIER-010"),
        ("token", post("/v1/attest-root").bearer_auth("s3cret-token"), 400, "TIFFIN-VERIFIER-001"),
        (
            "token, bad image id",
            post("/v1/attest/xyz").bearer_auth("s3cret-token"),
            400,
            "TIFFIN-VERIFIER-004",
        ),
    ];
    for (name, request, want_status, want_code) in cases {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!((status, body["code"].as_str()), (want_status, Some(want_code)), "{name}");
        assert!(!body.to_string().contains("s3cret"), "{name}: the token never shows");
    }
    let info = http.get(format!("http://{addr}/v1/info")).send().await.unwrap();
    assert_eq!(info.status(), 200);
}
