//! The admin API, the operations routes, and the tenant store on both databases.

mod common;

use std::time::Duration;

use common::{Agents, start, wait, wait_state};
use reqwest::Method;
use serde_json::{Value, json};
use tiffin_api::TenantStore;
use tiffin_api::tenants::TenantDefaults;
use tiffin_guests::{ECHO, PANIC};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admin_manages_tenants_keys_priorities_and_jobs() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let key = s
        .tenant("frank", json!({ "priority": 3.0, "reservations": { "prove": 2, "exec": 1 } }))
        .await;
    let client = s.client(&key);

    // Priority and reservations reach the TaskDB streams and the tenant's quotas.
    let q = client.quotas().await.unwrap();
    assert_eq!((q.dedicated_gpu, q.dedicated_executor), (2, 1));
    let queues: Vec<Value> =
        s.admin(Method::GET, "/admin/queues").send().await.unwrap().json().await.unwrap();
    let prove = queues.iter().find(|q| q["tenant"] == "frank" && q["kind"] == "prove").unwrap();
    assert_eq!(prove["config"]["priority_multiplier"], 3.0);
    assert_eq!(prove["config"]["reserved"], 2);
    let res = s
        .admin(Method::PATCH, "/admin/tenants/frank")
        .json(&json!({ "priority": 0.5, "reservations": { "prove": 0 }, "concurrent_proofs": 4 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["priority"], 0.5);
    assert_eq!(v["concurrent_proofs"], 4);
    assert_eq!(v["reservations"], json!({ "exec": 1 }), "prove reservation removed, exec kept");
    assert_eq!(client.quotas().await.unwrap().dedicated_gpu, 0);

    // Keys: a second key works; revoking it locks it out; the first still works.
    let res = s
        .admin(Method::POST, "/admin/tenants/frank/keys")
        .json(&json!({ "label": "ci" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let k2: Value = res.json().await.unwrap();
    let second = s.client(k2["key"].as_str().unwrap());
    second.version().await.unwrap();
    let keys: Vec<Value> = s
        .admin(Method::GET, "/admin/tenants/frank/keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter().all(|k| k.get("key").is_none() && k.get("hash").is_none()),
        "keys are never shown again"
    );
    let res = s
        .admin(Method::DELETE, &format!("/admin/keys/{}", k2["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // (`version()` does not read error bodies; `has_img` does.)
    let err =
        second.has_img(&ECHO.image_id_hex()).await.expect_err("revoked key refused").to_string();
    assert!(err.contains("TIFFIN-API-002"), "{err}");
    client.version().await.unwrap();

    // Jobs: list, inspect with per-kind counts, cancel; the agent holding the exec lease is
    // visible while it runs (here: none left once the session waits for a prover).
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let input = client.upload_input(b"admin".to_vec()).await.unwrap();
    let session = client.create_session(ECHO.image_id_hex(), input, vec![], false).await.unwrap();
    wait_state(&client, &session, "ProveSegments: 0/1").await;
    let jobs: Vec<Value> = s
        .admin(Method::GET, "/admin/jobs?tenant=frank&state=running")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["id"], session.uuid);
    let job: Value = s
        .admin(Method::GET, &format!("/admin/jobs/{}", session.uuid))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let counts = job["counts"].as_array().unwrap();
    assert!(
        counts.iter().any(|c| c["kind"] == "prove" && c["state"] == "ready" && c["count"] == 1),
        "{counts:?}"
    );
    // The executor agent is listed although idle: kinds, last report, no lease (no prover here).
    let agents: Vec<Value> =
        s.admin(Method::GET, "/admin/agents").send().await.unwrap().json().await.unwrap();
    assert!(!agents.is_empty(), "agents report themselves: {agents:?}");
    assert!(
        agents.iter().all(|a| a["leases"].as_array().unwrap().is_empty()),
        "no lease held: {agents:?}"
    );
    let exec = agents
        .iter()
        .find(|a| a["kinds"].as_array().unwrap().iter().any(|k| k == "exec"))
        .expect("the executor");
    assert!(exec["seconds_since_seen"].as_f64().unwrap() < 30.0, "{exec}");
    let res = s
        .admin(Method::POST, &format!("/admin/jobs/{}/cancel", session.uuid))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(session.status(&client).await.unwrap().status, "ABORTED");

    // Retry: a failed job runs again from its execute step (here it fails again, the guest
    // panics on purpose); anything but a failed job is refused.
    client.upload_img(&PANIC.image_id_hex(), PANIC.program.to_vec()).await.unwrap();
    let input = client.upload_input(b"again".to_vec()).await.unwrap();
    let failing = client.create_session(PANIC.image_id_hex(), input, vec![], true).await.unwrap();
    assert_eq!(wait(&client, &failing, Duration::from_secs(60)).await.0.status, "FAILED");
    let job_url = format!("/admin/jobs/{}", failing.uuid);
    let before: Value = s.admin(Method::GET, &job_url).send().await.unwrap().json().await.unwrap();
    let refused = [
        (session.uuid.clone(), 409, "TIFFIN-API-033"),
        (uuid::Uuid::new_v4().to_string(), 404, "TIFFIN-API-020"),
        ("nope".to_string(), 400, "TIFFIN-API-013"),
    ];
    for (id, want_status, want_code) in refused {
        let res = s.admin(Method::POST, &format!("/admin/jobs/{id}/retry")).send().await.unwrap();
        assert_eq!(res.status(), want_status, "retry {id}");
        assert!(res.text().await.unwrap().contains(want_code), "retry {id}");
    }
    let res = s.admin(Method::POST, &format!("{job_url}/retry")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now: Value = s.admin(Method::GET, &job_url).send().await.unwrap().json().await.unwrap();
        if now["state"] == "failed" && now["finished_at"] != before["finished_at"] {
            assert!(
                now["first_failure"]["error"]
                    .as_str()
                    .unwrap()
                    .contains("deliberate failure: again"),
                "{now}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the retried job never ran again: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failing.status(&client).await.unwrap().status, "FAILED");

    // Deleting the tenant revokes its keys.
    let tenants: Vec<Value> =
        s.admin(Method::GET, "/admin/tenants").send().await.unwrap().json().await.unwrap();
    assert!(tenants.iter().any(|t| t["name"] == "frank"));
    assert_eq!(s.admin(Method::DELETE, "/admin/tenants/frank").send().await.unwrap().status(), 204);
    let err =
        client.has_img(&ECHO.image_id_hex()).await.expect_err("deleted tenant refused").to_string();
    assert!(err.contains("TIFFIN-API-002"), "{err}");
    s.shutdown().await;
}

/// The agent registry and the queue report: an executor-only server plans a session's prove
/// task and no agent takes it, so the report shows it waiting with its cycles.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agents_announce_their_hosts_and_the_queue_report_sizes_the_cluster() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let key = s.tenant("hana", json!({})).await;
    let client = s.client(&key);
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let input = client.upload_input(b"report".to_vec()).await.unwrap();
    let session = client.create_session(ECHO.image_id_hex(), input, vec![], false).await.unwrap();
    wait_state(&client, &session, "ProveSegments: 0/1").await;

    // The executor announced its host and limits, and is alive.
    let agents: Vec<Value> =
        s.admin(Method::GET, "/admin/agents").send().await.unwrap().json().await.unwrap();
    let exec = agents.iter().find(|a| a["agent"] == "api-test-exec").expect("the executor");
    assert_eq!(exec["status"], "alive", "{exec}");
    assert_eq!(exec["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(exec["max_po2"], tiffin_zkvm::MAX_PO2);
    assert_eq!(
        (exec["concurrency"].as_u64(), exec["heartbeat_secs"].as_f64()),
        (Some(1), Some(0.5))
    );
    assert!(exec["cores"].as_u64().unwrap() >= 1 && exec["memory_bytes"].is_u64(), "{exec}");
    assert!(!exec["host"].as_str().unwrap().is_empty() && exec["gpu"].is_string(), "{exec}");
    assert!(exec["dead_after_secs"].as_f64().unwrap() >= 15.0, "{exec}");

    // The report: one prove task waits with its segment's cycles; nobody serves prove.
    let report: Value = s
        .admin(Method::GET, "/admin/queue-report?target_secs=120")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["target_secs"], 120);
    let kinds = report["kinds"].as_object().unwrap();
    assert_eq!(kinds.keys().collect::<Vec<_>>(), ["aux", "exec", "join", "prove", "snark"]);
    let prove = &report["kinds"]["prove"];
    assert_eq!((prove["queued"].as_i64(), prove["running"].as_i64()), (Some(1), Some(0)));
    let cycles = prove["cycles_waiting"].as_i64().unwrap();
    assert!(cycles.count_ones() == 1 && cycles <= 1 << 16, "2^po2, po2 <= 16: {prove}");
    assert_eq!(prove["queued_without_cycles"], 0);
    assert!(prove["oldest_wait_secs"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        (prove["mean_task_secs"].is_null(), prove["assumed_task_secs"].as_f64()),
        (true, Some(60.0))
    );
    assert_eq!(
        (prove["agents_alive"].as_u64(), prove["agents_needed"].as_u64()),
        (Some(0), Some(1))
    );
    // The executor's finished task is measured; its kind is drained.
    let exec = &report["kinds"]["exec"];
    assert!(exec["mean_task_secs"].as_f64().unwrap() > 0.0, "{exec}");
    assert_eq!(exec["finished_sampled"], 1);
    assert_eq!((exec["agents_alive"].as_u64(), exec["agents_needed"].as_u64()), (Some(1), Some(0)));

    for bad in ["0", "soon"] {
        let res = s
            .admin(Method::GET, &format!("/admin/queue-report?target_secs={bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert!(res.text().await.unwrap().contains("TIFFIN-API-062"));
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_and_metrics_answer_probes_and_scrapes_without_a_key() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    // A reservation creates gina's exec stream, so the queue gauges have a series.
    let key = s.tenant("gina", json!({ "reservations": { "exec": 1 } })).await;
    let health = s.http.get(format!("{}/health", s.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let h: Value = health.json().await.unwrap();
    assert_eq!(
        (h["status"].as_str(), h["taskdb"].as_str(), h["cold_store"].as_str()),
        (Some("ok"), Some("ok"), Some("ok"))
    );

    s.client(&key).version().await.unwrap();
    let metrics = scrape(&s).await;
    // The recorder is the process's: other servers of this process may count too, so the
    // counts are checked as at least what this test caused.
    let versions = sample(
        &metrics,
        r#"tiffin_api_requests_total{method="GET",route="/version",status="200"}"#,
    );
    assert!(versions >= 1.0, "{metrics}");
    assert!(metrics.contains(r#"tiffin_api_request_seconds_bucket{route="/version",le="0.001"}"#));
    assert!(metrics.contains("# TYPE tiffin_queue_ready_tasks gauge"), "{metrics}");
    assert_eq!(sample(&metrics, r#"tiffin_queue_ready_tasks{tenant="gina",kind="exec"}"#), 0.0);
    assert_eq!(sample(&metrics, "tiffin_queue_read_ok"), 1.0);
    assert!(metrics.contains("tiffin_api_sessions_created_total"), "{metrics}");
    // In-process agents record into the same recorder.
    assert!(metrics.contains(r#"tiffin_agent_tasks_claimed_total{kind="exec"}"#), "{metrics}");

    s.shutdown().await;
}

/// The same store contract on PostgreSQL and SQLite.
/// Label values come from fixed sets whatever clients send: a made-up method is `OTHER`, a
/// path no route matches is `unmatched`, so random requests cannot grow the series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_labels_stay_bounded_whatever_clients_send() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let brew = Method::from_bytes(b"BREW").unwrap();
    for _ in 0..10 {
        let path = format!("{}/no/such/route/{}", s.url, uuid::Uuid::new_v4());
        s.http.request(brew.clone(), &path).send().await.unwrap();
        s.http.get(&path).send().await.unwrap();
    }
    s.http.request(brew, format!("{}/version", s.url)).send().await.unwrap();
    s.http.request(Method::TRACE, format!("{}/health", s.url)).send().await.unwrap();

    let metrics = scrape(&s).await;
    let methods = label_values(&metrics, "tiffin_api_requests_total{", "method");
    let known = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "OTHER"];
    assert!(methods.iter().all(|m| known.contains(&m.as_str())), "{methods:?}");
    assert!(methods.contains("OTHER"), "{metrics}");
    let documented = &tiffin_api::openapi::document().paths.paths;
    for series in ["tiffin_api_requests_total{", "tiffin_api_request_seconds_bucket{"] {
        let routes = label_values(&metrics, series, "route");
        assert!(
            routes.iter().all(|r| r == "unmatched" || documented.contains_key(r)),
            "{series} {routes:?}"
        );
        assert!(routes.contains("unmatched"), "{metrics}");
    }
    assert!(!metrics.contains("BREW") && !metrics.contains("no/such"), "{metrics}");
    s.shutdown().await;
}

async fn scrape(s: &common::TestServer) -> String {
    let res = s.http.get(format!("{}/metrics", s.url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// The value of the one sample whose name and labels are `series`.
fn sample(metrics: &str, series: &str) -> f64 {
    let line = metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"));
    line.trim().parse().unwrap()
}

/// Every value of `label` on the samples whose line starts with `prefix`.
fn label_values(metrics: &str, prefix: &str, label: &str) -> std::collections::BTreeSet<String> {
    let key = format!("{label}=\"");
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.split_once(&key).and_then(|(_, rest)| rest.split_once('"')))
        .map(|(value, _)| value.to_string())
        .collect()
}

async fn store_contract(store: TenantStore) {
    let d = TenantDefaults {
        concurrent_proofs: 2,
        exec_cycle_limit: 5,
        cycle_budget: 1000,
        storage_quota: 100,
    };
    assert!(store.create_tenant("acme", &d).await.unwrap());
    assert!(!store.create_tenant("acme", &d).await.unwrap(), "names are unique");
    let (key, info) = store.create_key("acme", "laptop").await.unwrap();
    assert_eq!(store.authenticate(&key).await.unwrap().unwrap().name, "acme");
    assert!(store.authenticate("tfn_wrong").await.unwrap().is_none());
    assert_eq!(store.keys("acme").await.unwrap(), vec![info.clone()]);
    // Sessions, images and jobs belong to the tenant's immutable id, not its name.
    let id = store.tenant("acme").await.unwrap().unwrap().id;
    assert!(id.starts_with("acme.") && id.len() > 5, "{id}");

    store.add_session("s1", &id).await.unwrap();
    store.add_session("s2", &id).await.unwrap();
    assert_eq!(store.uncharged(10).await.unwrap().len(), 2);
    assert!(store.charge("s1", 300).await.unwrap());
    assert!(!store.charge("s1", 300).await.unwrap(), "charged once only");
    assert_eq!(store.tenant("acme").await.unwrap().unwrap().cycle_usage, 300);
    assert_eq!(store.uncharged(10).await.unwrap().len(), 1);

    store.add_image_ref("img", &id).await.unwrap();
    store.add_image_ref("img", &id).await.unwrap();
    store.add_image_ref("img", "other").await.unwrap();
    assert_eq!(store.drop_image_ref("img", &id).await.unwrap(), (true, 1));
    assert_eq!(store.drop_image_ref("img", &id).await.unwrap(), (false, 1));
    store.add_image_ref("own", &id).await.unwrap();
    storage_contract(&store, &id).await;

    let mut t = store.tenant("acme").await.unwrap().unwrap();
    t.priority = 2.5;
    t.concurrent_proofs = 9;
    assert!(store.update_tenant(&t).await.unwrap());
    assert_eq!(store.tenant("acme").await.unwrap().unwrap(), t);
    assert!(store.revoke_key(&info.id).await.unwrap());
    assert!(store.authenticate(&key).await.unwrap().is_none());
    let gone = store.delete_tenant("acme").await.unwrap().expect("it existed");
    assert_eq!(gone.tenant.id, id);
    assert_eq!(gone.orphaned_images, ["own"], "images only it held");
    assert!(store.tenant("acme").await.unwrap().is_none());
    assert!(store.delete_tenant("acme").await.unwrap().is_none());
    // The name can be used again, by a tenant that owns nothing of the old one's.
    assert!(store.create_tenant("acme", &d).await.unwrap());
    let again = store.tenant("acme").await.unwrap().unwrap();
    assert_ne!(again.id, id);
    assert_eq!((again.cycle_usage, again.storage_usage), (0, 0));
    assert!(store.release_blob(&id, "inputs/b").await.unwrap().is_none(), "rows went too");
    assert!(!store.has_image_ref("img", &again.id).await.unwrap());
}

/// Storage usage moves with reservations, commits and releases, never past the quota (100
/// bytes here), and each blob is released once however many collectors race.
async fn storage_contract(store: &TenantStore, id: &str) {
    let usage = || async { store.tenant("acme").await.unwrap().unwrap().storage_usage };
    assert!(store.reserve_blob(id, "inputs/a", 60).await.unwrap());
    assert!(!store.reserve_blob(id, "inputs/b", 41).await.unwrap(), "past the quota");
    assert!(!store.reserve_blob(id, "inputs/a", 1).await.unwrap(), "already charged");
    assert_eq!(usage().await, 60);
    assert!(store.commit_blob(id, "inputs/a", 25).await.unwrap(), "smaller than reserved");
    assert!(!store.commit_blob(id, "inputs/a", 25).await.unwrap(), "committed once");
    assert_eq!(usage().await, 25);
    assert!(store.reserve_blob(id, "inputs/b", 75).await.unwrap(), "exactly the room left");
    assert!(store.commit_blob(id, "inputs/b", 75).await.unwrap());
    assert!(store.reserve_blob(id, "inputs/c", 0).await.unwrap(), "a pending upload");

    // Nothing is unused before its time; an old pending reservation is.
    let now = chrono::Utc::now().timestamp_millis();
    assert!(store.expired_blobs(now - 60_000, now - 60_000, 10).await.unwrap().is_empty());
    let expired = store.expired_blobs(now + 1, now + 1, 10).await.unwrap();
    let mut keys: Vec<_> = expired.iter().map(|b| (b.key.as_str(), b.pending)).collect();
    keys.sort();
    assert_eq!(keys, [("inputs/a", false), ("inputs/b", false), ("inputs/c", true)]);
    store.touch_blobs(id, &["inputs/a".into()]).await.unwrap();
    let after_touch = store.expired_blobs(now, now - 60_000, 10).await.unwrap();
    assert!(after_touch.iter().all(|b| b.key != "inputs/a"), "touched: in use again");

    assert_eq!(store.release_blob(id, "inputs/a").await.unwrap(), Some(25));
    assert_eq!(store.release_blob(id, "inputs/a").await.unwrap(), None, "released once");
    assert_eq!(usage().await, 75);
    assert!(store.release_blob(id, "inputs/c").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_store_works_on_postgres_and_sqlite() {
    let url = tiffin_taskdb::testing::fresh_database_url().await;
    store_contract(TenantStore::open(&url).await.unwrap()).await;
    // Re-opening (a second API process) finds the tables in place; the TaskDB shares the
    // database and its migration table, and each side ignores the other's versions.
    TenantStore::open(&url).await.unwrap();
    let config = tiffin_taskdb::Config::default();
    tiffin_taskdb::PostgresTaskDb::connect(&url, config.clone()).await.unwrap();
    TenantStore::open(&url).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (lowest, highest) = migrations(&pool).await;
    assert!(lowest == 1 && highest > 10_000, "TaskDB's from 1, the tenants' from 10001");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("taskdb.sqlite");
    // Embedded: the tenants live in the TaskDB's SQLite file (`tiffin up`), opened either way.
    store_contract(TenantStore::open(path.to_str().unwrap()).await.unwrap()).await;
    tiffin_taskdb::SqliteTaskDb::open(&path, config).await.unwrap();
    TenantStore::open(path.to_str().unwrap()).await.unwrap();
}

/// The lowest and the highest applied migration version in a PostgreSQL database.
async fn migrations(pool: &sqlx::PgPool) -> (i64, i64) {
    sqlx::query_as("SELECT min(version), max(version) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A tenant deleted and created again under the same name inherits nothing: its old
/// sessions, inputs and images are another tenant's (an immutable id owns them), the deleted
/// tenant's running session was cancelled and its inputs collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recreated_tenant_inherits_nothing_of_the_deleted_one() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let old = s.client(&s.tenant("rita", json!({})).await);
    old.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let input = old.upload_input(b"mine".to_vec()).await.unwrap();
    let done = old.create_session(ECHO.image_id_hex(), input.clone(), vec![], true).await.unwrap();
    assert_eq!(wait(&old, &done, Duration::from_secs(60)).await.0.status, "SUCCEEDED");
    let running =
        old.create_session(ECHO.image_id_hex(), input.clone(), vec![], false).await.unwrap();
    wait_state(&old, &running, "ProveSegments: 0/1").await;

    let res = s.admin(Method::DELETE, "/admin/tenants/rita").send().await.unwrap();
    assert_eq!(res.status(), 204);
    let job = s.admin(Method::GET, &format!("/admin/jobs/{}", running.uuid)).send().await;
    let job: Value = job.unwrap().json().await.unwrap();
    assert_eq!(job["state"], "cancelled", "{job}");

    let new = s.client(&s.tenant("rita", json!({})).await);
    for session in [&done, &running] {
        let Err(err) = session.status(&new).await else { panic!("the new tenant sees it") };
        assert!(err.to_string().contains("TIFFIN-API-020"), "{err}");
    }
    assert!(!new.has_img(&ECHO.image_id_hex()).await.unwrap(), "the old image is not its");
    new.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let err = new.create_session(ECHO.image_id_hex(), input, vec![], true).await.unwrap_err();
    assert!(err.to_string().contains("TIFFIN-API-020"), "the old input is gone: {err}");
    s.shutdown().await;
}
