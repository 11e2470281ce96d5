//! The fetch policy against what a hostile requestor would name: local files, devices, FIFOs,
//! loopback servers by address and by name, slow servers, oversized answers.

use super::*;
use std::io::{Read, Write};
use std::net::TcpListener;

/// A one-thread HTTP server on loopback answering every request with `reply` (raw bytes,
/// written slowly when `trickle`); returns its base URL.
fn server(reply: &'static [u8], trickle: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                for chunk in reply.chunks(if trickle { 1 } else { reply.len().max(1) }) {
                    if stream.write_all(chunk).is_err() {
                        return;
                    }
                    if trickle {
                        std::thread::sleep(Duration::from_millis(300));
                    }
                }
            });
        }
    });
    url
}

const OK_7: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\nsecret!";

#[tokio::test]
async fn files_are_read_only_under_an_allowed_prefix_and_within_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input");
    std::fs::write(&path, vec![7u8; 100]).unwrap();
    let url = format!("file://{}", path.display());
    let prefix = vec![format!("file://{}/", dir.path().display())];

    let strict = Fetcher::new(100, 0, None);
    let err = strict.input(&Input::url(&url)).await.unwrap_err();
    assert_eq!(err.code(), "TIFFIN-BROKER-019", "{err}");

    let mirror = Fetcher::new(100, 0, None).allowing(&prefix);
    assert_eq!(mirror.input(&Input::url(&url)).await.unwrap().len(), 100);
    assert_eq!(mirror.input(&Input::inline(vec![1, 2])).await.unwrap(), vec![1, 2]);
    // `..` cannot climb out of the prefix: the URL is normalised before the comparison.
    let climbing = format!("file://{}/../../etc/hostname", dir.path().display());
    let err = mirror.input(&Input::url(&climbing)).await.unwrap_err();
    assert_eq!(err.code(), "TIFFIN-BROKER-019", "{err}");

    let small = Fetcher::new(99, 0, None).allowing(&prefix);
    let err = small.input(&Input::url(&url)).await.unwrap_err();
    assert!(matches!(err, BrokerError::TooLarge { limit: 99, .. }), "{err}");
    let err = small.input(&Input::inline(vec![0; 100])).await.unwrap_err();
    assert_eq!(err.code(), "TIFFIN-BROKER-014");
    let err = mirror.input(&Input::url("ftp://example/x")).await.unwrap_err();
    assert_eq!(err.code(), "TIFFIN-BROKER-019");
    let echo = mirror.program("e", "tiffin-sample://echo").await.unwrap();
    assert_eq!(echo, tiffin_guests::ECHO.program);
    let err = mirror.program("x", "tiffin-sample://nope").await.unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

/// Failed before the fix: `/proc/self/environ` (the broker's keys) was read and proven, and
/// `/dev/zero` was read until the process died.
#[tokio::test]
async fn local_files_devices_and_fifos_are_refused() {
    let strict = Fetcher::new(1 << 20, 0, None);
    for url in ["file:///proc/self/environ", "file:///etc/passwd", "file:///dev/zero"] {
        let err = strict.input(&Input::url(url)).await.unwrap_err();
        assert_eq!(err.code(), "TIFFIN-BROKER-019", "{url}: {err}");
    }
    // Even under a prefix the operator allowed, only regular files are read, never for ever.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let everything = Fetcher::new(1 << 20, 0, None)
        .allowing(&["file:///".to_string()])
        .with_timeout(Duration::from_secs(5));
    for url in ["file:///dev/zero".to_string(), format!("file://{}", fifo.display())] {
        let started = std::time::Instant::now();
        let err = everything.input(&Input::url(&url)).await.unwrap_err();
        assert_eq!(err.code(), "TIFFIN-BROKER-019", "{url}: {err}");
        assert!(started.elapsed() < Duration::from_secs(2), "{url} answered at once");
    }
    // A file the size metadata calls empty is still counted as read.
    let proc_small = Fetcher::new(16, 0, None).allowing(&["file:///proc/".to_string()]);
    let err = proc_small.input(&Input::url("file:///proc/self/maps")).await.unwrap_err();
    assert_eq!(err.code(), "TIFFIN-BROKER-014", "{err}");
}

/// Failed before the fix: any loopback or internal URL was fetched.
#[tokio::test]
async fn loopback_servers_are_refused_by_address_and_by_name_unless_allowed() {
    let url = server(OK_7, false);
    let strict = Fetcher::new(1 << 20, 0, None);
    let by_name = url.replace("127.0.0.1", "localhost");
    for target in [url.clone(), by_name, "http://169.254.169.254/latest/".into()] {
        let err = strict.input(&Input::url(&target)).await.unwrap_err();
        assert!(matches!(err.code(), "TIFFIN-BROKER-019" | "TIFFIN-BROKER-013"), "{target}: {err}");
        assert!(
            err.to_string().contains("loopback") || err.to_string().contains("link-local"),
            "{target}: {err}"
        );
    }
    let mirror = Fetcher::new(1 << 20, 0, None).allowing(std::slice::from_ref(&url));
    assert_eq!(mirror.input(&Input::url(&format!("{url}x"))).await.unwrap(), b"secret!");
}

#[tokio::test]
async fn a_slow_server_is_cut_at_the_time_budget_and_a_big_one_at_the_cap() {
    let slow = server(OK_7, true);
    let fetcher = Fetcher::new(1 << 20, 2, None)
        .allowing(std::slice::from_ref(&slow))
        .with_timeout(Duration::from_secs(1));
    let started = std::time::Instant::now();
    let err = fetcher.input(&Input::url(&slow)).await.unwrap_err();
    assert_eq!(err.code(), "TIFFIN-BROKER-013", "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

    // No length announced: the body is counted as it arrives.
    static ENDLESS: &[u8] =
        b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n0123456789012345678901234567890123456789";
    let big = server(ENDLESS, false);
    let capped = Fetcher::new(16, 0, None).allowing(std::slice::from_ref(&big));
    let err = capped.input(&Input::url(&big)).await.unwrap_err();
    assert_eq!(err.code(), "TIFFIN-BROKER-014", "{err}");
}

#[tokio::test]
async fn programs_are_cached_by_image_id_only_once_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("guest.bin");
    std::fs::write(&program, b"R0BF...").unwrap();
    let fetcher = Fetcher::new(1 << 20, 0, Some(dir.path().join("cache")))
        .allowing(&[format!("file://{}/", dir.path().display())]);
    let url = format!("file://{}", program.display());
    // Failed before the fix: garbage fetched for a claimed image was cached as that image.
    assert_eq!(fetcher.program("ab", &url).await.unwrap(), b"R0BF...");
    std::fs::write(&program, b"R0BF good").unwrap();
    assert_eq!(fetcher.program("ab", &url).await.unwrap(), b"R0BF good", "not cached yet");
    fetcher.remember_program("ab", b"R0BF good").await;
    std::fs::remove_file(&program).unwrap();
    assert_eq!(fetcher.program("ab", &url).await.unwrap(), b"R0BF good", "from the cache");
    // An image id that is not hex never names a file.
    fetcher.remember_program("../x", b"bad").await;
    assert!(!dir.path().join("x.bin").exists());
}
