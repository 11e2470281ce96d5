//! The unmodified `bonsai-sdk` client (crates.io, `non_blocking`) against a running Tiffin
//! server on the embedded backends: the canonical flow with a real proof, execute-only
//! sessions, logs, stop, snark, quotas and version.

mod common;

use std::time::Duration;

use bonsai_sdk::SdkErr;
use common::{Agents, start, wait, wait_state};
use serde_json::json;
use tiffin_guests::{COMPOSE, ECHO, PANIC, SPIN, spin_input};
use tiffin_zkvm::{ImageId, Receipt, decode, encode, verify};

/// The canonical Bonsai flow with a real proof. The session asks for a composite receipt
/// (Tiffin's `receipt_kind` extension: two po2-14 segment proofs, no recursion): the succinct
/// path and a composition that resolves its assumption are proven across processes in
/// `crates/cli/tests/api_distributed.rs`, so the suite pays for those recursion steps once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bonsai_sdk_proves_and_the_receipt_verifies() {
    // po2 14: echo's two segments there cost less than its one at po2 16.
    let s = start(Agents::Full, |cfg| (cfg.max_assumptions, cfg.po2) = (2, 14)).await;
    let key = s.tenant("alice", json!({})).await;
    let client = s.client(&key);
    let image = ECHO.image_id_hex();

    assert!(!client.has_img(&image).await.unwrap());
    assert!(!client.upload_img(&image, ECHO.program.to_vec()).await.unwrap(), "new upload");
    assert!(client.has_img(&image).await.unwrap(), "204 once uploaded");
    assert!(client.upload_img(&image, ECHO.program.to_vec()).await.unwrap(), "exists");
    let input = client.upload_input(b"hello bonsai".to_vec()).await.unwrap();

    let res = s
        .user(&key, reqwest::Method::POST, "/sessions/create")
        .json(&json!({ "img": image, "input": input, "assumptions": [],
                       "execute_only": false, "receipt_kind": "composite" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let uuid = res.json::<serde_json::Value>().await.unwrap()["uuid"].as_str().unwrap().to_owned();
    let session = bonsai_sdk::non_blocking::SessionId::new(uuid);
    let (status, states) = wait(&client, &session, Duration::from_secs(600)).await;
    assert_eq!(status.status, "SUCCEEDED", "{:?}", status.error_msg);
    assert!(states.iter().any(|s| s.starts_with("ProveSegments: ")), "progress seen: {states:?}");
    let stats = status.stats.expect("stats on success");
    assert_eq!(stats.segments, 2);
    assert!(stats.total_cycles >= stats.cycles && stats.cycles > 0);
    assert!(status.elapsed_time.unwrap() > 0.0);

    let url = status.receipt_url.expect("receipt_url on success");
    let bytes = client.download(&url).await.unwrap();
    let receipt: Receipt = decode("receipt", &bytes).unwrap();
    assert_eq!(receipt.journal.bytes, b"hello bonsai");
    verify(&receipt, ImageId::from_words(ECHO.image_id)).unwrap();
    assert!(receipt.inner.composite().is_ok(), "the kind asked for");
    // The same receipt through GET /receipts/{uuid}.
    assert_eq!(client.receipt_download(&session).await.unwrap(), bytes);
    receipt_cache_answers_only_the_same_statement(&s, &key, &session.uuid).await;

    // Uploaded receipts are verified: a tampered journal, or a journal over the cluster's
    // limit (1 MiB by default), is refused with its code and never stored.
    let assumption = client.upload_receipt(bytes.clone()).await.unwrap();
    let mut tampered = receipt.clone();
    tampered.journal.bytes[0] ^= 1;
    let err = client.upload_receipt(encode(&tampered)).await.unwrap_err().to_string();
    assert!(err.contains("TIFFIN-API-023"), "{err}");
    tampered.journal.bytes = vec![0; (1 << 20) + 1];
    let err = client.upload_receipt(encode(&tampered)).await.unwrap_err().to_string();
    assert!(err.contains("TIFFIN-API-025"), "{err}");
    // A session names at most `max_assumptions` (2 here) distinct receipts, checked before
    // any receipt is looked up.
    let many: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let input = client.upload_input(b"x".to_vec()).await.unwrap();
    let err = client.create_session(image.clone(), input, many, true).await.unwrap_err();
    assert!(err.to_string().contains("TIFFIN-API-024"), "{err}");

    // The `compose` guest verifies echo's receipt inside the zkVM (SYS_VERIFY_INTEGRITY). A
    // claim no uploaded receipt proves (another journal) fails at execution, clearly; without
    // the assumption the guest cannot run either.
    client.upload_img(&COMPOSE.image_id_hex(), COMPOSE.program.to_vec()).await.unwrap();
    let echo_id = ImageId::from_words(ECHO.image_id);
    let forged = [echo_id.0.as_bytes(), b"hello bonsaj".as_slice()].concat();
    let forged = client.upload_input(forged).await.unwrap();
    let bad = client
        .create_session(COMPOSE.image_id_hex(), forged, vec![assumption.clone()], true)
        .await
        .unwrap();
    let (status, _) = wait(&client, &bad, Duration::from_secs(60)).await;
    assert_eq!(status.status, "FAILED");
    let msg = status.error_msg.unwrap();
    assert!(msg.contains("no receipt found to resolve assumption"), "{msg}");
    let claim = [echo_id.0.as_bytes(), b"hello bonsai".as_slice()].concat();
    let input = client.upload_input(claim).await.unwrap();
    let alone = client.create_session(COMPOSE.image_id_hex(), input, vec![], true).await.unwrap();
    assert_eq!(wait(&client, &alone, Duration::from_secs(60)).await.0.status, "FAILED");

    // A snark job counts against the tenant's concurrency quota like a session.
    let quota = |n: i64| {
        s.admin(reqwest::Method::PATCH, "/admin/tenants/alice")
            .json(&json!({ "concurrent_proofs": n }))
            .send()
    };
    assert_eq!(quota(0).await.unwrap().status(), 200);
    let err = client.create_snark(session.uuid.clone()).await.unwrap_err().to_string();
    assert!(err.contains("TIFFIN-API-050"), "{err}");
    assert_eq!(quota(4).await.unwrap().status(), 200);

    // SNARK needs a succinct receipt: a composite session's snark fails at once with its code
    // (the succinct case, refused without a Groth16 backend, is api_distributed's).
    let snark = client.create_snark(session.uuid.clone()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let res = loop {
        let r = snark.status(&client).await.unwrap();
        if r.status != "RUNNING" {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "snark still running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(res.status, "FAILED");
    assert!(res.error_msg.unwrap().contains("TIFFIN-WORKFLOW-004"));
    s.shutdown().await;
}

/// A guest's journal is stored as a blob, never in the task database, and is capped by the
/// cluster's `--max-journal-size`: one byte over fails the session with a code, at the limit
/// it is served whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guest_journals_are_capped_and_served_from_the_store() {
    let s = start(Agents::ExecOnly, |cfg| cfg.max_journal_bytes = 16).await;
    let key = s.tenant("carol", json!({})).await;
    let client = s.client(&key);
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let at_limit = client.upload_input(vec![7u8; 16]).await.unwrap();
    let session = client.create_session(ECHO.image_id_hex(), at_limit, vec![], true).await.unwrap();
    let (status, _) = wait(&client, &session, Duration::from_secs(60)).await;
    assert_eq!(status.status, "SUCCEEDED", "{:?}", status.error_msg);
    assert_eq!(session.exec_only_journal(&client).await.unwrap(), vec![7u8; 16]);

    let over = client.upload_input(vec![7u8; 17]).await.unwrap();
    let session = client.create_session(ECHO.image_id_hex(), over, vec![], true).await.unwrap();
    let (status, _) = wait(&client, &session, Duration::from_secs(60)).await;
    assert_eq!(status.status, "FAILED");
    let why = status.error_msg.unwrap();
    assert!(why.contains("TIFFIN-WORKFLOW-005") && why.contains("17 bytes"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn execute_only_sessions_logs_stop_quotas_and_version() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let key = s.tenant("bob", json!({ "concurrent_proofs": 5, "exec_cycle_limit": 7 })).await;
    let client = s.client(&key);

    // Execute-only: journal, stats, no receipt.
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let input = client.upload_input(b"preflight".to_vec()).await.unwrap();
    let session =
        client.create_session(ECHO.image_id_hex(), input.clone(), vec![], true).await.unwrap();
    let (status, _) = wait(&client, &session, Duration::from_secs(60)).await;
    assert_eq!(status.status, "SUCCEEDED", "{:?}", status.error_msg);
    assert!(status.receipt_url.is_none());
    assert!(status.stats.unwrap().cycles > 0);
    assert_eq!(session.exec_only_journal(&client).await.unwrap(), b"preflight");
    assert!(matches!(client.receipt_download(&session).await, Err(SdkErr::ReceiptNotFound)));
    assert_eq!(session.logs(&client).await.unwrap(), "");

    // Tiffin's deadline and priority extensions: a session past its deadline runs to the end
    // and says so; an unknown value is refused; the unmodified SDK above sends neither.
    let create = |body: serde_json::Value| {
        s.user(&key, reqwest::Method::POST, "/sessions/create").json(&body).send()
    };
    let body = |extra: serde_json::Value| {
        let mut b = json!({ "img": ECHO.image_id_hex(), "input": input, "execute_only": true });
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    for (deadline, missed) in [(now.as_secs() - 60, true), (now.as_secs() + 3_600, false)] {
        let res = create(body(json!({ "deadline": deadline, "priority": 7 }))).await.unwrap();
        assert_eq!(res.status(), 200);
        let id =
            res.json::<serde_json::Value>().await.unwrap()["uuid"].as_str().unwrap().to_string();
        let late = bonsai_sdk::non_blocking::SessionId::new(id.clone());
        let (status, _) = wait(&client, &late, Duration::from_secs(60)).await;
        assert_eq!(status.status, "SUCCEEDED");
        let raw: serde_json::Value = s
            .user(&key, reqwest::Method::GET, &format!("/sessions/status/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(raw["deadline_missed"], json!(missed), "{raw}");
    }
    for bad in [json!({ "priority": 5_000 }), json!({ "deadline": 0 })] {
        let res = create(body(bad.clone())).await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        assert!(res.text().await.unwrap().contains("TIFFIN-API-011"), "{bad}");
    }

    // A guest that panics: FAILED, and its stderr reaches the user through error_msg and logs.
    client.upload_img(&PANIC.image_id_hex(), PANIC.program.to_vec()).await.unwrap();
    let input = client.upload_input(b"oops".to_vec()).await.unwrap();
    let failed = client.create_session(PANIC.image_id_hex(), input, vec![], true).await.unwrap();
    let (status, _) = wait(&client, &failed, Duration::from_secs(60)).await;
    assert_eq!(status.status, "FAILED");
    assert!(status.error_msg.unwrap().contains("guest panicked: deliberate failure: oops"));
    assert!(
        failed.logs(&client).await.unwrap().contains("guest panicked: deliberate failure: oops")
    );

    // Stop: a proving session waits for a prover that this server does not have.
    let input = client.upload_input(b"never proven".to_vec()).await.unwrap();
    let running = client.create_session(ECHO.image_id_hex(), input, vec![], false).await.unwrap();
    wait_state(&client, &running, "ProveSegments: 0/1").await;
    running.stop(&client).await.unwrap();
    let status = running.status(&client).await.unwrap();
    assert_eq!(status.status, "ABORTED");
    assert!(status.error_msg.is_some());
    let again = running.stop(&client).await.unwrap_err().to_string();
    assert!(again.contains("TIFFIN-API-031"), "stopping twice: {again}");

    // The tenant's own quotas, as the admin set them.
    let q = client.quotas().await.unwrap();
    assert_eq!((q.concurrent_proofs, q.exec_cycle_limit), (5, 7));
    assert!(q.cycle_usage > 0, "finished sessions are charged: {}", q.cycle_usage);
    assert_eq!(client.version().await.unwrap().risc0_zkvm, vec!["3.1.0-rc.1".to_string()]);

    // Inputs and images can be deleted.
    client.input_delete(&session.uuid).await.unwrap_err(); // a session id is not an input id
    let spare = client.upload_input(vec![1, 2, 3]).await.unwrap();
    client.input_delete(&spare).await.unwrap();
    client.image_delete(&PANIC.image_id_hex()).await.unwrap();
    assert!(!client.has_img(&PANIC.image_id_hex()).await.unwrap());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_limit_concurrency_cycles_and_budget() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let key = s.tenant("carol", json!({ "concurrent_proofs": 1, "exec_cycle_limit": 1 })).await;
    let client = s.client(&key);
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    client.upload_img(&SPIN.image_id_hex(), SPIN.program.to_vec()).await.unwrap();

    // Concurrency: one session runs (stuck waiting for a prover), the second is refused.
    let input = client.upload_input(b"x".to_vec()).await.unwrap();
    let first =
        client.create_session(ECHO.image_id_hex(), input.clone(), vec![], false).await.unwrap();
    let err =
        client.create_session(ECHO.image_id_hex(), input.clone(), vec![], true).await.unwrap_err();
    assert!(err.to_string().contains("TIFFIN-API-050"), "{err}");
    let res = s
        .user(&key, reqwest::Method::POST, "/sessions/create")
        .json(&json!({ "img": ECHO.image_id_hex(), "input": input, "execute_only": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    first.stop(&client).await.unwrap();

    // Cycle limit: the tenant allows 1 million cycles; spinning 3 million fails the session.
    let spin = client.upload_input(spin_input(3_000_000)).await.unwrap();
    let over = client.create_session(SPIN.image_id_hex(), spin, vec![], true).await.unwrap();
    let (status, _) = wait(&client, &over, Duration::from_secs(120)).await;
    assert_eq!(status.status, "FAILED");
    let msg = status.error_msg.unwrap();
    assert!(msg.contains("cycle limit"), "{msg}");
    // Charged what it ran (up to its 1M-cycle limit), not 0; the stopped session before it
    // is charged its executed cycles too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client.quotas().await.unwrap().cycle_usage < 1_000_000 {
        assert!(std::time::Instant::now() < deadline, "the failed session was not charged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Budget: once usage reaches the budget, new sessions are refused with 429.
    let res = s
        .admin(reqwest::Method::PATCH, "/admin/tenants/carol")
        .json(&json!({ "cycle_budget": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Usage (the cycles charged above) is past the budget now: the next session is refused.
    let small = client.upload_input(b"y".to_vec()).await.unwrap();
    let err = client.create_session(ECHO.image_id_hex(), small, vec![], true).await.unwrap_err();
    let err = err.to_string();
    assert!(err.contains("TIFFIN-API-051"), "{err}");
    assert_eq!(client.quotas().await.unwrap().cycle_budget, 0);
    s.shutdown().await;
}

/// Failed before the fix: an execute-only session whose guest fails, or that is stopped
/// mid-execution, was charged 0 cycles, so the executor ran for free.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_and_stopped_execute_only_sessions_are_charged_what_they_ran() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    for (tenant, guest, input, stop) in [
        ("dave", &PANIC, b"oops".to_vec(), false),
        ("erin", &SPIN, spin_input(2_000_000_000), true),
    ] {
        let key = s.tenant(tenant, json!({})).await;
        let client = s.client(&key);
        client.upload_img(&guest.image_id_hex(), guest.program.to_vec()).await.unwrap();
        let input = client.upload_input(input).await.unwrap();
        let session =
            client.create_session(guest.image_id_hex(), input, vec![], true).await.unwrap();
        if stop {
            // Stopped once a few segments ran.
            tokio::time::sleep(Duration::from_secs(3)).await;
            session.stop(&client).await.unwrap();
        }
        let (status, _) = wait(&client, &session, Duration::from_secs(60)).await;
        assert_ne!(status.status, "SUCCEEDED", "{tenant}");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while client.quotas().await.unwrap().cycle_usage == 0 {
            assert!(std::time::Instant::now() < deadline, "{tenant}'s session was not charged");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    s.shutdown().await;
}

/// Inputs are streamed to the store (not buffered whole) under the size limit; one over it is
/// refused with 413 and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_inputs_stream_through_and_oversized_ones_are_refused() {
    // Echo's journal is its input: this server keeps journals of up to 12 MiB too.
    let s = start(Agents::ExecOnly, |c| {
        c.limits.max_input_bytes = 12 << 20;
        c.max_journal_bytes = 12 << 20;
    })
    .await;
    let key = s.tenant("hugo", json!({})).await;
    let client = s.client(&key);
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();

    // 9 MiB: more than one 8 MiB store part, so the multipart path is taken.
    let big: Vec<u8> = (0..9u32 << 20).map(|i| (i % 251) as u8).collect();
    let input = client.upload_input(big.clone()).await.unwrap();
    let session = client.create_session(ECHO.image_id_hex(), input, vec![], true).await.unwrap();
    let (status, _) = wait(&client, &session, Duration::from_secs(300)).await;
    assert_eq!(status.status, "SUCCEEDED", "{:?}", status.error_msg);
    assert!(session.exec_only_journal(&client).await.unwrap() == big, "journal is the whole input");

    // Over the limit, without a Content-Length to reject early: the stream is cut at 12 MiB.
    let url = format!("{}/inputs/upload/{}", s.url, uuid::Uuid::new_v4());
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..13).map(|_| Ok(vec![7u8; 1 << 20])).collect();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let res = s.http.put(&url).header("x-api-key", &key).body(body).send().await.unwrap();
    assert_eq!(res.status(), 413);
    assert!(res.text().await.unwrap().contains("TIFFIN-API-040"));
    // Nothing was stored under that id: a correct upload to it still works.
    let res =
        s.http.put(&url).header("x-api-key", &key).body(vec![1u8, 2, 3]).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    s.shutdown().await;
}

/// An image its sessions still need outlives its deletion: the running session holds the
/// blob, which goes when the session ends and nothing else holds it. Tenants hold images
/// separately: one tenant deleting its reference leaves another's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_images_stay_until_their_sessions_end() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let (a, b) = (s.tenant("ann", json!({})).await, s.tenant("bob", json!({})).await);
    let (ca, cb) = (s.client(&a), s.client(&b));
    let image = ECHO.image_id_hex();
    let blob = tiffin_workflow::blobs::image(&image);
    let cold = s.server.state.cluster.stores.cold.clone();
    for c in [&ca, &cb] {
        c.upload_img(&image, ECHO.program.to_vec()).await.unwrap();
    }
    let delete = |key: &str| s.user(key, reqwest::Method::DELETE, &format!("/images/{image}"));
    assert_eq!(delete(&b).send().await.unwrap().status(), 204);
    assert!(!cb.has_img(&image).await.unwrap(), "bob's reference is gone");
    assert!(ca.has_img(&image).await.unwrap(), "ann's is not");

    // A proving session stays RUNNING here (no prover): ann deletes the image meanwhile.
    let input = ca.upload_input(b"held".to_vec()).await.unwrap();
    let session = ca.create_session(image.clone(), input, vec![], false).await.unwrap();
    wait_state(&ca, &session, "ProveSegments: 0/1").await;
    assert_eq!(delete(&a).send().await.unwrap().status(), 204);
    assert!(!ca.has_img(&image).await.unwrap());
    assert!(cold.exists(&blob).await.unwrap(), "the running session holds the blob");
    session.stop(&ca).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cold.exists(&blob).await.unwrap() {
        assert!(std::time::Instant::now() < deadline, "blob kept after its session ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.shutdown().await;
}

/// A session past the server's session timeout ends TIMED_OUT (its tasks cancelled), so an
/// endless session cannot hold the executor or a prover; it is charged what it ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_past_the_timeout_end_timed_out() {
    let s = start(Agents::ExecOnly, |c| c.session_timeout = Some(Duration::from_secs(2))).await;
    let key = s.tenant("tim", json!({})).await;
    let client = s.client(&key);
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let input = client.upload_input(b"slow".to_vec()).await.unwrap();
    // No prover here: the session waits at its first segment until the deadline.
    let session = client.create_session(ECHO.image_id_hex(), input, vec![], false).await.unwrap();
    let (status, _) = wait(&client, &session, Duration::from_secs(30)).await;
    assert_eq!(status.status, "TIMED_OUT", "{:?}", status.error_msg);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client.quotas().await.unwrap().cycle_usage == 0 {
        assert!(std::time::Instant::now() < deadline, "the timed-out session was not charged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.shutdown().await;
}

/// The receipt cache: the same tenant proving the same image, input bytes and receipt kind
/// again gets the proven session back at once, marked cached; another kind, an opt-out or
/// another tenant proves anew. (`proven` is a SUCCEEDED composite session of echo over
/// `hello bonsai`, the first test's.)
async fn receipt_cache_answers_only_the_same_statement(
    s: &common::TestServer,
    key: &str,
    proven: &str,
) {
    let image = ECHO.image_id_hex();
    let create = |key: String, extra: serde_json::Value| async move {
        let client = s.client(&key);
        let input = client.upload_input(b"hello bonsai".to_vec()).await.unwrap();
        let mut req = json!({ "img": ECHO.image_id_hex(), "input": input, "assumptions": [] });
        req.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let res = s.user(&key, reqwest::Method::POST, "/sessions/create").json(&req);
        let res = res.send().await.unwrap();
        assert_eq!(res.status(), 200);
        let v: serde_json::Value = res.json().await.unwrap();
        (v["uuid"].as_str().unwrap().to_owned(), v["cached"] == json!(true))
    };
    let (again, cached) = create(key.into(), json!({ "receipt_kind": "composite" })).await;
    assert_eq!((again.as_str(), cached), (proven, true), "the same statement is cached");
    let client = s.client(key);
    let status = bonsai_sdk::non_blocking::SessionId::new(again).status(&client).await.unwrap();
    assert_eq!(status.status, "SUCCEEDED", "answered at once");

    let other = s.tenant("carol", json!({})).await;
    s.client(&other).upload_img(&image, ECHO.program.to_vec()).await.unwrap();
    let misses = [
        (key.to_owned(), json!({ "receipt_kind": "succinct" }), "another receipt kind"),
        (key.to_owned(), json!({ "receipt_kind": "composite", "no_cache": true }), "opt-out"),
        (other.clone(), json!({ "receipt_kind": "composite" }), "another tenant"),
    ];
    for (key, extra, why) in misses {
        let (uuid, cached) = create(key.clone(), extra).await;
        assert!(uuid != proven && !cached, "{why}: proven anew");
        let stop = s.user(&key, reqwest::Method::GET, &format!("/sessions/stop/{uuid}"));
        assert_eq!(stop.send().await.unwrap().status(), 200, "{why}: stopped");
    }
    // A stopped session is never a cache hit: carol's next request proves anew too.
    let (uuid, cached) = create(other.clone(), json!({ "receipt_kind": "composite" })).await;
    assert!(uuid != proven && !cached, "a stopped session is not reused");
    let stop = s.user(&other, reqwest::Method::GET, &format!("/sessions/stop/{uuid}"));
    assert_eq!(stop.send().await.unwrap().status(), 200);
}
