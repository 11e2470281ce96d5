//! `tiffin broker` as an operator runs it: a real anvil with our contracts, `tiffin up` as the
//! cluster, the verifier service, and two brokers with different prices. Requestors submit a
//! mix; the test checks which broker locks what, every skip code, every fulfilment on-chain
//! and the money, then the faults: a broker killed mid-proof and restarted, a lock whose
//! transaction timed out but was mined, a two-phase shutdown, and a locker that vanished so
//! the other broker wins the race for its collateral. A second tenant floods the cluster with
//! a long job before one order, and the broker (planning with the cluster's measured capacity)
//! still proves it while the flood waits.

mod common;
#[path = "broker/flood.rs"]
mod flood;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use common::{Proc, Up, tiffin, up};
use serde_json::json;
use tiffin_broker::db::Db;
use tiffin_broker::order::{Order, OrderState};
use tiffin_guests::{ECHO, SET_BUILDER};
use tiffin_market::request::request_id;
use tiffin_market::{DevChain, Input, Offer, Predicate, ProofRequest, RequestStatus};

const PROVER_A: usize = 3;
const PROVER_B: usize = 4;
const REQUESTOR: usize = 2;
const DENIED: usize = 5;
const PRIORITY: usize = 6;
const TOKEN: u64 = 1_000_000_000_000_000_000;
const ECHO_FILE: &str = "echo.bin";

struct World {
    rt: tokio::runtime::Runtime,
    chain: DevChain,
    dir: tempfile::TempDir,
    up: Up,
    _verifier: Proc,
    verifier_url: String,
    echo_url: String,
}

