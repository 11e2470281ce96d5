//! Tenant isolation and the table of bad requests: every one gets the expected 4xx with a
//! stable code in a JSON body, the server keeps serving, and nothing changes.

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Agents, start, wait, wait_state};
use reqwest::Method;
use serde_json::{Value, json};
use tiffin_guests::{ECHO, SPIN};

/// Reads an error response: (status, code).
async fn error_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    let code = body["code"].as_str().unwrap_or_else(|| panic!("no code: {text}")).to_string();
    assert!(
        body["error"].as_str().unwrap().starts_with(&code),
        "message starts with the code: {text}"
    );
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tenants_only_see_their_own_objects() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let a = s.tenant("tenant-a", json!({})).await;
    let b = s.tenant("tenant-b", json!({})).await;
    let ca = s.client(&a);
    ca.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let input = ca.upload_input(b"secret".to_vec()).await.unwrap();
    let done = ca.create_session(ECHO.image_id_hex(), input.clone(), vec![], true).await.unwrap();
    wait(&ca, &done, Duration::from_secs(60)).await;
    let running =
        ca.create_session(ECHO.image_id_hex(), input.clone(), vec![], false).await.unwrap();
    wait_state(&ca, &running, "ProveSegments: 0/1").await;
    let (d, r) = (done.uuid.clone(), running.uuid.clone());

    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/sessions/status/{d}"), None),
        (Method::GET, format!("/sessions/logs/{d}"), None),
        (Method::GET, format!("/sessions/exec_only_journal/{d}"), None),
        (Method::GET, format!("/sessions/stop/{r}"), None),
        (Method::GET, format!("/sessions/status/{r}"), None),
        (Method::GET, format!("/receipts/{r}"), None),
        (Method::GET, format!("/receipts/download/{d}"), None),
        (Method::GET, format!("/snark/status/{d}"), None),
        (Method::POST, "/snark/create".into(), Some(json!({ "session_id": d }))),
        (Method::DELETE, format!("/inputs/{input}"), None),
        (Method::DELETE, format!("/images/{}", ECHO.image_id_hex()), None),
        (
            Method::POST,
            "/sessions/create".into(),
            Some(json!({ "img": ECHO.image_id_hex(), "input": input })),
        ),
    ];
    for (m, path, body) in &routes {
        let mut req = s.user(&b, m.clone(), path);
        if let Some(body) = body {
            req = req.json(body);
        }
        let (status, code) = error_of(req.send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (404, "TIFFIN-API-020"), "tenant B on {m} {path}");
        // Without a key: 401, whoever owns the object.
        let mut req = s.http.request(m.clone(), format!("{}{path}", s.url));
        if let Some(body) = body {
            req = req.json(body);
        }
        let (status, code) = error_of(req.send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (401, "TIFFIN-API-001"), "no key on {m} {path}");
    }
    // Tenant B's actions changed nothing of A's.
    assert_eq!(running.status(&ca).await.unwrap().status, "RUNNING");
    assert_eq!(done.exec_only_journal(&ca).await.unwrap(), b"secret");
    assert!(ca.has_img(&ECHO.image_id_hex()).await.unwrap());
    // Images are content addressed and shared, but B learns nothing of A's: it is asked to
    // upload the program, and cannot run it by id meanwhile.
    let cb = s.client(&b);
    assert!(!cb.has_img(&ECHO.image_id_hex()).await.unwrap(), "another tenant's image");
    let input = cb.upload_input(b"x".to_vec()).await.unwrap();
    let err = cb.create_session(ECHO.image_id_hex(), input, vec![], true).await.unwrap_err();
    assert!(err.to_string().contains("TIFFIN-API-020"), "{err}");
    running.stop(&ca).await.unwrap();
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_a_stable_code_and_change_nothing() {
    let s = start(Agents::ExecOnly, |c| c.limits.max_input_bytes = 64 * 1024).await;
    let key = s.tenant("dave", json!({})).await;
    let client = s.client(&key);
    client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
    let input = client.upload_input(b"kept".to_vec()).await.unwrap();
    let done =
        client.create_session(ECHO.image_id_hex(), input.clone(), vec![], true).await.unwrap();
    wait(&client, &done, Duration::from_secs(60)).await;
    let proving =
        client.create_session(ECHO.image_id_hex(), input.clone(), vec![], false).await.unwrap();
    wait_state(&client, &proving, "ProveSegments: 0/1").await;
    let stopped =
        client.create_session(ECHO.image_id_hex(), input.clone(), vec![], false).await.unwrap();
    stopped.stop(&client).await.unwrap();
    let receipt_slot = uuid::Uuid::new_v4();
    let (d, p, x) = (done.uuid.clone(), proving.uuid.clone(), stopped.uuid.clone());
    let img = ECHO.image_id_hex();
    let spin_img = SPIN.image_id_hex();
    let zero = "0".repeat(64);
    let unknown = uuid::Uuid::new_v4().to_string();
    let create = |v: Value| Some(v.to_string().into_bytes());

    enum Key {
        Tenant,
        None,
        Wrong,
        Admin,
    }
    // (method, path, key, body, expected status, expected code)
    type Case = (Method, String, Key, Option<Vec<u8>>, u16, &'static str);
    let table: Vec<Case> = vec![
        // Authentication.
        (Method::GET, "/version".into(), Key::None, None, 401, "TIFFIN-API-001"),
        (Method::GET, "/version".into(), Key::Wrong, None, 401, "TIFFIN-API-002"),
        (Method::GET, "/user/quotas".into(), Key::Wrong, None, 401, "TIFFIN-API-002"),
        (Method::GET, "/admin/tenants".into(), Key::Tenant, None, 401, "TIFFIN-API-003"),
        (Method::GET, "/admin/tenants".into(), Key::None, None, 401, "TIFFIN-API-003"),
        // Malformed and mistyped JSON.
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            Some(b"{not json".to_vec()),
            400,
            "TIFFIN-API-010",
        ),
        (Method::POST, "/sessions/create".into(), Key::Tenant, None, 400, "TIFFIN-API-010"),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            Some(b"[1,2]".to_vec()),
            400,
            "TIFFIN-API-011",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "input": input })),
            400,
            "TIFFIN-API-011",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img })),
            400,
            "TIFFIN-API-011",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": 7, "input": input })),
            400,
            "TIFFIN-API-011",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": input, "execute_only": "yes" })),
            400,
            "TIFFIN-API-011",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": input, "assumptions": "none" })),
            400,
            "TIFFIN-API-011",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": input, "receipt_kind": "groth16" })),
            400,
            "TIFFIN-API-011",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": input, "exec_cycle_limit": -5 })),
            400,
            "TIFFIN-API-011",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": input, "exec_cycle_limit": 1.5 })),
            400,
            "TIFFIN-API-011",
        ),
        // Invalid values.
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": input, "exec_cycle_limit": 0 })),
            400,
            "TIFFIN-API-014",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": input, "exec_cycle_limit": u64::MAX })),
            400,
            "TIFFIN-API-014",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": "xyz", "input": input })),
            400,
            "TIFFIN-API-012",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": "g".repeat(64), "input": input })),
            400,
            "TIFFIN-API-012",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": "not-a-uuid" })),
            400,
            "TIFFIN-API-013",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": "" })),
            400,
            "TIFFIN-API-013",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": input, "assumptions": ["nope"] })),
            400,
            "TIFFIN-API-013",
        ),
        // Unknown objects.
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": zero, "input": input })),
            404,
            "TIFFIN-API-020",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": spin_img, "input": input })),
            404,
            "TIFFIN-API-020",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": unknown })),
            404,
            "TIFFIN-API-020",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            create(json!({ "img": img, "input": input, "assumptions": [unknown] })),
            404,
            "TIFFIN-API-020",
        ),
        (
            Method::GET,
            format!("/sessions/status/{unknown}"),
            Key::Tenant,
            None,
            404,
            "TIFFIN-API-020",
        ),
        (Method::GET, "/sessions/status/12345".into(), Key::Tenant, None, 400, "TIFFIN-API-013"),
        (
            Method::GET,
            format!("/sessions/logs/{unknown}"),
            Key::Tenant,
            None,
            404,
            "TIFFIN-API-020",
        ),
        (
            Method::GET,
            format!("/sessions/stop/{unknown}"),
            Key::Tenant,
            None,
            404,
            "TIFFIN-API-020",
        ),
        (Method::GET, format!("/snark/status/{d}"), Key::Tenant, None, 404, "TIFFIN-API-020"),
        (Method::DELETE, format!("/inputs/{unknown}"), Key::Tenant, None, 404, "TIFFIN-API-020"),
        (Method::DELETE, format!("/images/{zero}"), Key::Tenant, None, 404, "TIFFIN-API-020"),
        (Method::GET, "/images/upload/abc".into(), Key::Tenant, None, 400, "TIFFIN-API-012"),
        // Uploads.
        (
            Method::PUT,
            format!("/images/upload/{spin_img}"),
            Key::Tenant,
            Some(ECHO.program.to_vec()),
            400,
            "TIFFIN-API-015",
        ),
        (
            Method::PUT,
            format!("/images/upload/{zero}"),
            Key::Tenant,
            Some(b"garbage, not an ELF".to_vec()),
            400,
            "TIFFIN-API-016",
        ),
        (
            Method::PUT,
            format!("/images/upload/{zero}"),
            Key::Tenant,
            Some(ECHO.user_elf.to_vec()),
            400,
            "TIFFIN-API-016",
        ),
        (
            Method::PUT,
            format!("/images/upload/{zero}"),
            Key::Tenant,
            Some(Vec::new()),
            400,
            "TIFFIN-API-017",
        ),
        (
            Method::PUT,
            format!("/inputs/upload/{input}"),
            Key::Tenant,
            Some(b"overwrite".to_vec()),
            409,
            "TIFFIN-API-030",
        ),
        (
            Method::PUT,
            "/inputs/upload/bad-id".into(),
            Key::Tenant,
            Some(b"x".to_vec()),
            400,
            "TIFFIN-API-013",
        ),
        (
            Method::PUT,
            format!("/inputs/upload/{unknown}"),
            Key::Tenant,
            Some(vec![0u8; 64 * 1024 + 1]),
            413,
            "TIFFIN-API-040",
        ),
        (
            Method::PUT,
            format!("/receipts/upload/{receipt_slot}"),
            Key::Tenant,
            Some(Vec::new()),
            400,
            "TIFFIN-API-017",
        ),
        (
            Method::PUT,
            format!("/receipts/upload/{receipt_slot}"),
            Key::Tenant,
            Some(b"\x01\x02 not a receipt".to_vec()),
            400,
            "TIFFIN-API-018",
        ),
        (
            Method::POST,
            "/sessions/create".into(),
            Key::Tenant,
            Some(vec![b' '; 2 << 20]),
            413,
            "TIFFIN-API-040",
        ),
        // Results that do not exist (yet).
        (Method::GET, format!("/receipts/{p}"), Key::Tenant, None, 404, "TIFFIN-API-020"),
        (Method::GET, format!("/receipts/{d}"), Key::Tenant, None, 404, "TIFFIN-API-020"),
        (Method::GET, format!("/receipts/download/{p}"), Key::Tenant, None, 404, "TIFFIN-API-020"),
        (
            Method::GET,
            format!("/sessions/exec_only_journal/{p}"),
            Key::Tenant,
            None,
            400,
            "TIFFIN-API-019",
        ),
        (Method::GET, format!("/sessions/stop/{x}"), Key::Tenant, None, 409, "TIFFIN-API-031"),
        (Method::GET, format!("/sessions/stop/{d}"), Key::Tenant, None, 409, "TIFFIN-API-031"),
        (
            Method::POST,
            "/snark/create".into(),
            Key::Tenant,
            create(json!({ "session_id": p })),
            409,
            "TIFFIN-API-032",
        ),
        (
            Method::POST,
            "/snark/create".into(),
            Key::Tenant,
            create(json!({ "session_id": d })),
            400,
            "TIFFIN-API-019",
        ),
        (
            Method::POST,
            "/snark/create".into(),
            Key::Tenant,
            create(json!({})),
            400,
            "TIFFIN-API-011",
        ),
        // Routes and methods.
        (Method::GET, "/sessions/nope".into(), Key::Tenant, None, 404, "TIFFIN-API-021"),
        (Method::GET, "/".into(), Key::None, None, 404, "TIFFIN-API-021"),
        (Method::POST, "/version".into(), Key::Tenant, None, 405, "TIFFIN-API-022"),
        (Method::DELETE, format!("/sessions/status/{d}"), Key::Tenant, None, 405, "TIFFIN-API-022"),
        (Method::GET, "/sessions/create".into(), Key::Tenant, None, 405, "TIFFIN-API-022"),
        // Admin mistakes.
        (
            Method::POST,
            "/admin/tenants".into(),
            Key::Admin,
            create(json!({ "name": "dave" })),
            409,
            "TIFFIN-API-060",
        ),
        (
            Method::POST,
            "/admin/tenants".into(),
            Key::Admin,
            create(json!({ "name": "Bad Name!" })),
            400,
            "TIFFIN-API-061",
        ),
        (
            Method::POST,
            "/admin/tenants".into(),
            Key::Admin,
            create(json!({ "name": "eve", "priority": -1 })),
            400,
            "TIFFIN-API-062",
        ),
        (
            Method::POST,
            "/admin/tenants".into(),
            Key::Admin,
            create(json!({ "name": "eve", "concurrent_proofs": -3 })),
            400,
            "TIFFIN-API-062",
        ),
        (
            Method::POST,
            "/admin/tenants".into(),
            Key::Admin,
            create(json!({ "name": "eve", "reservations": { "gpu": 1 } })),
            400,
            "TIFFIN-API-062",
        ),
        (
            Method::POST,
            "/admin/tenants".into(),
            Key::Admin,
            create(json!({ "name": "eve", "colour": "red" })),
            400,
            "TIFFIN-API-011",
        ),
        (
            Method::PATCH,
            "/admin/tenants/nobody".into(),
            Key::Admin,
            create(json!({ "priority": 2.0 })),
            404,
            "TIFFIN-API-020",
        ),
        (Method::GET, "/admin/jobs?state=sleeping".into(), Key::Admin, None, 400, "TIFFIN-API-062"),
        (Method::GET, "/admin/jobs?limit=many".into(), Key::Admin, None, 400, "TIFFIN-API-062"),
        (Method::GET, "/admin/jobs/not-a-job".into(), Key::Admin, None, 400, "TIFFIN-API-013"),
        (
            Method::DELETE,
            "/admin/keys/0123456789ab".into(),
            Key::Admin,
            None,
            404,
            "TIFFIN-API-020",
        ),
    ];
    assert!(table.len() >= 40, "{} cases", table.len());

    let jobs_before =
        s.admin(Method::GET, "/admin/jobs?tenant=dave").send().await.unwrap().text().await.unwrap();
    let jobs_before: Vec<Value> = serde_json::from_str(&jobs_before).unwrap();
    for (method, path, who, body, want_status, want_code) in table {
        let mut req = s.http.request(method.clone(), format!("{}{path}", s.url));
        req = match who {
            Key::Tenant => req.header("x-api-key", &key),
            Key::Wrong => req.header("x-api-key", "tfn_not_a_key"),
            Key::Admin => req.header("x-admin-key", ADMIN_KEY),
            Key::None => req,
        };
        if let Some(body) = body {
            req = req.body(body);
        }
        let (status, code) = error_of(req.send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (want_status, want_code), "{method} {path}");
    }

    // Still serving, and nothing changed: the same jobs, the input, the running session, the
    // journal, the quotas; no tenant "eve".
    assert_eq!(client.version().await.unwrap().risc0_zkvm.len(), 1);
    let jobs_after: Vec<Value> =
        s.admin(Method::GET, "/admin/jobs?tenant=dave").send().await.unwrap().json().await.unwrap();
    let ids = |v: &[Value]| v.iter().map(|j| j["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&jobs_after), ids(&jobs_before));
    assert_eq!(proving.status(&client).await.unwrap().status, "RUNNING");
    assert_eq!(done.exec_only_journal(&client).await.unwrap(), b"kept");
    let again =
        client.create_session(ECHO.image_id_hex(), input.clone(), vec![], true).await.unwrap();
    assert_eq!(wait(&client, &again, Duration::from_secs(60)).await.0.status, "SUCCEEDED");
    assert_eq!(again.exec_only_journal(&client).await.unwrap(), b"kept", "input not overwritten");
    let res = s.admin(Method::GET, "/admin/tenants/eve").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(
        !client.has_img(&SPIN.image_id_hex()).await.unwrap(),
        "mismatched upload stored nothing"
    );
    let res = s
        .user(&key, Method::PUT, &format!("/receipts/upload/{receipt_slot}"))
        .body(Vec::<u8>::new())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "the receipt slot is still free");
    proving.stop(&client).await.unwrap();
    s.shutdown().await;
}
