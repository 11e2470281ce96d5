//! A real Tiffin API server for tests: SQLite TaskDB, local stores, in-process agents, bound to
//! 127.0.0.1:0 — the same `Server` and agent `Crew` `tiffin up` runs. Clients are the unmodified `bonsai-sdk`
//! and plain HTTP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bonsai_sdk::non_blocking::{Client, SessionId};
use bonsai_sdk::responses::SessionStatusRes;
use serde_json::{Value, json};
use tiffin_api::server::Server;
use tiffin_api::{ApiConfig, AppState, TenantStore, hash_key};
use tiffin_storage::{StoreConfig, Stores};
use tiffin_taskdb::{Config, SqliteTaskDb, TaskDb};
use tiffin_workflow::handlers::Context;
use tiffin_workflow::{Cluster, Crew, Roster};

pub const ADMIN_KEY: &str = "test-admin-key";
pub const RISC0_VERSION: &str = "3.1.0-rc.1";

/// Which agents run in the server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Agents {
    /// Executor (+ aux, snark) and one prover: sessions run to the end.
    Full,
    /// Executor (+ aux, snark) only: execute-only sessions finish, proving sessions stay
    /// RUNNING at `ProveSegments: 0/N` forever (a session that is cheap to keep running).
    ExecOnly,
}

pub struct TestServer {
    pub server: Server,
    /// The server's TaskDB, for tests that play an agent themselves.
    pub db: Arc<dyn TaskDb>,
    crew: Crew,
    pub url: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub async fn start(agents: Agents, tweak: impl FnOnce(&mut ApiConfig)) -> TestServer {
    start_with_stores_in(None, agents, tweak).await
}

/// [`start`], with the stores (hot and cold) under `stores_dir` instead of the server's own
/// temporary directory (which keeps the databases).
pub async fn start_with_stores_in(
    stores_dir: Option<&std::path::Path>,
    agents: Agents,
    tweak: impl FnOnce(&mut ApiConfig),
) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("taskdb.sqlite");
    let db: Arc<dyn TaskDb> =
        Arc::new(SqliteTaskDb::open(&sqlite, Config::default()).await.unwrap());
    let stores: Stores = StoreConfig::new(stores_dir.unwrap_or(dir.path())).open().await.unwrap();
    let tenants = TenantStore::sqlite(&sqlite).await.unwrap();
    let mut cfg = ApiConfig {
        admin_key_hash: Some(hash_key(ADMIN_KEY)),
        po2: 16,
        charge_period: Duration::from_millis(200),
        ..ApiConfig::default()
    };
    tweak(&mut cfg);
    let ctx = Context::new(db.clone(), stores.clone());
    let state = AppState::new(Cluster::new(db.clone(), stores), tenants, cfg);
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::start(addr, state).await.unwrap();
    let provers = usize::from(agents == Agents::Full);
    let roster = Roster::new("api-test", provers).with_snark();
    let crew = Crew::spawn(
        &ctx,
        roster.agents(|_, c| {
            c.heartbeat = Duration::from_millis(500);
            c.housekeeping = Duration::from_millis(500);
            c.shutdown_grace = Duration::from_secs(1);
        }),
    );
    let url = server.url();
    TestServer { server, db, crew, url, http: reqwest::Client::new(), _dir: dir }
}

impl TestServer {
    /// Stops the server and its agents, and waits for both.
    pub async fn shutdown(self) {
        let (_, agents) = tokio::join!(self.server.shutdown(), self.crew.stop());
        agents.unwrap();
    }

    /// Creates a tenant through the admin API and returns its first key.
    pub async fn tenant(&self, name: &str, settings: Value) -> String {
        let mut body = settings;
        body["name"] = json!(name);
        let res = self
            .http
            .post(format!("{}/admin/tenants", self.url))
            .header("x-admin-key", ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let v: Value = res.json().await.unwrap();
        v["key"].as_str().unwrap().to_string()
    }

    /// The unmodified Bonsai client for a key.
    pub fn client(&self, key: &str) -> Client {
        Client::from_parts(self.url.clone(), key.to_string(), RISC0_VERSION).unwrap()
    }

    /// An admin request.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url)).header("x-admin-key", ADMIN_KEY)
    }

    /// A tenant request.
    pub fn user(&self, key: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url)).header("x-api-key", key)
    }
}

/// Polls a session until it leaves RUNNING, returning the final status and every `state`
/// seen on the way.
pub async fn wait(
    client: &Client,
    session: &SessionId,
    timeout: Duration,
) -> (SessionStatusRes, Vec<String>) {
    let start = Instant::now();
    let mut states = Vec::new();
    loop {
        let s = session.status(client).await.unwrap();
        if s.status != "RUNNING" {
            return (s, states);
        }
        if let Some(st) = &s.state
            && states.last() != Some(st)
        {
            states.push(st.clone());
        }
        assert!(
            start.elapsed() < timeout,
            "session {} still RUNNING after {timeout:?}: {states:?}",
            session.uuid
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls until the session's `state` equals `want`.
pub async fn wait_state(client: &Client, session: &SessionId, want: &str) {
    let start = Instant::now();
    loop {
        let s = session.status(client).await.unwrap();
        if s.state.as_deref() == Some(want) {
            return;
        }
        assert_eq!(s.status, "RUNNING", "session ended before reaching {want}: {:?}", s.error_msg);
        assert!(start.elapsed() < Duration::from_secs(60), "never reached {want}: {:?}", s.state);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
