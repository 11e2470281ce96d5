//! Partitions: the cluster on test hosts in network namespaces (`scripts/hosts-up`: PostgreSQL,
//! Redis and S3 on `db`, `tiffin api` on `api`, an executor on h1 and a prover on each of h1-h3)
//! while a link is cut and healed (`scripts/hosts-link`: a veth taken down, or nftables drops in
//! a host's namespace). Both sides of a cut stay alive, unlike a killed process: a partitioned
//! agent proves on and tries to report, late. Each scenario reports like the others (jobs lost,
//! tasks done twice, late results refused, recovery) and skips, saying why, where network
//! namespaces are not available (not root, no `ip netns`).

use std::ops::Deref;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tiffin_taskdb::TaskState;

use crate::common::hosts::Hosts;
use crate::rig::{Report, Watch};

/// Hosts with the chaos suite's agent settings (6 s leases, 1 s heartbeats and housekeeping).
pub struct Net {
    pub hosts: Hosts,
    watch: Watch,
}

impl Deref for Net {
    type Target = Watch;
    fn deref(&self) -> &Watch {
        &self.watch
    }
}

impl Net {
    /// Three agent hosts, or `None` (printed why) where namespaces are unavailable.
    pub async fn start() -> Option<Self> {
        let settings = [
            ("TIFFIN_LEASE_SECS", "6"),
            ("TIFFIN_HEARTBEAT_SECS", "1"),
            ("TIFFIN_HOUSEKEEPING_SECS", "1"),
        ];
        let hosts = Hosts::up_or_skip(3, &settings)?;
        let watch = Watch { c: hosts.cluster().await, logs: hosts.dir.join("logs") };
        Some(Self { hosts, watch })
    }

    fn link(&self, args: &[&str]) {
        self.hosts.link(args);
    }
}

