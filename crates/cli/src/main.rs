//! `tiffin`: the one binary of the cluster.

mod admin;
mod agent;
mod backend;
mod broker;
mod config_file;
mod limits;
mod market;
mod progress_bar;
mod prove;
mod samples;
mod secret;
mod session;
mod table;
mod tls;
mod up;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Args, CommandFactory as _, Parser, Subcommand};

/// Tiffin — a multi-tenant proving cluster for the RISC Zero zkVM.
#[derive(Parser)]
#[command(name = "tiffin", version, about)]
struct Cli {
    /// Settings file (TOML): top-level keys for every subcommand with that flag, `[up]`,
    /// `[agent]`, … tables for one; flags and environment variables win over it.
    #[arg(long, env = "TIFFIN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
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
    /// The settings file: `tiffin config print up [flags]` shows every setting of a command
    /// and where it comes from (flag, environment, file or default).
    Config(ConfigArgs),
}

#[derive(Args)]
struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print a subcommand's effective settings with their sources, as TOML.
    Print {
        /// The subcommand and any flags, as you would run it, e.g. `up --po2 18`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<OsString>,
    },
}

/// The command line with the settings file applied (see [`config_file`]), and the ids of the
/// flags the file set.
fn resolve(args: Vec<OsString>) -> Result<(Vec<OsString>, Vec<String>, Option<PathBuf>)> {
    let Some(path) = config_file::config_path(&args) else { return Ok((args, Vec::new(), None)) };
    let file = config_file::read(&path)?;
    let (args, from_file) = config_file::apply(&Cli::command(), args, &file)?;
    Ok((args, from_file, Some(path)))
}

/// `tiffin config print SUBCOMMAND [FLAGS]`.
fn print_config(mut command: Vec<OsString>) -> Result<()> {
    let mut args: Vec<OsString> = std::env::args_os().take(1).collect();
    if let Some(path) = config_file::config_path(&std::env::args_os().collect::<Vec<_>>()) {
        args.extend([OsString::from("--config"), path.into_os_string()]);
    }
    args.append(&mut command);
    let (args, from_file, path) = resolve(args)?;
    let root = Cli::command();
    let matches = root.clone().try_get_matches_from(&args)?;
    let (name, sub) = matches.subcommand().context("name a subcommand, e.g. `config print up`")?;
    let cmd = root.find_subcommand(name).expect("a parsed subcommand exists");
    println!("# tiffin {name}: flag > environment > settings file > default");
    print!("{}", config_file::describe(cmd, sub, &from_file, path.as_deref()));
    Ok(())
}

fn main() -> Result<()> {
    // A proving worker child of an agent (see tiffin_workflow::worker): no CLI, no logging.
    if std::env::args().nth(1).as_deref() == Some(tiffin_workflow::worker::WORKER_COMMAND) {
        std::process::exit(tiffin_workflow::worker::child_main());
    }
    tiffin_tls::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TIFFIN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files and pipes get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let (args, _, _) = resolve(std::env::args_os().collect())?;
    run(Cli::parse_from(args).command).map_err(tls::explain)
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Prove(args) => prove::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Samples(args) => samples::run(args),
        Command::Up(args) => up::up(args),
        Command::Api(args) => up::api(args),
        Command::Admin(args) => admin::run(args),
        Command::Session(args) => session::run(args),
        Command::Market(args) => market::run(args),
        Command::Broker(args) => broker::run(args),
        Command::Config(ConfigArgs { command: ConfigCommand::Print { command } }) => {
            print_config(command)
        }
    }
}
