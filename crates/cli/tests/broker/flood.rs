//! A second tenant floods the cluster with long spin sessions (issue 28's hostile neighbour):
//! queued before one of the broker's orders, so the broker's proof must get its share of the
//! one prover while the flood still waits, not after the flood drains. The flood's sessions
//! are composite (prove tasks only): a succinct one's lifts and joins take minutes each on a
//! CPU prover, which the suite cannot afford to wait for.

use std::path::Path;
use std::time::{Duration, Instant};

use bonsai_sdk::non_blocking::Client;
use serde_json::{Value, json};
use tiffin_guests::{SPIN, spin_input};

pub struct Flood {
    url: String,
    admin_key: String,
    http: reqwest::Client,
    pub sessions: Vec<String>,
}

impl Flood {
    /// The admin side alone (no tenant, no sessions): for reading jobs.
    pub fn admin_only(url: &str, data_dir: &Path) -> Flood {
        let admin_key = std::fs::read_to_string(data_dir.join("admin.key")).unwrap();
        Flood {
            url: url.to_string(),
            admin_key: admin_key.trim().to_string(),
            http: reqwest::Client::new(),
            sessions: Vec::new(),
        }
    }

    /// Creates tenant `flood` and starts `sessions` composite spin sessions of `cycles` each,
    /// returning once their prove tasks are queued.
    pub async fn start(url: &str, data_dir: &Path, sessions: usize, cycles: u32) -> Flood {
        let mut flood = Flood::admin_only(url, data_dir);
        let created =
            flood.admin(reqwest::Method::POST, "/admin/tenants", json!({ "name": "flood" }));
        let key = created.await["key"].as_str().expect("the flood tenant's key").to_string();
        let client = Client::from_parts(url.to_string(), key.clone(), "3.1.0-rc.1").unwrap();
        client.upload_img(&SPIN.image_id_hex(), SPIN.program.to_vec()).await.unwrap();
        for _ in 0..sessions {
            let input = client.upload_input(spin_input(cycles)).await.unwrap();
            let body =
                json!({ "img": SPIN.image_id_hex(), "input": input, "receipt_kind": "composite" });
            let res = flood.http.post(format!("{url}/sessions/create")).header("x-api-key", &key);
            let created: Value = res.json(&body).send().await.unwrap().json().await.unwrap();
            flood.sessions.push(created["uuid"].as_str().expect("a session").to_string());
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while flood.counts().await.1 == 0 {
            assert!(Instant::now() < deadline, "the flood never queued a prove task");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        flood
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let req = self.http.request(method, format!("{}{path}", self.url));
        let res = req.header("x-admin-key", &self.admin_key).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    /// (prove tasks done, prove tasks not done yet) over the flood's sessions.
    pub async fn counts(&self) -> (i64, i64) {
        let (mut done, mut left) = (0, 0);
        for s in &self.sessions {
            let job = self.job(s).await;
            for c in job["counts"].as_array().cloned().unwrap_or_default() {
                if c["kind"] != "prove" {
                    continue;
                }
                let n = c["count"].as_i64().unwrap_or(0);
                match c["state"].as_str() {
                    Some("done") => done += n,
                    Some("ready" | "leased" | "pending") => left += n,
                    _ => {}
                }
            }
        }
        (done, left)
    }

    /// The job the cluster runs for a session (its meta carries the session's deadline).
    pub async fn job(&self, session: &str) -> Value {
        self.admin(reqwest::Method::GET, &format!("/admin/jobs/{session}"), Value::Null).await
    }

    /// Cancels the flood (its proofs stop at once).
    pub async fn stop(&self) {
        for s in &self.sessions {
            self.admin(reqwest::Method::POST, &format!("/admin/jobs/{s}/cancel"), Value::Null)
                .await;
        }
    }
}
