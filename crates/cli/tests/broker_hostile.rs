//! One broker on a real anvil facing hostile requestors: each request of the table tries to
//! read a local file, a device, a FIFO, a loopback or metadata address, to hold a preflight
//! slot with a slow server, to change its input after the lock, or to get a request locked
//! that cannot be finished in time. Each ends with its skip code or fulfilled; the prover's
//! collateral is checked to the wei, and no key appears in any log or delivered journal.
//!
//! The broker runs without `peak_prove_khz`: it calibrates on the cluster first (one small
//! proof), skipping what it sees before (S-022). Skips need no proof; one order is proven.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{B256, U256};
use common::{Proc, Up, tiffin};
use tiffin_broker::db::Db;
use tiffin_broker::order::{Order, OrderState};
use tiffin_guests::{ECHO, SET_BUILDER, SPIN, spin_input};
use tiffin_market::request::request_id;
use tiffin_market::{DevChain, Input, Offer, Predicate, ProofRequest};

const PROVER: usize = 3;
const REQUESTOR: usize = 2;
const TOKEN: u64 = 1_000_000_000_000_000_000;
const PRICE: u64 = 10_000_000_000_000_000;
/// What the changing server serves to its first GET, and then never again.
const INPUT_A: &[u8] = b"served once";

/// A loopback HTTP server: `/allowed/once` answers INPUT_A to the first GET and 404 after,
/// `/allowed/slow` trickles a byte a second, anything else answers a secret.
struct Server {
    base: String,
    once_gets: Arc<AtomicUsize>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let once_gets = Arc::new(AtomicUsize::new(0));
        let gets = once_gets.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let gets = gets.clone();
                std::thread::spawn(move || serve(stream, &gets));
            }
        });
        Server { base, once_gets }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn serve(mut stream: std::net::TcpStream, once_gets: &AtomicUsize) {
    let mut buf = [0u8; 2048];
    let n = stream.read(&mut buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let reply = |stream: &mut std::net::TcpStream, status: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
    };
    match path.as_str() {
        "/allowed/once" if once_gets.fetch_add(1, Ordering::SeqCst) == 0 => {
            reply(&mut stream, "200 OK", INPUT_A)
        }
        "/allowed/once" => reply(&mut stream, "404 Not Found", b""),
        "/allowed/slow" => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n");
            for _ in 0..100 {
                if stream.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        _ => reply(&mut stream, "200 OK", b"the operator's secret"),
    }
}

struct World {
    rt: tokio::runtime::Runtime,
    chain: DevChain,
    dir: tempfile::TempDir,
    up: Up,
    _verifier: Proc,
    verifier_url: String,
    server: Server,
    /// Every key in play: none may appear in a log or a journal.
    secrets: Vec<String>,
}

/// Writes `secret` to `dir/name` with mode 0600 and returns the path.
fn key_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, secret).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

