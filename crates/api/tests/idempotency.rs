//! `Idempotency-Key` on `POST /sessions/create`: a retried create gets the first request's
//! session, a different body under the same key is refused with a code, keys are per tenant,
//! and a create that failed frees its key. Execute-only sessions: no proof.

mod common;

use common::{Agents, TestServer, start};
use reqwest::Method;
use serde_json::{Value, json};
use tiffin_guests::ECHO;

async fn create(s: &TestServer, key: &str, idem: &str, body: &str) -> (u16, Value) {
    let res = s
        .user(key, Method::POST, "/sessions/create")
        .header("idempotency-key", idem)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn jobs_of(s: &TestServer, tenant: &str) -> usize {
    let res = s.admin(Method::GET, &format!("/admin/jobs?tenant={tenant}")).send().await.unwrap();
    res.json::<Vec<Value>>().await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_names_one_session_per_tenant_and_body() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let mut inputs = Vec::new();
    let mut keys = Vec::new();
    for tenant in ["ida", "ivo"] {
        let key = s.tenant(tenant, json!({})).await;
        let client = s.client(&key);
        client.upload_img(&ECHO.image_id_hex(), ECHO.program.to_vec()).await.unwrap();
        inputs.push(client.upload_input(b"once".to_vec()).await.unwrap());
        keys.push(key);
    }
    let img = ECHO.image_id_hex();
    let body =
        |input: &str| json!({ "img": img, "input": input, "execute_only": true }).to_string();
    let (status, first) = create(&s, &keys[0], "order-1", &body(&inputs[0])).await;
    assert_eq!(status, 200, "{first}");
    let uuid = first["uuid"].as_str().unwrap().to_string();

    // The retry, spelled differently (key order, spaces), gets the same session.
    let respelled =
        format!("{{ \"execute_only\": true, \"input\": \"{}\", \"img\": \"{img}\" }}", inputs[0]);
    let (status, again) = create(&s, &keys[0], "order-1", &respelled).await;
    assert_eq!((status, again["uuid"].as_str()), (200, Some(uuid.as_str())), "{again}");
    assert_eq!(jobs_of(&s, "ida").await, 1, "one session, not two");

    // Another body under the same key is refused and creates nothing.
    let other = json!({ "img": img, "input": inputs[0], "execute_only": false }).to_string();
    let (status, err) = create(&s, &keys[0], "order-1", &other).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("TIFFIN-API-034")), "{err}");
    assert_eq!(jobs_of(&s, "ida").await, 1);

    // Keys are per tenant: another tenant's "order-1" is its own.
    let (status, theirs) = create(&s, &keys[1], "order-1", &body(&inputs[1])).await;
    assert_eq!(status, 200, "{theirs}");
    assert_ne!(theirs["uuid"], first["uuid"]);

    // A create that failed frees its key for the retry.
    let missing = body(&uuid::Uuid::new_v4().to_string());
    let (status, err) = create(&s, &keys[0], "order-2", &missing).await;
    assert_eq!((status, err["code"].as_str()), (404, Some("TIFFIN-API-020")), "{err}");
    let (status, made) = create(&s, &keys[0], "order-2", &body(&inputs[0])).await;
    assert_eq!(status, 200, "{made}");
    assert_ne!(made["uuid"], first["uuid"]);

    // A malformed key is refused before anything is read.
    let (status, err) = create(&s, &keys[0], "has space", &body(&inputs[0])).await;
    assert_eq!((status, err["code"].as_str()), (400, Some("TIFFIN-API-026")), "{err}");
    assert_eq!(jobs_of(&s, "ida").await, 2);
    s.shutdown().await;
}
