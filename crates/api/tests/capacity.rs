//! The cluster as operators size it. `GET /admin/capacity`: the cluster measures itself from
//! the tasks it finished (a test agent registers as a prover with two slots and finishes prove
//! tasks of known cycles through the TaskDB, no proof). `GET /admin/pins`: who holds which
//! agents, and the reservations' idle behaviour set through the admin API.

mod common;

use std::time::{Duration, Instant};

use common::{Agents, start};
use reqwest::Method;
use serde_json::{Value, json};
use tiffin_taskdb::{Kind, NewJob, NewTask};
use tiffin_workflow::AgentProfile;

const MI: i64 = 1 << 20;

async fn capacity(s: &common::TestServer, query: &str) -> Value {
    let res = s.admin(Method::GET, &format!("/admin/capacity{query}")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn capacity_measures_finished_cycles_and_estimates_a_new_job() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let before = capacity(&s, "?cycles=4194304").await;
    assert_eq!(before["window_secs"], 600);
    let prove = &before["kinds"]["prove"];
    assert_eq!(
        (prove["agents_alive"].as_u64(), prove["tasks_finished"].as_i64()),
        (Some(0), Some(0))
    );
    assert!(before["estimate"].is_null(), "no prover, no speed: no promise: {before}");

    // A prover with two slots finishes two 1 Mi-cycle tasks of a succinct job in ~0.2 s each.
    let profile = AgentProfile {
        host: "gpu-1".into(),
        version: "test".into(),
        cores: 8,
        memory_bytes: 1 << 34,
        gpu: "test".into(),
        gpus: 1,
        max_po2: 20,
        concurrency: 2,
        heartbeat_secs: 5.0,
    };
    let info = serde_json::to_value(&profile).unwrap();
    s.db.agent_seen("gpu-1", &[Kind::new("prove")], &info).await.unwrap();
    let task = |key: &str| NewTask::new(key, "prove", json!(null)).work(MI);
    s.tenant("flood", json!({})).await;
    let res = s.admin(Method::GET, "/admin/tenants/flood").send().await.unwrap();
    let flood = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let job = NewJob::new(flood, vec![task("a"), task("b"), task("c")])
        .meta(json!({ "receipt_kind": "succinct" }));
    s.db.create_job(job).await.unwrap();
    let started = Instant::now();
    let leases =
        s.db.claim_batch("gpu-1/0", &[Kind::new("prove")], Duration::from_secs(60), 2)
            .await
            .unwrap();
    assert_eq!(leases.len(), 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for lease in leases {
        s.db.complete(&lease, json!(null)).await.unwrap();
    }
    let took = started.elapsed().as_secs_f64();

    let report = capacity(&s, "?cycles=4194304&window_secs=60").await;
    assert_eq!(report["window_secs"], 60);
    let prove = &report["kinds"]["prove"];
    assert_eq!((prove["agents_alive"].as_u64(), prove["slots_alive"].as_u64()), (Some(1), Some(2)));
    assert_eq!((prove["queued"].as_i64(), prove["cycles_waiting"].as_i64()), (Some(1), Some(MI)));
    assert_eq!(prove["tenants_busy"], 1, "{prove}");
    assert_eq!(
        (prove["tasks_finished"].as_i64(), prove["cycles_proven"].as_i64()),
        (Some(2), Some(2 * MI))
    );
    let per_sec = prove["cycles_per_sec"].as_f64().unwrap();
    assert!((per_sec - 2.0 * MI as f64 / 60.0).abs() < 1.0, "over the window: {per_sec}");
    // Each task took ~0.2 s, so one slot proves about 1 Mi / 0.2 s.
    let slot = prove["slot_cycles_per_sec"].as_f64().unwrap();
    assert!(slot <= MI as f64 / 0.19 && slot >= MI as f64 / took, "{slot} ({took} s)");
    let succinct = &prove["receipt_kinds"]["succinct"];
    assert_eq!(succinct["tasks_finished"], 2);
    assert_eq!(prove["receipt_kinds"].as_object().unwrap().len(), 1, "{prove}");

    // Beside the one busy tenant a new job gets half the two slots: one slot's speed.
    let e = &report["estimate"];
    assert_eq!((e["cycles"].as_u64(), e["share_slots"].as_f64()), (Some(4 * MI as u64), Some(1.0)));
    let rate = e["cycles_per_sec"].as_f64().unwrap();
    assert!((rate - slot).abs() < 1e-6, "{e}");
    assert_eq!(e["khz"].as_u64().unwrap(), (rate / 1000.0) as u64);
    let secs = e["finish_secs"].as_f64().unwrap();
    assert!((secs - 4.0 * MI as f64 / rate).abs() < 1e-6, "{e}");
    assert!(e["behind_queue_secs"].as_f64().unwrap() > 0.0, "{e}");
    assert!(e["finish_at"].as_str().unwrap() > report["at"].as_str().unwrap(), "{e}");
    // Asked for the busy tenant's own next job, its work does not compete: both slots.
    let own = capacity(&s, "?cycles=4194304&window_secs=60&tenant=flood").await;
    assert_eq!(own["estimate"]["share_slots"], 2.0, "{own}");
    let res = s.admin(Method::GET, "/admin/capacity?cycles=1&tenant=nobody").send().await.unwrap();
    assert_eq!(res.status(), 404);

    // The gauges say the same.
    let metrics =
        s.http.get(format!("{}/metrics", s.url)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tiffin_slot_cycles_per_second{kind=\"prove\"}"), "{metrics}");
    assert!(metrics.contains("tiffin_cycles_per_second{kind=\"prove\",receipt_kind=\"succinct\"}"));
    assert!(metrics.contains("tiffin_tenants_busy{kind=\"prove\"} 1"));

    // Bad numbers are refused with a code; the route is the admin's.
    for bad in ["?cycles=0", "?cycles=lots", "?window_secs=0", "?window_secs=86401"] {
        let res = s.admin(Method::GET, &format!("/admin/capacity{bad}")).send().await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        assert!(res.text().await.unwrap().contains("TIFFIN-API-062"), "{bad}");
    }
    let anon = s.http.get(format!("{}/admin/capacity", s.url)).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pins_list_who_holds_which_agents_and_idle_is_set_per_kind() {
    let s = start(Agents::ExecOnly, |_| {}).await;
    let settings =
        json!({ "reservations": { "prove": 1 }, "reservation_idle": { "prove": "wait" } });
    s.tenant("resa", settings).await;
    let pins = |s: &common::TestServer| {
        let req = s.admin(Method::GET, "/admin/pins");
        async move { req.send().await.unwrap().json::<Vec<Value>>().await.unwrap() }
    };
    assert!(pins(&s).await.is_empty(), "no live prover, no pin: {:?}", pins(&s).await);
    s.db.agent_seen("gpu-a", &[Kind::new("prove")], &json!({})).await.unwrap();
    s.db.agent_seen("gpu-b", &[Kind::new("prove")], &json!({})).await.unwrap();
    let got = pins(&s).await;
    assert_eq!(got.len(), 1, "one agent for a reservation of one: {got:?}");
    assert_eq!(
        (got[0]["agent"].as_str(), got[0]["tenant"].as_str(), got[0]["kind"].as_str()),
        (Some("gpu-a"), Some("resa"), Some("prove")),
        "the first agent to report, by the tenant's name"
    );
    assert_eq!(got[0]["idle"], "wait");

    // The tenant shows it; changing the priority alone keeps the reservation and its idle.
    let patch = |body: Value| {
        let req = s.admin(Method::PATCH, "/admin/tenants/resa").json(&body);
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, view) = patch(json!({ "priority": 2.0 })).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["reservations"]["prove"].as_i64(), view["reservation_idle"]["prove"].as_str()),
        (Some(1), Some("wait"))
    );
    let (_, view) = patch(json!({ "reservation_idle": { "prove": "serve-others" } })).await;
    assert_eq!(view["reservation_idle"]["prove"], "serve-others", "{view}");
    assert_eq!(view["reservations"]["prove"], 1, "{view}");
    assert_eq!(pins(&s).await[0]["idle"], "serve-others");

    // Nonsense is refused with a code.
    let (status, err) = patch(json!({ "reservation_idle": { "prove": "sometimes" } })).await;
    assert_eq!((status, err["code"].as_str()), (400, Some("TIFFIN-API-011")), "{err}");
    let (status, err) = patch(json!({ "reservation_idle": { "gpu": "wait" } })).await;
    assert_eq!((status, err["code"].as_str()), (400, Some("TIFFIN-API-062")), "{err}");
    s.shutdown().await;
}
