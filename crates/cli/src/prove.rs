//! `tiffin prove`: the main job, on the embedded default — SQLite, local stores and agents
//! in this process — through exactly the workflow a distributed cluster runs.

use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use tiffin_workflow::handlers::Context;
use tiffin_workflow::{Cluster, Crew, ProveRequest, Roster};
use tiffin_zkvm::{ImageId, ReceiptKind, encode, verify};

use crate::backend::BackendArgs;
use crate::progress_bar::StageBar;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    /// One constant-size receipt (lift + join every segment).
    Succinct,
    /// The segment receipts only (much less work on CPU).
    Composite,
}

#[derive(Args)]
pub struct ProveArgs {
    #[command(flatten)]
    guest: crate::samples::GuestArgs,
    /// Segment size as a power of two (14–22, but not 15).
    #[arg(long, env = "TIFFIN_PO2", default_value_t = 20, value_parser = crate::up::parse_po2)]
    po2: u32,
    /// Which receipt to produce.
    #[arg(long, value_enum, env = "TIFFIN_RECEIPT_KIND", default_value = "succinct")]
    receipt_kind: Kind,
    /// Refuse sessions longer than this many cycles.
    #[arg(long, env = "TIFFIN_CYCLE_LIMIT")]
    cycle_limit: Option<u64>,
    /// In-process proving agents (one task at a time each), besides one executor.
    #[arg(long, env = "TIFFIN_AGENTS", default_value_t = 1)]
    agents: usize,
    /// Tenant the job runs as.
    #[arg(long, env = "TIFFIN_TENANT", default_value = "local")]
    tenant: String,
    #[command(flatten)]
    backend: BackendArgs,
}

pub fn run(args: ProveArgs) -> Result<()> {
    let (program, label) = args.guest.program()?;
    let input = args.guest.input()?;
    let image_id = ImageId::of_program(&program)?;
    let receipt_kind = match args.receipt_kind {
        Kind::Succinct => ReceiptKind::Succinct,
        Kind::Composite => ReceiptKind::Composite,
    };
    eprintln!(
        "proving {label} (image {image_id}), {} input bytes, po2 {}, {} agent(s)",
        input.len(),
        args.po2,
        args.agents
    );
    let request = ProveRequest {
        tenant: args.tenant.clone(),
        program: Bytes::from(program),
        input: Bytes::from(input),
        po2: args.po2,
        receipt_kind,
        execute_only: false,
        cycle_limit: args.cycle_limit,
    };
    tokio::runtime::Runtime::new()?.block_on(prove(&args, request, image_id))
}

/// Starts the embedded cluster, proves, verifies and saves the receipt, and reports.
async fn prove(args: &ProveArgs, request: ProveRequest, image_id: ImageId) -> Result<()> {
    let started = Instant::now();
    let (db, stores) = args.backend.open().await?;
    // One executor agent plus `--agents` provers (at least one): execution overlaps proving.
    let isolation = crate::agent::isolated_proving()?;
    let roster = Roster::new(format!("embedded-{}", std::process::id()), args.agents.max(1));
    let agents = roster.agents(|_, a| {
        a.heartbeat = Duration::from_secs(2);
        a.isolation = isolation.clone();
    });
    let crew = Crew::spawn(&Context::new(db.clone(), stores.clone()), agents);
    let cluster = Cluster::new(db, stores);
    let receipt_kind = request.receipt_kind;
    let job = cluster.submit(request).await?;

    let mut bar = StageBar::new();
    let mut first_prove: Option<Duration> = None;
    let result = cluster
        .wait(job, Duration::from_millis(250), |p| {
            if p.proven > 0 && first_prove.is_none() {
                first_prove = Some(started.elapsed());
            }
            bar.show(p.stage());
        })
        .await;
    bar.finish();
    let _ = crew.stop().await;
    let outcome = result?;
    let receipt = cluster.receipt(job).await?;
    verify(&receipt, image_id)?;
    let dir = args.backend.data_dir.join("receipts");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{job}.receipt"));
    std::fs::write(&path, encode(&receipt))?;

    let journal = &receipt.journal.bytes;
    let ex = &outcome.execution;
    println!("job:            {job}");
    println!("journal (hex):  {}", hex::encode(journal));
    if let Ok(text) = std::str::from_utf8(journal)
        && !text.is_empty()
        && text.chars().all(|c| !c.is_control() || c == '\n')
    {
        println!("journal (utf8): {text}");
    }
    println!("cycles:         {} user, {} total", ex.user_cycles, ex.total_cycles);
    println!("segments:       {}", ex.segments);
    if let Some(t) = first_prove {
        println!("first proof:    {t:.1?} after submit");
    }
    println!("wall time:      {:.1?}", started.elapsed());
    if let Ok(peak) = cluster.stores.hot.peak_usage().await {
        println!("peak hot store: {peak} bytes");
    }
    println!("receipt:        {}", path.display());
    println!("verified:       yes ({receipt_kind:?} receipt against image {image_id})");
    Ok(())
}
