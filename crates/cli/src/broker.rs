//! `tiffin broker`: runs the broker (crate `tiffin-broker`) against a market and a cluster, and
//! `tiffin broker status` shows its orders from its database.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use tiffin_broker::attest::VerifierService;
use tiffin_broker::chain::Chain;
use tiffin_broker::cluster::Cluster;
use tiffin_broker::config::{BrokerConfig, ConfigWatcher};
use tiffin_broker::db::Db;
use tiffin_broker::latency::{self, Latency};
use tiffin_broker::order::OrderState;
use tiffin_broker::service::{Broker, Stop};
use tiffin_market::amount::{format_collateral, format_native};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::market::ChainArgs;

#[derive(Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The broker's settings (re-read when the file changes); defaults without one.
    #[arg(long, env = "TIFFIN_BROKER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The order database (SQLite).
    #[arg(long, env = "TIFFIN_BROKER_DB", default_value = "broker.db", global = true)]
    db: PathBuf,
    /// The cluster's Bonsai-compatible API.
    #[arg(long, env = "BONSAI_API_URL", default_value = "http://127.0.0.1:8080")]
    api_url: String,
    /// The broker's API key on the cluster. Prefer --api-key-file.
    #[arg(long, env = "BONSAI_API_KEY", hide_env_values = true, default_value = "")]
    api_key: String,
    /// A file holding the cluster API key (mode 0600; wins over --api-key / BONSAI_API_KEY).
    #[arg(long, env = "BONSAI_API_KEY_FILE")]
    api_key_file: Option<PathBuf>,
    /// The verifier service that seals receipts (`tiffin market verifier`).
    #[arg(long, env = "TIFFIN_VERIFIER_URL", default_value = "http://127.0.0.1:8090")]
    verifier_url: String,
    /// A file (mode 0600) holding the bearer token the verifier service asks for
    /// (`tiffin market verifier --token-file`).
    #[arg(long, env = "TIFFIN_VERIFIER_TOKEN_FILE")]
    verifier_token_file: Option<PathBuf>,
    #[command(flatten)]
    ca: crate::tls::CaArgs,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9101); none when not given.
    #[arg(long, env = "TIFFIN_BROKER_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    #[command(subcommand)]
    command: Option<BrokerCommand>,
}

#[derive(Subcommand)]
enum BrokerCommand {
    /// List committed orders, recent orders (with skip codes and errors) and counts by state.
    Status {
        /// How many recent orders to list.
        #[arg(long, default_value_t = 20)]
        recent: u32,
        /// Print the fulfilled orders' latency per stage and the broker's overhead.
        #[arg(long)]
        timings: bool,
    },
    /// Prove requests submitted on the market on the cluster, one after the other, and print
    /// the cluster's speed in kHz (for `peak_prove_khz`).
    Benchmark {
        /// The requests (ids as `tiffin market submit` prints them), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        request_ids: Vec<String>,
    },
}

impl BrokerArgs {
    /// The cluster API key: from --api-key-file when given, else --api-key / BONSAI_API_KEY.
    fn cluster_key(&self) -> Result<String> {
        let key = crate::secret::from_file_or(self.api_key_file.as_deref(), Some(&self.api_key))?;
        Ok(key.unwrap_or_default())
    }
}

pub fn run(mut args: BrokerArgs) -> Result<()> {
    args.ca.trust_for_bonsai_sdk()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        match args.command.take() {
            Some(BrokerCommand::Status { recent, timings }) => {
                status(&args, recent).await?;
                if timings {
                    print_timings(&args.db).await?;
                }
                Ok(())
            }
            Some(BrokerCommand::Benchmark { request_ids }) => benchmark(&args, &request_ids).await,
            None => serve(args).await,
        }
    })
}

async fn serve(args: BrokerArgs) -> Result<()> {
    let (_watcher, config) = match &args.config {
        Some(path) => {
            let (watcher, rx) = ConfigWatcher::start(path)?;
            (Some(watcher), rx)
        }
        None => (None, watch::channel(Arc::new(BrokerConfig::default())).1),
    };
    let chain = Chain::new(args.chain.client().await?, &config.borrow());
    let cluster = Cluster::with_ca(&args.api_url, &args.cluster_key()?, args.ca.path())?;
    let db = Db::open(&args.db).await.with_context(|| format!("opening {:?}", args.db))?;
    println!("broker {} on chain {}", chain.address(), chain.chain_id());
    if let Some(addr) = args.metrics_listen {
        tiffin_broker::metrics::serve(addr).map_err(anyhow::Error::msg)?;
        println!("metrics on http://{addr}/metrics");
    }
    let token = crate::secret::from_file_or(args.verifier_token_file.as_deref(), None)?;
    let verifier = VerifierService::with_ca(&args.verifier_url, args.ca.path())?.with_token(token);
    let broker = Broker::new(chain, cluster, verifier, db, config);
    let (intake_tx, intake) = watch::channel(false);
    let (now_tx, now) = watch::channel(false);
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            return;
        };
        for (flag, what) in [(&intake_tx, "finishing committed orders"), (&now_tx, "stopping now")]
        {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            eprintln!("broker: {what}");
            let _ = flag.send(true);
        }
    });
    broker.run(Stop { intake, now }).await?;
    println!("broker stopped");
    Ok(())
}

