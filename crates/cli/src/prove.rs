//! `tiffin prove`: the main job, on the embedded default — SQLite, local stores and agents
//! in this process — through exactly the workflow a distributed cluster runs.

use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use tiffin_workflow::{Agent, AgentConfig, Cluster, ProveRequest, kinds};
use tiffin_zkvm::{ImageId, ReceiptKind, encode, verify};
use tokio::sync::watch;

use crate::backend::{BackendArgs, context};
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

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let started = Instant::now();
        let (db, stores) = args.backend.open().await?;
        let (tx, rx) = watch::channel(false);
        // One executor agent plus `--agents` provers: execution overlaps proving, and an
        // executor paused by hot-store backpressure never holds a prover's slot.
        let mut agents = Vec::new();
        for i in 0..=args.agents.max(1) {
            let list = if i == 0 { "exec,aux" } else { "prove,join,aux" };
            let kinds = kinds::parse_list(list).expect("valid kinds");
            let mut cfg = AgentConfig::new(format!("embedded-{}-{i}", std::process::id()), kinds);
            cfg.heartbeat = Duration::from_secs(2);
            cfg.isolation = crate::agent::isolated_proving()?;
            let agent = Agent::new(cfg, context(db.clone(), stores.clone()));
            agents.push(tokio::spawn(agent.run(rx.clone())));
        }
        let cluster = Cluster::new(db, stores);
        let job = cluster
            .submit(ProveRequest {
                tenant: args.tenant.clone(),
                program: Bytes::from(program),
                input: Bytes::from(input),
                po2: args.po2,
                receipt_kind,
                execute_only: false,
                cycle_limit: args.cycle_limit,
            })
            .await?;

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
        let _ = tx.send(true);
        for a in agents {
            let _ = a.await;
        }
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
    })
}
