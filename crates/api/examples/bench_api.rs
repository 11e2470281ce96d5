//! Load generator of `scripts/bench-api`: against a running Tiffin API, submits N execute-only
//! `echo` sessions from C concurrent `bonsai-sdk` clients, waits for them all, then polls their
//! status at a fixed rate (open loop: requests are sent on schedule whether or not earlier ones
//! returned, so a slow server shows up as latency, not as a lower rate). Prints a Markdown table.
//!
//! Usage: bench_api URL ADMIN_KEY [SESSIONS=1000] [CLIENTS=50] [RATE=2000] [SECONDS=10]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bonsai_sdk::non_blocking::{Client, SessionId};
use serde_json::{Value, json};
use tokio::sync::Mutex;

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn row(phase: &str, mut lat: Vec<f64>, errors: usize, wall: f64) -> String {
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = lat.len() + errors;
    format!(
        "| {phase} | {n} | {errors} | {:.1} | {:.2} | {:.2} | {:.2} |",
        n as f64 / wall,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .expect("usage: bench_api URL ADMIN_KEY [SESSIONS] [CLIENTS] [RATE] [SECONDS]")
        .clone();
    let admin = args.get(2).expect("admin key").clone();
    let arg = |i: usize, d: u64| args.get(i).map(|s| s.parse().unwrap()).unwrap_or(d);
    let (sessions, clients, rate, seconds) = (arg(3, 1000), arg(4, 50), arg(5, 2000), arg(6, 10));

    let http = reqwest::Client::new();
    let tenant = format!("bench-{}", std::process::id());
    let res: Value = http
        .post(format!("{url}/admin/tenants"))
        .header("x-admin-key", &admin)
        .json(&json!({ "name": tenant, "concurrent_proofs": sessions + 10 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = res["key"].as_str().expect("tenant created").to_string();
    let client = Client::from_parts(url.clone(), key.clone(), "3.1.0-rc.1").unwrap();
    let echo = tiffin_guests::ECHO;
    client.upload_img(&echo.image_id_hex(), echo.program.to_vec()).await.unwrap();
    let input = client.upload_input(b"bench".to_vec()).await.unwrap();

    // Phase 1: submissions from `clients` concurrent clients.
    let ids = Arc::new(Mutex::new(Vec::new()));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let per = sessions / clients;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (c, ids, lat, errors, img, input) = (
            client.clone(),
            ids.clone(),
            lat.clone(),
            errors.clone(),
            echo.image_id_hex(),
            input.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                let t = Instant::now();
                match c.create_session(img.clone(), input.clone(), vec![], true).await {
                    Ok(s) => {
                        lat.lock().await.push(t.elapsed().as_secs_f64() * 1000.0);
                        ids.lock().await.push(s.uuid);
                    }
                    Err(e) => {
                        eprintln!("create failed: {e}");
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let submit_wall = start.elapsed().as_secs_f64();
    let create_row = row(
        "create session",
        lat.lock().await.clone(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        submit_wall,
    );

    // All sessions to the end (execute-only echo: the executor is the bottleneck).
    let ids = ids.lock().await.clone();
    let mut pending: Vec<String> = ids.clone();
    let mut failed = 0;
    while !pending.is_empty() {
        let mut still = Vec::new();
        for id in pending {
            let s = SessionId::new(id.clone()).status(&client).await.unwrap();
            match s.status.as_str() {
                "RUNNING" => still.push(id),
                "SUCCEEDED" => {}
                other => {
                    failed += 1;
                    eprintln!("session {id} ended {other}: {:?}", s.error_msg);
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let all_done = start.elapsed().as_secs_f64();

    // Phase 2: open-loop status polling at `rate` requests/s over a pooled connection set.
    let lat = Arc::new(Mutex::new(Vec::with_capacity((rate * seconds) as usize)));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let total = rate * seconds;
    let poll_start = Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = poll_start + period * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (http, lat, errors) = (http.clone(), lat.clone(), errors.clone());
        let req = http
            .get(format!("{url}/sessions/status/{}", ids[i as usize % ids.len()]))
            .header("x-api-key", &key);
        handles.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = match req.send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            if ok {
                lat.lock().await.push(t.elapsed().as_secs_f64() * 1000.0);
            } else {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let poll_wall = poll_start.elapsed().as_secs_f64();
    let poll_row = row(
        &format!("status poll (target {rate}/s)"),
        lat.lock().await.clone(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        poll_wall,
    );

    println!("| phase | requests | errors | achieved req/s | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!("{create_row}");
    println!("{poll_row}");
    println!();
    println!(
        "{} execute-only echo sessions from {clients} clients: submitted in {submit_wall:.1} s, all finished after {all_done:.1} s ({:.1} sessions/s end to end), {failed} failed.",
        ids.len(),
        ids.len() as f64 / all_done
    );
}