/// Scenario 1 (the suite's): an agent host cut from the database host while it proves. Its
/// lease expires and the housekeeper on another host requeues the task; the link heals while
/// the cut agent still proves, and its late result is refused (its heartbeat or completion
/// learns that the lease moved on); the task is done once, by whoever claims it next.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_host_cut_from_the_database_mid_proof() {
    let Some(net) = Net::start().await else { return };
    let jobs = net.submit(1).await;
    let task = net.leased(jobs[0], "prove", "prove-h2").await;
    let fault = net.fault_on(jobs[0], &task);
    net.link(&["cut", "h2"]);
    let deadline = Instant::now() + crate::rig::DEADLINE;
    loop {
        match net.task(jobs[0], &task).await {
            Some((TaskState::Leased, Some(a))) if a.starts_with("prove-h2") => {}
            Some(_) => break, // requeued (or already taken elsewhere)
            None => {}
        }
        assert!(Instant::now() < deadline, "{task} was never requeued");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    net.link(&["heal", "h2"]);
    let scenario = "agent host cut from the database host mid-proof, healed once its lease expired";
    // TCP retransmits back off while the link is down: the cut agent may take a while to
    // send again after the heal.
    let refused = Instant::now() + Duration::from_secs(120);
    while net.refusals() == 0 {
        assert!(Instant::now() < refused, "the late result was never refused");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let report = net.report(scenario, &jobs, fault).await;
    Report { refused: net.refusals(), ..report }.check();
}

/// The API host cut from the database host for 40 s while a job proves: requests that need
/// the database (a tenant's quotas: the tenant tables; a job, with the admin key: the task
/// database) are answered 503 with a code (`TIFFIN-API-092`, `-090`) once the connection pool
/// gives up on the silent database, the process lives on, and it serves again after the heal
/// (recovery: from the heal to the first 200 on both); the job, on agents the cut does not
/// touch, proves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn the_api_cut_from_the_database() {
    let Some(net) = Net::start().await else { return };
    let url = net.hosts.var("TIFFIN_API_URL").to_string();
    let admin = net.hosts.secret("TIFFIN_ADMIN_KEY_FILE");
    let http = net.hosts.http(Duration::from_secs(60));
    let res = http
        .post(format!("{url}/admin/tenants"))
        .header("x-admin-key", &admin)
        .json(&json!({ "name": "partition" }))
        .send()
        .await
        .unwrap();
    let key = res.json::<Value>().await.unwrap()["key"].as_str().unwrap().to_string();
    let jobs = net.submit(1).await;
    net.leased(jobs[0], "prove", "prove").await;
    let quotas = || http.get(format!("{url}/user/quotas")).header("x-api-key", &key).send();
    let job = || http.get(format!("{url}/admin/jobs/{}", jobs[0])).header("x-admin-key", &admin);
    let answer = |res: reqwest::Result<reqwest::Response>| async move {
        let res = res.expect("the API answers while cut");
        (res.status(), res.text().await.unwrap_or_default())
    };
    net.link(&["block", "api", "db"]);
    let cut = Instant::now();
    let mut answers = Vec::new();
    while cut.elapsed() < Duration::from_secs(40) {
        let asked = Instant::now();
        let (q, j) = tokio::join!(quotas(), job().send());
        answers.extend([answer(q).await, answer(j).await]);
        let took = asked.elapsed().as_secs_f64();
        let last: Vec<_> = answers
            .iter()
            .rev()
            .take(2)
            .map(|(c, b)| (c.as_u16(), b.chars().take(60).collect::<String>()))
            .collect();
        println!("while cut: {last:?} after {took:.1} s");
    }
    for (code, body) in &answers {
        let coded = *code == StatusCode::SERVICE_UNAVAILABLE && body.contains("TIFFIN-API-");
        assert!(coded || *code == StatusCode::OK, "{code} {body}");
    }
    let unavailable = answers.iter().filter(|(c, _)| *c == StatusCode::SERVICE_UNAVAILABLE);
    assert!(unavailable.count() >= 2, "503s while cut: {answers:?}");
    net.link(&["unblock", "api"]);
    let fault = net.fault(&jobs).await;
    let healed = Instant::now();
    loop {
        let (q, j) = tokio::join!(quotas(), job().send());
        let ok = |r: &reqwest::Result<reqwest::Response>| {
            r.as_ref().is_ok_and(|r| r.status() == StatusCode::OK)
        };
        if ok(&q) && ok(&j) {
            break;
        }
        assert!(healed.elapsed() < Duration::from_secs(120), "the API never served again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let back = healed.elapsed();
    let scenario = "tiffin api cut from the database host for 40 s, then healed";
    let report = net.report(scenario, &jobs, fault).await;
    assert!(crate::rig::alive(net.hosts.pid("api")), "the API process lives on");
    Report { recovery: back, ..report }.check();
}

/// A prover cut from Redis and S3 (PostgreSQL still reachable, so its lease stays renewed)
/// for 20 s while it proves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn an_agent_cut_from_redis_and_s3_mid_proof() {
    let Some(net) = Net::start().await else { return };
    let jobs = net.submit(2).await;
    let task = net.leased(jobs[0], "prove", "prove-h2").await;
    let fault = net.fault_on(jobs[0], &task);
    net.link(&["block", "h2", "db", "6379", "9000"]);
    tokio::time::sleep(Duration::from_secs(20)).await;
    net.link(&["unblock", "h2"]);
    let scenario = "agent cut from Redis and S3 for 20 s mid-proof (PostgreSQL reachable)";
    net.report(scenario, &jobs, fault).await.check();
}

/// The database host (PostgreSQL, Redis, S3) cut from every other host for 15 s, longer than
/// a lease: every lease in flight expires. Recovery: from the heal to the next task completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn the_database_host_cut_from_everyone_past_a_lease() {
    let Some(net) = Net::start().await else { return };
    let jobs = net.submit(2).await;
    net.leased(jobs[0], "prove", "prove").await;
    net.link(&["cut", "db"]);
    tokio::time::sleep(Duration::from_secs(15)).await;
    net.link(&["heal", "db"]);
    let fault = net.fault(&jobs).await;
    let scenario = "database host cut from everyone for 15 s (leases 6 s)";
    net.report(scenario, &jobs, fault).await.check();
}

/// A flapping link: a prover host's link cut for 3 s and up for 3 s, ten times in a minute,
/// from mid-proof on. Recovery: from the last heal to the next task completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "chaos suite only (scripts/chaos): the test budget runs the cheaper scenarios"]
async fn a_flapping_link() {
    let Some(net) = Net::start().await else { return };
    let jobs = net.submit(2).await;
    net.leased(jobs[0], "prove", "prove-h2").await;
    for _ in 0..10 {
        net.link(&["cut", "h2"]);
        tokio::time::sleep(Duration::from_secs(3)).await;
        net.link(&["heal", "h2"]);
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let fault = net.fault(&jobs).await;
    let scenario = "flapping agent host link: 10 cuts of 3 s in a minute, from mid-proof";
    net.report(scenario, &jobs, fault).await.check();
    for job in &jobs {
        let tasks = net.c.db.tasks(*job).await.unwrap();
        assert!(tasks.iter().all(|t| t.state == TaskState::Done), "{tasks:?}");
    }
}
