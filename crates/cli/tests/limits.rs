//! `tiffin up` under a flood of huge uploads: memory stays within what its limits allow, every
//! upload gets a coded answer, and another tenant is still served (docs/api.md, "Limits").

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{ok, tiffin, up_with};
use serde_json::Value;

/// Request slots and image cap of the server under test.
const SLOTS: u64 = 16;
const IMAGE_CAP_MIB: u64 = 4;
/// Uploads at once, each of a "1 GB" program sent chunked, made up as it is sent.
const UPLOADS: usize = 100;
const UPLOAD_BYTES: u64 = 1 << 30;
/// How soon the other tenant's small requests must be answered during the flood (loose enough
/// for a loaded CI machine; a server whose slots were held by the flood would not answer).
const PROMPT: Duration = Duration::from_secs(5);

/// What the server may hold on top of its memory at rest: each slot's image read whole (a
/// buffer grows to at most twice the cap), plus 1 MiB per connection for hyper's buffers and
/// the allocator's slack. Without the limits, 100 uploads of up to the old 256 MiB each would
/// hold gigabytes.
fn allowed_growth_kib() -> u64 {
    SLOTS * 2 * IMAGE_CAP_MIB * 1024 + UPLOADS as u64 * 1024
}

/// A `/proc/PID/status` field in KiB (VmRSS, VmHWM).
fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Reads one HTTP/1.1 response: (status, body).
fn read_response(stream: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut byte)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + length {
        let n = stream.read(&mut byte)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&byte[..n]);
    }
    Ok((status, String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string()))
}

/// A small request on a fresh connection: (status, body).
fn request(addr: &str, method: &str, path: &str, key: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {key}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes())?;
    read_response(&mut s)
}

/// Streams a "1 GB" program, chunked, until the server answers or stops reading; returns the
/// answer (the writer gives up once the server closes).
fn flood_upload(addr: &str, key: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let image = "ab".repeat(32);
    let head = format!(
        "PUT /images/upload/{image} HTTP/1.1\r\nhost: {addr}\r\nx-api-key: {key}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes())?;
    let mut w = s.try_clone()?;
    let writer = thread::spawn(move || {
        let chunk = vec![0x7fu8; 64 * 1024];
        let size = format!("{:x}\r\n", chunk.len());
        let mut sent = 0;
        while sent < UPLOAD_BYTES {
            let wrote = w.write_all(size.as_bytes()).and_then(|_| w.write_all(&chunk));
            if wrote.and_then(|_| w.write_all(b"\r\n")).is_err() {
                return;
            }
            sent += chunk.len() as u64;
        }
        let _ = w.write_all(b"0\r\n\r\n");
    });
    let answer = read_response(&mut s);
    let _ = s.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
    answer
}

/// The `code` of an error body ("" for other bodies).
fn code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    v["code"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_flood_of_huge_uploads_is_refused_in_bounded_memory_while_another_tenant_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (slots, cap) = (SLOTS.to_string(), format!("{IMAGE_CAP_MIB}MiB"));
    let limits = ["--max-concurrent-requests", &slots, "--max-image-size", &cap];
    let mut up = up_with(&data, 16, 0, &limits);
    let addr = up.url.trim_start_matches("http://").to_string();
    let mut admin = tiffin(&["admin", "--url", &up.url, "--data-dir", data.to_str().unwrap()]);
    let created: Value =
        serde_json::from_str(&ok(admin.args(["--json", "create-tenant", "flood"]))).unwrap();
    let flood_key = created["key"].as_str().unwrap().to_string();
    let pid = up.proc.0.id();
    let bound_kib = vm_kib(pid, "VmHWM") + allowed_growth_kib();

    let start = Instant::now();
    let uploads: Vec<_> = (0..UPLOADS)
        .map(|_| {
            let (addr, key) = (addr.clone(), flood_key.clone());
            thread::spawn(move || flood_upload(&addr, &key))
        })
        .collect();
    // The other tenant polls as a client would, timing each answer, until the flood is over.
    let mut small = Vec::new();
    while uploads.iter().any(|u| !u.is_finished()) {
        assert!(start.elapsed() < Duration::from_secs(60), "the flood is not answered");
        for (method, path) in [
            ("GET", "/health".to_string()),
            ("GET", format!("/images/upload/{}", "cd".repeat(32))),
            ("GET", "/sessions/status/00000000-0000-4000-8000-000000000000".to_string()),
        ] {
            let asked = Instant::now();
            let (status, body) = request(&addr, method, &path, &up.key).unwrap();
            small.push((path, status, code(&body), asked.elapsed()));
        }
        thread::sleep(Duration::from_millis(50));
    }
    let answers: Vec<_> = uploads.into_iter().map(|u| u.join().unwrap()).collect();

    let peak = vm_kib(pid, "VmHWM");
    let refused = |s: u16| answers.iter().filter(|a| matches!(a, Ok((x, _)) if *x == s)).count();
    let served = small.iter().filter(|(_, s, ..)| *s != 503).count();
    eprintln!(
        "flood over in {:?}: {} refused 413, {} shed 503; peak RSS {peak} KiB (bound {bound_kib}); \
         {served} of {} small requests served",
        start.elapsed(),
        refused(413),
        refused(503),
        small.len()
    );
    assert!(peak <= bound_kib, "peak RSS {peak} KiB over the bound of {bound_kib} KiB");
    for answer in &answers {
        let (status, body) = answer.as_ref().expect("every upload is answered");
        let expected = match status {
            413 => "TIFFIN-API-040",
            503 => "TIFFIN-API-053",
            other => panic!("upload answered {other}: {body}"),
        };
        assert_eq!(code(body), expected, "{body}");
    }
    assert!(answers.iter().any(|a| a.as_ref().unwrap().0 == 413), "some uploads were read");
    // Failed before the flooding key was held to a quarter of the slots: the other tenant
    // was shed with 503 while the flood lasted.
    assert_eq!(served, small.len(), "the other tenant is never shed by one tenant's flood");
    for (path, status, code, took) in &small {
        assert!(*took < PROMPT, "{path} took {took:?}");
        match (path.as_str(), status) {
            ("/health", s) => assert_eq!(*s, 200, "/health needs no slot"),
            (_, 503) => assert_eq!(code, "TIFFIN-API-053"),
            (p, s) if p.starts_with("/images") => assert_eq!(*s, 200, "{p}: {code}"),
            (p, s) => assert_eq!((*s, code.as_str()), (404, "TIFFIN-API-020"), "{p}"),
        }
    }
    assert!(up.proc.0.try_wait().unwrap().is_none(), "the server is still running");
    let (status, _) = request(&addr, "GET", "/user/quotas", &up.key).unwrap();
    assert_eq!(status, 200, "and serving");
}
