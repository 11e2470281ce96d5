//! `tiffin session submit|status|logs|stop|receipt`: the user side, through the same
//! `bonsai-sdk` client every Bonsai user has, so the CLI exercises exactly their path.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bonsai_sdk::non_blocking::{Client, SessionId};
use clap::{Args, Subcommand};
use tiffin_zkvm::{ImageId, Receipt, decode, verify};

use crate::progress_bar::StageBar;

#[derive(Args)]
pub struct SessionArgs {
    /// The Tiffin (or Bonsai) API.
    #[arg(long, env = "BONSAI_API_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Your API key (prefer --api-key-file).
    #[arg(long, env = "BONSAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A file (mode 0600) holding your API key; wins over --api-key / BONSAI_API_KEY.
    #[arg(long, env = "BONSAI_API_KEY_FILE", value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    #[command(flatten)]
    ca: crate::tls::CaArgs,
    #[command(subcommand)]
    command: SessionCommand,
}

#[derive(Subcommand)]
enum SessionCommand {
    /// Upload a program and input and start a session.
    Submit {
        #[command(flatten)]
        guest: crate::samples::GuestArgs,
        /// A receipt (bincode, as `session receipt` saves it) the guest may verify
        /// (composition); repeat for several.
        #[arg(long = "assumption")]
        assumptions: Vec<PathBuf>,
        /// Only execute (journal and cycle counts, no proof).
        #[arg(long)]
        execute_only: bool,
        /// Cycle limit in millions of cycles.
        #[arg(long)]
        cycle_limit: Option<u64>,
        /// Wait for the end with a progress bar; with a proof, verify and save the receipt.
        #[arg(long)]
        wait: bool,
        /// Where --wait saves the receipt (default <session>.receipt).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show a session's status.
    Status {
        id: String,
        /// Print the status as JSON (the API's answer).
        #[arg(long)]
        json: bool,
    },
    /// Print a session's guest logs.
    Logs { id: String },
    /// Stop a running session.
    Stop { id: String },
    /// Download a succeeded session's receipt (bincode risc0 Receipt).
    Receipt {
        id: String,
        /// Output file (default <session>.receipt).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn client(args: &SessionArgs) -> Result<Client> {
    let key = crate::secret::from_file_or(args.api_key_file.as_deref(), args.api_key.as_deref())?
        .context("no API key: pass --api-key-file FILE (mode 0600) or set BONSAI_API_KEY")?;
    Client::from_parts(args.url.clone(), key, tiffin_zkvm::RISC0_ZKVM_VERSION)
        .context("building the API client")
}

pub fn run(args: SessionArgs) -> Result<()> {
    args.ca.trust_for_bonsai_sdk()?;
    tokio::runtime::Runtime::new()?.block_on(run_async(args))
}

async fn run_async(args: SessionArgs) -> Result<()> {
    let c = client(&args)?;
    match args.command {
        SessionCommand::Submit { guest, assumptions, execute_only, cycle_limit, wait, out } => {
            let (program, _) = guest.program()?;
            let input = guest.input()?;
            let mut receipts = Vec::with_capacity(assumptions.len());
            for path in &assumptions {
                let bytes = std::fs::read(path).with_context(|| format!("reading {path:?}"))?;
                receipts.push(c.upload_receipt(bytes).await?);
            }
            let image = ImageId::of_program(&program)?;
            c.upload_img(&image.to_hex(), program).await?;
            let input_id = c.upload_input(input).await?;
            let session = c
                .create_session_with_limit(
                    image.to_hex(),
                    input_id,
                    receipts,
                    execute_only,
                    cycle_limit,
                )
                .await?;
            println!("session: {}", session.uuid);
            if wait {
                follow(&c, &session, execute_only, image, out).await?;
            }
        }
        SessionCommand::Status { id, json } => {
            let s = SessionId::new(id).status(&c).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status_json(&s))?);
                return Ok(());
            }
            println!("status:  {}", s.status);
            if let Some(state) = s.state {
                println!("state:   {state}");
            }
            if let Some(t) = s.elapsed_time {
                println!("elapsed: {t:.1} s");
            }
            if let Some(st) = s.stats {
                println!(
                    "cycles:  {} user, {} total, {} segments",
                    st.cycles, st.total_cycles, st.segments
                );
            }
            if let Some(e) = s.error_msg {
                println!("error:   {e}");
            }
            if let Some(u) = s.receipt_url {
                println!("receipt: {u}");
            }
        }
        SessionCommand::Logs { id } => print!("{}", SessionId::new(id).logs(&c).await?),
        SessionCommand::Stop { id } => {
            SessionId::new(id.clone()).stop(&c).await?;
            println!("stopped {id}");
        }
        SessionCommand::Receipt { id, out } => {
            let session = SessionId::new(id.clone());
            let bytes = c.receipt_download(&session).await?;
            let receipt: Receipt = decode("receipt", &bytes)?;
            let path = out.unwrap_or_else(|| PathBuf::from(format!("{id}.receipt")));
            std::fs::write(&path, &bytes)?;
            println!("journal (hex): {}", hex::encode(&receipt.journal.bytes));
            println!("receipt:       {}", path.display());
        }
    }
    Ok(())
}

/// A status as the API sent it (absent fields left out).
fn status_json(s: &bonsai_sdk::responses::SessionStatusRes) -> serde_json::Value {
    let stats = s.stats.as_ref().map(|st| {
        serde_json::json!({ "segments": st.segments, "total_cycles": st.total_cycles, "cycles": st.cycles })
    });
    let fields = [
        ("status", Some(serde_json::json!(s.status))),
        ("state", s.state.as_ref().map(|v| serde_json::json!(v))),
        ("receipt_url", s.receipt_url.as_ref().map(|v| serde_json::json!(v))),
        ("error_msg", s.error_msg.as_ref().map(|v| serde_json::json!(v))),
        ("elapsed_time", s.elapsed_time.map(|v| serde_json::json!(v))),
        ("stats", stats),
    ];
    fields.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))).collect()
}

async fn follow(
    c: &Client,
    session: &SessionId,
    execute_only: bool,
    image: ImageId,
    out: Option<PathBuf>,
) -> Result<()> {
    let mut bar = StageBar::new();
    let status = loop {
        let s = session.status(c).await?;
        if s.status != "RUNNING" {
            break s;
        }
        bar.show_state(s.state.as_deref().unwrap_or_default());
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    bar.finish();
    if status.status != "SUCCEEDED" {
        bail!(
            "session {} ended {}: {}",
            session.uuid,
            status.status,
            status.error_msg.unwrap_or_default()
        );
    }
    if let Some(st) = &status.stats {
        println!(
            "cycles:        {} user, {} total, {} segments",
            st.cycles, st.total_cycles, st.segments
        );
    }
    if execute_only {
        println!("journal (hex): {}", hex::encode(session.exec_only_journal(c).await?));
        return Ok(());
    }
    let bytes =
        c.download(&status.receipt_url.context("no receipt_url on a succeeded session")?).await?;
    let receipt: Receipt = decode("receipt", &bytes)?;
    verify(&receipt, image)?;
    let path = out.unwrap_or_else(|| PathBuf::from(format!("{}.receipt", session.uuid)));
    std::fs::write(&path, &bytes)?;
    println!("journal (hex): {}", hex::encode(&receipt.journal.bytes));
    println!("receipt:       {} (verified against image {image})", path.display());
    Ok(())
}
