//! `tiffin`: the one binary of the cluster.

mod admin;
mod agent;
mod backend;
mod broker;
mod limits;
mod market;
mod prove;
mod samples;
mod session;
mod up;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Tiffin — a multi-tenant proving cluster for the RISC Zero zkVM.
#[derive(Parser)]
#[command(name = "tiffin", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prove a guest program with an embedded cluster (SQLite + local stores + in-process
    /// agents) and write a verified receipt.
    Prove(prove::ProveArgs),
    /// Run a worker that claims and proves tasks (distributed mode: point it at PostgreSQL,
    /// Redis and S3).
    Agent(agent::AgentArgs),
    /// List the bundled sample guests, or export them as program binaries.
    Samples(samples::SamplesArgs),
    /// Run the whole cluster in this process: the Bonsai-compatible API, agents and the
    /// housekeeper (embedded SQLite and local stores under --data-dir unless told otherwise).
    Up(up::UpArgs),
    /// Run the API server alone, in front of a distributed cluster (agents run elsewhere).
    Api(up::ApiArgs),
    /// Manage tenants, keys, quotas, priorities, reservations and jobs (admin API).
    Admin(admin::AdminArgs),
    /// Submit and follow proving sessions through the Bonsai API.
    Session(session::SessionArgs),
    /// The proof market: accounts, requests, locks, fulfilment, and the verifier service.
    Market(market::MarketArgs),
    /// Run the broker: buy proof requests on the market, prove them on a cluster, get paid
    /// (`tiffin broker status`: its orders).
    Broker(broker::BrokerArgs),
}

fn main() -> Result<()> {
    // A proving worker child of an agent (see tiffin_workflow::worker): no CLI, no logging.
    if std::env::args().nth(1).as_deref() == Some(tiffin_workflow::worker::WORKER_COMMAND) {
        std::process::exit(tiffin_workflow::worker::child_main());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TIFFIN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files and pipes get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Prove(args) => prove::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Samples(args) => samples::run(args),
        Command::Up(args) => up::up(args),
        Command::Api(args) => up::api(args),
        Command::Admin(args) => admin::run(args),
        Command::Session(args) => session::run(args),
        Command::Market(args) => market::run(args),
        Command::Broker(args) => broker::run(args),
    }
}