async fn status(args: &BrokerArgs, recent: u32) -> Result<()> {
    let path = &args.db;
    anyhow::ensure!(path.exists(), "no order database at {path:?}");
    let db = Db::open(path).await?;
    let config = match &args.config {
        Some(file) => BrokerConfig::load(file)?,
        None => BrokerConfig::default(),
    };
    println!("orders by state:");
    for (state, n) in db.counts().await? {
        println!("  {state:<15} {n}");
    }
    let committed = db.committed().await?;
    let proving = committed.iter().filter(|o| o.state == OrderState::Proving).count();
    let max = config.market.max_concurrent_proofs;
    println!("capacity: {proving} of {max} proving slots in use");
    if args.chain.has_key() {
        let chain = Chain::new(args.chain.client().await?, &config);
        let client = chain.client();
        println!("account: {}", chain.address());
        println!("gas balance: {}", format_native(chain.native_balance().await?));
        println!("market balance: {}", format_native(client.balance_of(chain.address()).await?));
        println!("collateral: {}", format_collateral(chain.collateral_balance().await?));
    }
    println!("committed: {}", committed.len());
    for o in committed {
        println!(
            "  {} {} cycles={} expiry={} session={}",
            o.key(),
            o.state,
            o.cycles,
            o.expiry,
            o.session_id.as_deref().unwrap_or("-")
        );
    }
    println!("recent:");
    for o in db.recent(recent).await? {
        let note = match o.state {
            OrderState::Skipped | OrderState::Failed => o.error.clone().unwrap_or_default(),
            _ => String::new(),
        };
        println!("  {} {} {note}", o.key(), o.state);
    }
    Ok(())
}

/// The latency table of every fulfilled order, with the mean and the overhead.
async fn print_timings(path: &std::path::Path) -> Result<()> {
    let db = Db::open(path).await?;
    let mut done = db.in_states(&[OrderState::Done]).await?;
    done.sort_by_key(|o| o.times.seen);
    let rows: Vec<_> =
        done.iter().filter_map(|o| Some((o.key(), Latency::of(&o.times)?))).collect();
    println!("timings:");
    println!("{}", latency::HEADER);
    for (key, l) in &rows {
        println!("{}", latency::row(key, l));
    }
    if let Some(s) = latency::summarize(&rows.iter().map(|(_, l)| *l).collect::<Vec<_>>()) {
        println!("{}", latency::row(&format!("mean of {}", s.orders), &s.mean));
        println!("overhead: {:.1} % of proving time", s.overhead_percent);
    }
    Ok(())
}

async fn benchmark(args: &BrokerArgs, ids: &[String]) -> Result<()> {
    use tiffin_broker::benchmark::{find_requests, overall_khz, prove};
    let config = match &args.config {
        Some(file) => BrokerConfig::load(file)?,
        None => BrokerConfig::default(),
    };
    let ids = ids
        .iter()
        .map(|id| alloy::primitives::U256::from_str_radix(id.trim().trim_start_matches("0x"), 16))
        .collect::<Result<Vec<_>, _>>()
        .context("a request id is not hex")?;
    let chain = Chain::new(args.chain.client().await?, &config);
    let requests = find_requests(&chain, &ids, config.market.events_poll_blocks).await?;
    let cluster = Cluster::with_ca(&args.api_url, &args.cluster_key()?, args.ca.path())?;
    let m = &config.market;
    let fetcher =
        tiffin_broker::fetch::Fetcher::new(u64::MAX, m.max_fetch_retries, m.cache_dir.clone())
            .allowing(&m.allowed_url_prefixes)
            .with_timeout(std::time::Duration::from_secs(m.fetch_timeout_secs));
    let kind = tiffin_broker::params::receipt_kind(&config);
    let mut runs = Vec::new();
    for request in &requests {
        let run = prove(&cluster, &fetcher, request, kind).await?;
        println!(
            "{:#x}: {} cycles in {:.1} s = {:.1} kHz",
            run.id,
            run.cycles,
            run.seconds,
            run.khz()
        );
        runs.push(run);
    }
    println!("khz: {:.1}", overall_khz(&runs));
    println!("set peak_prove_khz = {} (rounded down)", overall_khz(&runs) as u64);
    Ok(())
}