impl World {
    fn start() -> World {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let chain = rt
            .block_on(DevChain::start(B256::from(SET_BUILDER.image_id_bytes())))
            .expect("anvil starts (run scripts/setup)");
        let dir = tempfile::tempdir().unwrap();
        let up_log = std::fs::File::create(dir.path().join("up.log")).unwrap();
        let mut cmd = common::up_command(&dir.path().join("cluster"), 14, 1, &[]);
        cmd.stderr(up_log);
        let up = common::start_up(cmd, true);
        // The verifier too takes its key and its clients' token from mode-0600 files.
        let attestor = chain.signer(1).unwrap().to_bytes().to_string();
        let attestor_file = key_file(dir.path(), "attestor.key", &attestor);
        let token = "verifier-token-0123456789".to_string();
        let token_file = key_file(dir.path(), "verifier.token", &token);
        let verifier_log = std::fs::File::create(dir.path().join("verifier.log")).unwrap();
        let mut child = tiffin(&["market", "verifier", "--listen", "127.0.0.1:0"])
            .arg("--attestor-key-file")
            .arg(&attestor_file)
            .arg("--token-file")
            .arg(&token_file)
            .stdout(Stdio::piped())
            .stderr(verifier_log)
            .spawn()
            .unwrap();
        let lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
        let verifier_url = lines
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("verifier listening on ").map(str::to_string))
            .expect("the verifier prints its URL");
        let prover_key = chain.signer(PROVER).unwrap().to_bytes().to_string();
        let secrets = vec![prover_key, up.key.clone(), attestor, token];
        World {
            rt,
            chain,
            dir,
            up,
            _verifier: Proc(child),
            verifier_url,
            server: Server::start(),
            secrets,
        }
    }

    fn fund_collateral(&self, tokens: u64) -> U256 {
        self.rt.block_on(async {
            let amount = U256::from(tokens) * U256::from(TOKEN);
            let deployer = self.chain.client(0).await.unwrap();
            deployer.mint_collateral(self.chain.address(PROVER), amount).await.unwrap();
            let prover = self.chain.client(PROVER).await.unwrap();
            prover.deposit_collateral(amount).await.unwrap();
            prover.collateral_balance_of(self.chain.address(PROVER)).await.unwrap()
        })
    }

    /// The prover's collateral and native balances in the market.
    fn prover_balances(&self) -> (U256, U256) {
        self.rt.block_on(async {
            let c = self.chain.client(PROVER).await.unwrap();
            let me = self.chain.address(PROVER);
            (c.collateral_balance_of(me).await.unwrap(), c.balance_of(me).await.unwrap())
        })
    }

    /// Starts the broker with its keys in mode-0600 files, none in its environment.
    fn broker(&self) -> Proc {
        let allowed = self.server.url("/allowed/");
        let config = format!(
            "[market]\nmin_mcycle_price = \"0.0000001 ETH\"\nmin_deadline = 10\n\
             events_poll_ms = 200\nlookback_blocks = 100\nmax_concurrent_proofs = 1\n\
             max_journal_bytes = 100\nmax_file_size = 1024\nmax_collateral = \"10 TFC\"\n\
             fetch_timeout_secs = 2\nmax_fetch_retries = 0\n\
             allowed_url_prefixes = [\"{allowed}\"]\n\n\
             [prover]\nstatus_poll_ms = 200\nreceipt_kind = \"composite\"\n\n\
             [batcher]\nbatch_poll_time_ms = 200\ntxn_timeout = 2\nblock_deadline_buffer_secs = 5\n"
        );
        let dir = self.dir.path();
        std::fs::write(dir.join("broker.toml"), config).unwrap();
        let key = key_file(dir, "prover.key", &self.secrets[0]);
        let api_key = key_file(dir, "api.key", &self.up.key);
        let log = std::fs::File::create(dir.join("broker.log")).unwrap();
        let d = self.chain.deployment();
        let mut child = tiffin(&["broker", "--config", dir.join("broker.toml").to_str().unwrap()])
            .arg("--db")
            .arg(dir.join("broker.db"))
            .env("RPC_URL", self.chain.rpc_url())
            .env("PRIVATE_KEY_FILE", key)
            .env("BONSAI_API_KEY_FILE", api_key)
            .env("TIFFIN_MARKET_ADDRESS", d.market.to_string())
            .env("TIFFIN_COLLATERAL_TOKEN_ADDRESS", d.collateral_token.to_string())
            .env("TIFFIN_VERIFIER_ADDRESS", d.verifier.to_string())
            .env("BONSAI_API_URL", &self.up.url)
            .env("TIFFIN_VERIFIER_URL", &self.verifier_url)
            .env("TIFFIN_VERIFIER_TOKEN_FILE", self.dir.path().join("verifier.token"))
            .env("TIFFIN_LOG", "info,tiffin_broker=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn tiffin broker");
        // Its database exists (migrated) once it prints who it is.
        let out = child.stdout.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(out));
        let started = lines.find(|l| l.as_ref().is_ok_and(|l| l.starts_with("broker ")));
        assert!(started.is_some(), "the broker did not start:\n{}", self.log("broker.log"));
        std::thread::spawn(move || for _ in lines {});
        Proc(child)
    }

    /// Submits request `index` from the requestor: `guest` on `input`, with `predicate`.
    fn submit(&self, index: u32, req: &Req) -> U256 {
        let now = self.rt.block_on(self.chain.now()).unwrap();
        let offer = Offer {
            minPrice: U256::from(PRICE / 2),
            maxPrice: U256::from(PRICE),
            biddingStart: now,
            rampUpPeriod: 0,
            lockTimeout: req.lock_secs,
            timeout: req.lock_secs + 600,
            lockCollateral: U256::from(req.collateral_tokens) * U256::from(TOKEN),
        };
        let id = request_id(self.chain.address(REQUESTOR), index);
        let request = ProofRequest::new(
            id,
            B256::from(req.image),
            req.predicate.clone(),
            req.image_url,
            req.input.clone(),
            offer,
        );
        self.rt.block_on(async {
            let c = self.chain.client(REQUESTOR).await.unwrap();
            c.submit_request(&request, U256::from(PRICE)).await.unwrap();
        });
        id
    }

    fn order(&self, id: U256) -> Option<Order> {
        let path = self.dir.path().join("broker.db");
        self.rt.block_on(async {
            let db = Db::open(&path).await.ok()?;
            db.get(&format!("{id:#x}-lock")).await.unwrap()
        })
    }

    fn calibrated(&self) -> Option<u64> {
        let path = self.dir.path().join("broker.db");
        self.rt.block_on(async { Db::open(&path).await.ok()?.calibration().await.unwrap() })
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Waits (up to `secs`) for the order of `id` to satisfy `done`.
    fn wait(&self, id: U256, secs: u64, what: &str, done: impl Fn(&Order) -> bool) -> Order {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(o) = self.order(id)
                && done(&o)
            {
                return o;
            }
            assert!(
                Instant::now() < deadline,
                "{id:#x} never {what}: {:?}\n{}",
                self.order(id),
                self.log("broker.log")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every journal delivered on-chain.
    fn delivered_journals(&self) -> Vec<Vec<u8>> {
        self.rt.block_on(async {
            let c = self.chain.client(0).await.unwrap();
            let events = c
                .market()
                .event_filter::<tiffin_market::bindings::ProofMarket::ProofDelivered>()
                .from_block(0)
                .query()
                .await
                .unwrap();
            events.into_iter().map(|(e, _)| e.journal.to_vec()).collect()
        })
    }
}

/// One hostile request.
struct Req {
    name: &'static str,
    image: [u8; 32],
    image_url: &'static str,
    input: Input,
    predicate: Predicate,
    lock_secs: u32,
    collateral_tokens: u64,
}

fn echo(name: &'static str, input: Input) -> Req {
    Req {
        name,
        image: ECHO.image_id_bytes(),
        image_url: "tiffin-sample://echo",
        input,
        predicate: Predicate::any(),
        lock_secs: 600,
        collateral_tokens: 1,
    }
}

#[test]
fn a_broker_facing_hostile_requestors_skips_them_with_codes_and_loses_nothing() {
    let w = World::start();
    let collateral = w.fund_collateral(100);
    let (_, market_before) = w.prover_balances();
    let _broker = w.broker();

    // Seen before the calibration proof ends: no speed, so nothing can be locked.
    let early = w.submit(1, &echo("early", Input::inline(b"early".to_vec())));
    let why = w.wait(early, 120, "skipped", |o| o.state == OrderState::Skipped).error.unwrap();
    assert!(why.starts_with("S-022"), "before calibration: {why}");
    let deadline = Instant::now() + Duration::from_secs(300);
    let khz = loop {
        if let Some(khz) = w.calibrated() {
            break khz;
        }
        assert!(Instant::now() < deadline, "no calibration:\n{}", w.log("broker.log"));
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(khz >= 1);

    let secret_file = w.dir.path().join("secret.txt");
    std::fs::write(&secret_file, "the operator's secret").unwrap();
    let fifo = w.dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let local = |p: &Path| Input::url(&format!("file://{}", p.display()));
    let localhost = w.server.url("/secret").replace("127.0.0.1", "localhost");
    let mut too_rich = echo("collateral above max_collateral", Input::inline(b"rich".to_vec()));
    too_rich.collateral_tokens = 20;
    // At any speed a po2-14 segment proof on this machine allows, 3 million cycles take more
    // than the 60 s to the lock deadline.
    let slow = Req {
        name: "hours of proving, a minute to the lock deadline",
        image: SPIN.image_id_bytes(),
        image_url: "tiffin-sample://spin",
        input: Input::inline(spin_input(3_000_000)),
        predicate: Predicate::any(),
        lock_secs: 60,
        collateral_tokens: 1,
    };
    let table: Vec<(Req, &str)> = vec![
        (echo("/proc/self/environ", Input::url("file:///proc/self/environ")), "S-020"),
        (echo("a local file", local(&secret_file)), "S-020"),
        (echo("/dev/zero", Input::url("file:///dev/zero")), "S-020"),
        (echo("a FIFO", local(&fifo)), "S-020"),
        (echo("a loopback server", Input::url(&w.server.url("/secret"))), "S-020"),
        (echo("a name of loopback", Input::url(&localhost)), "S-020"),
        (echo("cloud metadata", Input::url("http://169.254.169.254/latest/meta-data/")), "S-020"),
        (echo("a slow-loris server", Input::url(&w.server.url("/allowed/slow"))), "S-021"),
        (too_rich, "S-005"),
        (echo("a journal over the limit", Input::inline(vec![7u8; 200])), "S-013"),
        (slow, "S-017"),
    ];
    let started = Instant::now();
    let ids: Vec<(U256, &str, &str)> = table
        .iter()
        .enumerate()
        .map(|(i, (req, code))| (w.submit(10 + i as u32, req), req.name, *code))
        .collect();
    // Input A to the preflight, 404 afterwards: proven from the cluster's copy all the same.
    let mut changing = echo("changes after the lock", Input::url(&w.server.url("/allowed/once")));
    changing.predicate = Predicate::journal_equals(INPUT_A);
    let changed = w.submit(2, &changing);

    for (id, name, code) in &ids {
        let why = w.wait(*id, 120, "skipped", |o| o.state == OrderState::Skipped).error.unwrap();
        assert!(why.starts_with(code), "{name}: expected {code}, got {why}");
    }
    assert!(started.elapsed() < Duration::from_secs(90), "the slow server held the slots");
    let done = w.wait(changed, 600, "done", |o| o.state == OrderState::Done);
    assert_eq!(w.server.once_gets.load(Ordering::SeqCst), 1, "the input was fetched once");

    // Collateral back to the wei, and the price paid on top.
    let (collateral_after, market_after) = w.prover_balances();
    assert_eq!(collateral_after, collateral);
    assert_eq!(market_after, market_before + done.lock_price);

    // No key in any log or journal.
    let journals = w.delivered_journals();
    assert_eq!(journals, vec![INPUT_A.to_vec()], "only the honest request was delivered");
    assert!(w.log("broker.log").contains("calibration proof done"));
    for name in ["broker.log", "verifier.log", "up.log"] {
        let log = w.log(name);
        for secret in &w.secrets {
            let bare = secret.trim_start_matches("0x");
            assert!(!log.contains(bare), "a key is in {name}");
        }
    }
    assert!(!w.log("broker.log").contains("the operator's secret"));
}