impl World {
    fn start() -> World {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let chain = rt
            .block_on(DevChain::start(B256::from(SET_BUILDER.image_id_bytes())))
            .expect("anvil starts (run scripts/setup)");
        let dir = tempfile::tempdir().unwrap();
        let up = up(&dir.path().join("cluster"), 14, 1);
        let key = chain.signer(1).unwrap().to_bytes().to_string();
        let mut child = tiffin(&["market", "verifier", "--listen", "127.0.0.1:0"])
            .env("TIFFIN_ATTESTOR_KEY", key)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let verifier_url = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("verifier listening on ").map(str::to_string))
            .expect("the verifier prints its URL");
        let echo = dir.path().join(ECHO_FILE);
        std::fs::write(&echo, ECHO.program).unwrap();
        let echo_url = format!("file://{}", echo.display());
        let world = World { rt, chain, dir, up, _verifier: Proc(child), verifier_url, echo_url };
        world.warm_cluster();
        world
    }

    /// Runs echo once on the cluster, as an earlier customer would have: the brokers find the
    /// program there and need not fetch it (the tests cap downloads at 48 bytes).
    fn warm_cluster(&self) {
        let mut cmd =
            tiffin(&["session", "--url", &self.up.url, "--api-key", &self.up.key, "submit"]);
        cmd.args(["--sample", "echo", "--input-hex", "00", "--execute-only", "--wait"]);
        common::ok(cmd);
    }

    /// The echo program as a file (the requests' image URL).
    fn echo_path(&self) -> PathBuf {
        self.dir.path().join(ECHO_FILE)
    }

    fn now(&self) -> u64 {
        self.rt.block_on(self.chain.now()).unwrap()
    }

    /// Mints `tokens` collateral tokens to prover `index` and deposits them in the market.
    fn fund_collateral(&self, index: usize, tokens: u64) {
        self.rt.block_on(async {
            let amount = U256::from(tokens) * U256::from(TOKEN);
            let deployer = self.chain.client(0).await.unwrap();
            deployer.mint_collateral(self.chain.address(index), amount).await.unwrap();
            self.chain.client(index).await.unwrap().deposit_collateral(amount).await.unwrap();
        });
    }

    fn collateral(&self, index: usize) -> U256 {
        self.rt.block_on(async {
            let c = self.chain.client(index).await.unwrap();
            c.collateral_balance_of(self.chain.address(index)).await.unwrap()
        })
    }

    fn market_balance(&self, index: usize) -> U256 {
        self.rt.block_on(async {
            let c = self.chain.client(index).await.unwrap();
            c.balance_of(self.chain.address(index)).await.unwrap()
        })
    }

    /// The transaction that fulfilled request `id`.
    fn fulfilment_tx(&self, id: U256) -> B256 {
        self.rt.block_on(async {
            let c = self.chain.client(0).await.unwrap();
            let events = c
                .market()
                .event_filter::<tiffin_market::bindings::ProofMarket::RequestFulfilled>()
                .topic1(id)
                .from_block(0)
                .query()
                .await
                .unwrap();
            assert_eq!(events.len(), 1, "{id:#x} fulfilled once");
            events[0].1.transaction_hash.unwrap()
        })
    }

    /// The total `account` withdrew from its market account (its Withdrawal events).
    fn withdrawn(&self, index: usize) -> U256 {
        let account = self.chain.address(index);
        self.rt.block_on(async {
            let c = self.chain.client(0).await.unwrap();
            let events = c
                .market()
                .event_filter::<tiffin_market::bindings::ProofMarket::Withdrawal>()
                .topic1(account.into_word())
                .from_block(0)
                .query()
                .await
                .unwrap();
            events.iter().fold(U256::ZERO, |sum, (e, _)| sum + e.amount)
        })
    }

    fn status(&self, id: U256) -> RequestStatus {
        self.rt.block_on(async { self.chain.client(0).await.unwrap().status(id).await.unwrap() })
    }

    /// Submits an echo request of `input` from dev account `who` (request index `index`).
    fn submit(
        &self,
        who: usize,
        index: u32,
        input: &[u8],
        max_price_wei: u64,
        lock_secs: u32,
    ) -> U256 {
        self.submit_from(who, index, input, max_price_wei, lock_secs, self.now())
    }

    /// Submits an echo request whose bidding starts at `bidding_start` (chain seconds).
    fn submit_from(
        &self,
        who: usize,
        index: u32,
        input: &[u8],
        max_price_wei: u64,
        lock_secs: u32,
        bidding_start: u64,
    ) -> U256 {
        let offer = Offer {
            minPrice: U256::from(max_price_wei / 2),
            maxPrice: U256::from(max_price_wei),
            biddingStart: bidding_start,
            rampUpPeriod: 0,
            lockTimeout: lock_secs,
            timeout: lock_secs + 600,
            lockCollateral: U256::from(10) * U256::from(TOKEN),
        };
        let id = request_id(self.chain.address(who), index);
        let request = ProofRequest::new(
            id,
            B256::from(ECHO.image_id_bytes()),
            Predicate::journal_equals(input),
            &self.echo_url,
            Input::inline(input.to_vec()),
            offer,
        );
        self.rt.block_on(async {
            let c = self.chain.client(who).await.unwrap();
            c.submit_request(&request, U256::from(max_price_wei)).await.unwrap();
        });
        id
    }

    /// `tiffin broker ARGS` for broker `name` (dev key `index`) with the chain's environment.
    fn broker_cmd(&self, name: &str, index: usize, args: &[&str]) -> Command {
        let cfg = self.dir.path().join(format!("{name}.toml"));
        let d = self.chain.deployment();
        let mut cmd = tiffin(&["broker", "--config", cfg.to_str().unwrap()]);
        cmd.args(args)
            .arg("--db")
            .arg(self.db_path(name))
            .env("RPC_URL", self.chain.rpc_url())
            .env("PRIVATE_KEY", self.chain.signer(index).unwrap().to_bytes().to_string())
            .env("TIFFIN_MARKET_ADDRESS", d.market.to_string())
            .env("TIFFIN_COLLATERAL_TOKEN_ADDRESS", d.collateral_token.to_string())
            .env("TIFFIN_VERIFIER_ADDRESS", d.verifier.to_string())
            .env("BONSAI_API_URL", &self.up.url)
            .env("BONSAI_API_KEY", &self.up.key)
            .env("TIFFIN_CAPACITY_KEY_FILE", self.dir.path().join("cluster").join("admin.key"))
            .env("TIFFIN_VERIFIER_URL", &self.verifier_url);
        cmd
    }

    /// Starts `tiffin broker` for dev key `index` with `config` (TOML), its database and log
    /// named after it.
    fn broker(&self, name: &str, index: usize, config: &str) -> Proc {
        self.broker_with(name, index, config, &[])
    }

    fn broker_with(&self, name: &str, index: usize, config: &str, args: &[&str]) -> Proc {
        std::fs::write(self.dir.path().join(format!("{name}.toml")), config).unwrap();
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let child = self
            .broker_cmd(name, index, args)
            .env("TIFFIN_LOG", "info,tiffin_broker=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tiffin broker");
        Proc(child)
    }

    fn db_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.db"))
    }

    /// The broker's orders by request id and kind (`0x…-lock` / `0x…-race`).
    fn orders(&self, name: &str) -> HashMap<String, Order> {
        let path = self.db_path(name);
        if !path.exists() {
            return HashMap::new();
        }
        self.rt.block_on(async {
            let db = Db::open(&path).await.unwrap();
            db.recent(1000).await.unwrap().into_iter().map(|o| (o.key(), o)).collect()
        })
    }

    fn order(&self, name: &str, id: U256, kind: &str) -> Option<Order> {
        self.orders(name).remove(&format!("{id:#x}-{kind}"))
    }

    /// Waits until broker `name`'s order for `id` satisfies `done`.
    fn wait_order(
        &self,
        name: &str,
        id: U256,
        kind: &str,
        what: &str,
        done: impl Fn(&Order) -> bool,
    ) -> Order {
        // Generous: the suite proves beside this test, on two cores.
        let deadline = Instant::now() + Duration::from_secs(420);
        loop {
            if let Some(o) = self.order(name, id, kind)
                && done(&o)
            {
                return o;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {id:#x} never {what}: {:?}\n{}",
                self.order(name, id, kind),
                self.log(name)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            .unwrap_or_default();
        text.lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn skip_code(&self, name: &str, id: U256) -> String {
        let o = self.wait_order(name, id, "lock", "skipped", |o| o.state == OrderState::Skipped);
        o.error.unwrap_or_default()
    }
}

fn config(min_mcycle_price: &str, extra_market: &str) -> String {
    format!(
        "[market]\nmin_mcycle_price = \"{min_mcycle_price}\"\nmin_deadline = 30\nevents_poll_ms = 200\n\
         peak_prove_khz = 10\n\
         lookback_blocks = 100\nmax_concurrent_proofs = 2\nmax_journal_bytes = 100\nmax_file_size = 48\n\
         {extra_market}\n\
         [prover]\nstatus_poll_ms = 200\nreceipt_kind = \"composite\"\nreaper_interval_secs = 5\n\
         reaper_grace_period_secs = 600\n\n\
         [batcher]\nbatch_poll_time_ms = 200\ntxn_timeout = 2\nblock_deadline_buffer_secs = 5\n"
    )
}

fn wait_exit(proc: &mut Proc, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if proc.0.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn signal(proc: &Proc, sig: &str) {
    let ok = Command::new("kill").args([sig, &proc.0.id().to_string()]).status().unwrap();
    assert!(ok.success());
}

#[test]
fn two_brokers_lock_what_pays_them_skip_the_rest_with_codes_and_survive_faults() {
    let w = World::start();
    w.fund_collateral(PROVER_A, 100);
    w.fund_collateral(PROVER_B, 100);
    let a_collateral = w.collateral(PROVER_A);
    let b_collateral = w.collateral(PROVER_B);
    let priority = w.chain.address(PRIORITY);
    let denied = w.chain.address(DENIED);
    let lists = format!(
        "priority_requestor_addresses = [\"{priority}\"]\ndeny_requestor_addresses = [\"{denied}\"]"
    );
    // A proves anything that covers its gas; B wants far more per cycle than anyone pays, but
    // races for any collateral reward.
    // A also withdraws each payment from its market account as it is paid, and batches two
    // proofs at a time; its first set-builder path names the wrong program (echo), so its
    // first batch cannot be aggregated and is fulfilled order by order.
    let batching = config("0.0000001 ETH", &lists) + "withdraw = true\nmin_batch_size = 2\n";
    let wrong_set_builder = format!("set_builder_guest_path = \"{}\"\n", w.echo_path().display());
    let mut a_config = batching.replace("\n[batcher]", &format!("{wrong_set_builder}\n[batcher]"));
    let b_config = config(
        "1000 ETH",
        "min_mcycle_price_collateral_token = \"0\"\ncollateral_balance_warn_threshold = \"1000\"",
    );
    let mut a = w.broker("a", PROVER_A, &a_config);
    let metrics = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap().to_string()
    };
    let _b = w.broker_with("b", PROVER_B, &b_config, &["--metrics-listen", &metrics]);

    let paid = w.submit(REQUESTOR, 1, b"paid", 10_000_000_000_000_000, 600);
    let cheap = w.submit(REQUESTOR, 2, b"cheap", 1_000, 600);
    let big_input = w.submit(REQUESTOR, 3, &[7u8; 64], 10_000_000_000_000_000, 600);
    let priority_big = w.submit(PRIORITY, 1, &[8u8; 64], 10_000_000_000_000_000, 600);
    let hurried = w.submit(REQUESTOR, 4, b"hurried", 10_000_000_000_000_000, 20);
    let from_denied = w.submit(DENIED, 1, b"denied", 10_000_000_000_000_000, 600);
    // Priority requestors skip max_file_size, not max_journal_bytes (echo's journal is its input).
    let long_journal = w.submit(PRIORITY, 2, &[9u8; 120], 10_000_000_000_000_000, 600);

    // A is killed (SIGKILL) while proving and restarted on the same database: the same
    // session is awaited, not proven again.
    let proving = w.wait_order("a", paid, "lock", "proving", |o| o.session_id.is_some());
    drop(a);
    a = w.broker("a", PROVER_A, &a_config);
    let done = w.wait_order("a", paid, "lock", "done", |o| o.state == OrderState::Done);
    assert_eq!(done.session_id, proving.session_id, "resumed, not re-proven");
    w.wait_order("a", priority_big, "lock", "done", |o| o.state == OrderState::Done);
    assert_eq!(w.status(paid), RequestStatus::Fulfilled);
    assert_eq!(w.status(priority_big), RequestStatus::Fulfilled);
    let log = std::fs::read_to_string(w.dir.path().join("a.log")).unwrap();
    assert!(log.contains("TIFFIN-BROKER-017"), "the wrong set-builder is refused:\n{log}");
    assert_ne!(w.fulfilment_tx(paid), w.fulfilment_tx(priority_big), "one by one");
    // From now on A aggregates with the bundled set-builder (its file is re-read).
    a_config = batching;
    std::fs::write(w.dir.path().join("a.toml"), &a_config).unwrap();

    // Every skip, with its code.
    for (id, code) in [
        (cheap, "S-007"),
        (big_input, "S-009"),
        (hurried, "S-002"),
        (from_denied, "S-003"),
        (long_journal, "S-013"),
    ] {
        let why = w.skip_code("a", id);
        assert!(why.starts_with(code), "{id:#x}: expected {code}, got {why}");
    }
    let why = w.skip_code("b", paid);
    assert!(why.starts_with("S-015"), "B finds it unprofitable: {why}");
    let why = w.skip_code("b", from_denied);
    assert!(why.starts_with("S-015"), "B has no deny list yet: {why}");

    // B's file is edited while it runs: the new deny list applies to the next request.
    let denying = b_config
        .replace("[prover]", &format!("deny_requestor_addresses = [\"{denied}\"]\n\n[prover]"));
    std::fs::write(w.dir.path().join("b.toml"), denying).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let denied_again = w.submit(DENIED, 2, b"denied again", 10_000_000_000_000_000, 600);
    let why = w.skip_code("b", denied_again);
    assert!(why.starts_with("S-003"), "B re-read its file: {why}");
    for id in [cheap, hurried, from_denied, long_journal] {
        let status = w.status(id);
        assert!(
            matches!(status, RequestStatus::Open | RequestStatus::Expired),
            "{id:#x}: {status:?}"
        );
    }

    // A lock whose transaction outlives txn_timeout but is mined later is proven, not dropped.
    w.rt.block_on(w.chain.set_automine(false)).unwrap();
    let slow_lock = w.submit_pending(REQUESTOR, 6, b"slow lock");
    w.wait_order("a", slow_lock, "lock", "locking", |o| o.state == OrderState::Locking);
    std::thread::sleep(Duration::from_secs(3));
    w.rt.block_on(w.chain.set_automine(true)).unwrap();
    w.mine();
    w.wait_order("a", slow_lock, "lock", "proved", |o| o.state == OrderState::Proved);

    // With TIFFIN_BROKER_FLOOD set (scripts/broker-flood; the suite leaves it out for time), a
    // second tenant floods the one prover with a long job (~12 po2-14 segments). Either way A
    // plans with the cluster's measured capacity from now on (no peak_prove_khz in its re-read
    // file; the flood's tenant halves the share a new job gets). The operator weighs its
    // broker's tenant 10: with equal weights the flood, served nothing lately, would take as
    // many claims as the broker's tenant had lately before the broker's next task.
    let flooding = Instant::now();
    let cluster_dir = w.dir.path().join("cluster");
    let flood = std::env::var_os("TIFFIN_BROKER_FLOOD").map(|_| {
        let flood = w.rt.block_on(flood::Flood::start(&w.up.url, &cluster_dir, 1, 200_000));
        let body = json!({ "priority": 10.0 });
        w.rt.block_on(flood.admin(reqwest::Method::PATCH, "/admin/tenants/default", body));
        flood
    });
    std::fs::write(w.dir.path().join("a.toml"), a_config.replace("peak_prove_khz = 10\n", ""))
        .unwrap();
    let by_capacity = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(w.dir.path().join("a.log")).unwrap().contains("cluster capacity")
    {
        assert!(Instant::now() < by_capacity, "A never read the capacity:\n{}", w.log("a"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let flood_done = flood.as_ref().map(|f| w.rt.block_on(f.counts()).0);

    // The slow lock's proof waits in the open batch for a second one. Two-phase shutdown:
    // SIGTERM while that second order proves; the broker exits only once both are fulfilled,
    // under one set-builder root, in one transaction.
    let last = w.submit(REQUESTOR, 7, b"last one", 10_000_000_000_000_000, 600);
    let proving = w.wait_order("a", last, "lock", "proving", |o| o.state == OrderState::Proving);
    assert_eq!(w.order("a", slow_lock, "lock").unwrap().state, OrderState::Proved);
    signal(&a, "-TERM");
    // Its proof is done while the flood still waits, and the flood progressed meanwhile. The
    // session was due by the lock deadline less the buffer (5 s), one txn_timeout (2 s) and a
    // set-builder proof at the cluster's speed.
    w.wait_order("a", last, "lock", "proved", |o| o.times.proved.is_some());
    let admin = flood::Flood::admin_only(&w.up.url, &cluster_dir);
    let job = w.rt.block_on(admin.job(proving.session_id.as_deref().unwrap()));
    let due = job["meta"]["deadline"].as_u64().expect("the session carries a deadline");
    assert!(due < proving.expiry - 7 && due > proving.expiry - 7 - 300, "{due} vs {proving:?}");
    if let (Some(flood), Some(flood_done)) = (flood, flood_done) {
        let (done, left) = w.rt.block_on(flood.counts());
        assert!(left > 0, "the order waited for the flood to drain ({done} proven)");
        assert!(done > flood_done, "the flood stood still: {flood_done} → {done} proven");
        w.rt.block_on(flood.stop());
    }
    eprintln!("the flood condition took {:?}", flooding.elapsed());
    assert!(
        wait_exit(&mut a, Duration::from_secs(420)),
        "A exits after its last order: {:?}\n{}",
        w.orders("a").values().filter(|o| o.state.is_committed()).collect::<Vec<_>>(),
        w.log("a")
    );
    for id in [slow_lock, last] {
        let o = w.order("a", id, "lock").unwrap();
        assert_eq!(o.state, OrderState::Done, "{o:?}");
        assert_eq!(w.status(id), RequestStatus::Fulfilled);
    }
    assert_eq!(w.fulfilment_tx(slow_lock), w.fulfilment_tx(last), "one transaction");
    let log = std::fs::read_to_string(w.dir.path().join("a.log")).unwrap();
    assert!(log.contains("fulfilled a batch under one root"), "{}", w.log("a"));

    // The money: A was paid exactly its lock prices and got its collateral back.
    let earned: U256 = w
        .orders("a")
        .values()
        .filter(|o| o.state == OrderState::Done)
        .map(|o| o.lock_price)
        .fold(U256::ZERO, |s, p| s + p);
    assert_eq!(w.orders("a").values().filter(|o| o.state == OrderState::Done).count(), 4);
    assert_eq!(w.market_balance(PROVER_A), U256::ZERO, "A withdrew every payment");
    assert_eq!(w.withdrawn(PROVER_A), earned);
    assert_eq!(w.collateral(PROVER_A), a_collateral);

    // A locks one more request and vanishes for good; once the lock lapses B proves it and
    // earns half of A's collateral.
    let a = w.broker("a", PROVER_A, &a_config);
    let orphan = w.submit(REQUESTOR, 8, b"orphan", 10_000_000_000_000_000, 40);
    w.wait_order("a", orphan, "lock", "locked", |o| o.state != OrderState::Locking);
    drop(a);
    let lock_deadline = w.now() + 41;
    w.rt.block_on(w.chain.mine_at(lock_deadline)).unwrap();
    w.wait_order("b", orphan, "race", "done", |o| o.state == OrderState::Done);
    assert_eq!(w.status(orphan), RequestStatus::Fulfilled);
    assert_eq!(w.collateral(PROVER_B), b_collateral + U256::from(5) * U256::from(TOKEN));
    assert_eq!(w.collateral(PROVER_A), a_collateral - U256::from(10) * U256::from(TOKEN));

    // `tiffin broker status` shows the counts, the orphaned lock still committed, and A's
    // balances.
    let out = common::ok(w.broker_cmd("a", PROVER_A, &["status", "--timings"]));
    assert!(out.contains("Done            4"), "{out}");
    assert!(out.contains(&format!("{orphan:#x}-lock")), "{out}");
    assert!(common::field(&out, "capacity:").ends_with("of 2 proving slots in use"), "{out}");
    assert_eq!(common::field(&out, "market balance:"), "0 ETH", "all withdrawn: {out}");
    assert!(out.contains("S-003"), "recent orders show skip codes: {out}");
    assert!(
        out.contains(&format!("| {paid:#x}-lock | ")),
        "a latency row per fulfilled order: {out}"
    );
    assert!(common::field(&out, "overhead:").ends_with("% of proving time"), "{out}");

    // B holds less collateral than its warning threshold and says so.
    let log = std::fs::read_to_string(w.dir.path().join("b.log")).unwrap();
    assert!(log.contains("collateral balance is below balance warn threshold"), "{}", w.log("b"));

    // B's metrics: what it skipped and why, the race it won, its orders by state.
    let scrape = || {
        w.rt.block_on(async {
            reqwest::get(format!("http://{metrics}/metrics")).await.unwrap().text().await.unwrap()
        })
    };
    let series = [
        "tiffin_broker_skips_total{code=\"S-015\"}",
        "tiffin_broker_fulfilments_total{outcome=\"done\"} 1",
        "tiffin_broker_batches_total{mode=\"one_by_one\"} 1",
        "tiffin_broker_orders{state=\"Done\"} 1",
        "tiffin_broker_locking_allowed 1",
        "tiffin_broker_order_latency_seconds",
    ];
    // The gauges refresh every 5 s.
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut text = scrape();
    while series.iter().any(|s| !text.contains(s)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        text = scrape();
    }
    for s in series {
        assert!(text.contains(s), "no {s} in:\n{text}");
    }

    // The operator measures the cluster's speed on a request from the market.
    let out = common::ok(w.broker_cmd(
        "a",
        PROVER_A,
        &["benchmark", "--request-ids", &format!("{paid:#x}")],
    ));
    let khz: f64 = common::field(&out, "khz:").parse().unwrap();
    assert!(khz > 0.0, "{out}");
    let err = common::fails(w.broker_cmd("a", PROVER_A, &["benchmark", "--request-ids", "0x1234"]));
    assert!(err.contains("TIFFIN-BROKER-012") && err.contains("0x1234"), "{err}");

    // The cluster fails: A has priced a request whose bidding starts soon, but once the
    // cluster stops answering its circuit breaker keeps it from locking.
    let mut a = w.broker("a", PROVER_A, &a_config);
    let start = w.mine() + 12;
    let later = w.submit_from(REQUESTOR, 9, b"later", 10_000_000_000_000_000, 600, start);
    let priced = Instant::now() + Duration::from_secs(60);
    let will_lock =
        |log: &str| log.lines().any(|l| l.contains("will lock") && l.contains(&later.to_string()));
    while !will_lock(&std::fs::read_to_string(w.dir.path().join("a.log")).unwrap()) {
        assert!(Instant::now() < priced, "A never priced {later:#x}:\n{}", w.log("a"));
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(&w.up.proc, "-KILL");
    let killed = Instant::now();
    while w.rt.block_on(w.chain.mine()).unwrap() < start + 3
        || killed.elapsed() < Duration::from_secs(7)
    {
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = std::fs::read_to_string(w.dir.path().join("a.log")).unwrap();
    let order = w.order("a", later, "lock");
    assert_eq!(w.status(later), RequestStatus::Open, "{order:?}\n{log}");
    assert!(log.contains("not locking: B-004"), "{order:?}\n{log}");

    // The chain goes away: A's stages fail, and once a stage has failed more than
    // max_critical_task_retries times in a row (1, from its re-read file) A exits, naming it.
    let one_retry = a_config.replace("[market]\n", "[market]\nmax_critical_task_retries = 1\n");
    std::fs::write(w.dir.path().join("a.toml"), one_retry).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let anvil = w.chain.node_pid().to_string();
    assert!(Command::new("kill").args(["-KILL", &anvil]).status().unwrap().success());
    assert!(wait_exit(&mut a, Duration::from_secs(60)), "A gives up without its chain");
    assert!(!a.0.try_wait().unwrap().unwrap().success());
    let log = std::fs::read_to_string(w.dir.path().join("a.log")).unwrap();
    assert!(
        log.contains("TIFFIN-BROKER-018") && log.contains("failed 2 times in a row"),
        "{}",
        w.log("a")
    );
}

impl World {
    /// Submits a profitable request while automine is off, mining until it is in.
    fn submit_pending(&self, who: usize, index: u32, input: &[u8]) -> U256 {
        std::thread::scope(|s| {
            let h = s.spawn(|| self.submit(who, index, input, 10_000_000_000_000_000, 600));
            while !h.is_finished() {
                std::thread::sleep(Duration::from_millis(300));
                self.mine();
            }
            h.join().unwrap()
        })
    }

    /// Mines an empty block at the chain's clock; returns its timestamp.
    fn mine(&self) -> u64 {
        self.rt.block_on(self.chain.mine()).unwrap()
    }
}
