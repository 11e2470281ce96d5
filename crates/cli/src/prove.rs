//! `tiffin prove`: execute, prove every segment, join, finalize and verify — in this process.
//!
//! Segments stream from the executor thread to a prover thread over a bounded channel, so
//! proving overlaps execution and at most a few segments wait in memory (backpressure).

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use tiffin_zkvm::{
    ExecuteOptions, ImageId, Receipt, Segment, SegmentReceipt, SuccinctReceipt, encode, execute,
    finalize, finalize_composite, join, prove_and_lift, prove_segment, types::ReceiptClaim,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    /// One constant-size receipt (lift + join every segment).
    Succinct,
    /// The segment receipts only (much less work on CPU).
    Composite,
}

#[derive(Args)]
pub struct ProveArgs {
    /// The guest program binary (R0BF) to prove. Use --sample for a bundled guest instead.
    program: Option<PathBuf>,
    /// Prove a bundled sample guest (see `tiffin samples`).
    #[arg(long, conflicts_with = "program")]
    sample: Option<String>,
    /// Read the guest input from this file.
    #[arg(long, conflicts_with = "input_hex")]
    input: Option<PathBuf>,
    /// The guest input as hex.
    #[arg(long)]
    input_hex: Option<String>,
    /// Segment size as a power of two (14–22).
    #[arg(long, env = "TIFFIN_PO2", default_value_t = 20)]
    po2: u32,
    /// Which receipt to produce.
    #[arg(long, value_enum, env = "TIFFIN_RECEIPT_KIND", default_value = "succinct")]
    receipt_kind: Kind,
    /// Refuse sessions longer than this many cycles.
    #[arg(long, env = "TIFFIN_CYCLE_LIMIT")]
    cycle_limit: Option<u64>,
    /// Where receipts are written.
    #[arg(long, env = "TIFFIN_DATA_DIR", default_value = "./tiffin-data")]
    data_dir: PathBuf,
}

enum Proven {
    Succinct(SuccinctReceipt<ReceiptClaim>),
    Segment(SegmentReceipt),
}

pub fn run(args: ProveArgs) -> Result<()> {
    let (program, label): (Vec<u8>, String) = match (&args.program, &args.sample) {
        (Some(path), None) => {
            (std::fs::read(path).with_context(|| format!("reading {path:?}"))?, path.display().to_string())
        }
        (None, Some(name)) => (crate::samples::find(name)?.program.to_vec(), format!("sample {name}")),
        _ => bail!("give a program path or --sample NAME"),
    };
    let input = match (&args.input, &args.input_hex) {
        (Some(path), _) => std::fs::read(path).with_context(|| format!("reading {path:?}"))?,
        (None, Some(h)) => hex::decode(h.trim()).context("--input-hex is not valid hex")?,
        (None, None) => Vec::new(),
    };
    let image_id = ImageId::of_program(&program)?;
    eprintln!("proving {label} (image {image_id}), {} input bytes, po2 {}", input.len(), args.po2);

    let started = Instant::now();
    let kind = args.receipt_kind;
    let (tx, rx) = mpsc::sync_channel::<Segment>(2);
    let prover = std::thread::spawn(move || -> Result<(Vec<Proven>, Option<Duration>)> {
        let mut proven = Vec::new();
        let mut first = None;
        for segment in rx {
            first.get_or_insert(started.elapsed());
            let t = Instant::now();
            let p = match kind {
                Kind::Succinct => Proven::Succinct(prove_and_lift(&segment)?),
                Kind::Composite => Proven::Segment(prove_segment(&segment)?),
            };
            eprintln!("  segment {} proven in {:.1?}", segment.index, t.elapsed());
            proven.push(p);
        }
        Ok((proven, first))
    });
    let opts = ExecuteOptions { po2: args.po2, cycle_limit: args.cycle_limit, ..Default::default() };
    let exec = execute(&program, &input[..], &opts, |segment| tx.send(segment));
    drop(tx);
    let proven = prover.join().expect("prover thread panicked");
    // A prover failure closes the channel and surfaces in execute as a sink error; report
    // the prover's own error first.
    let (proven, first_prove) = proven?;
    let exec = exec?;
    eprintln!(
        "  executed: {} segments, {} user / {} total cycles",
        exec.segments, exec.user_cycles, exec.total_cycles
    );

    let receipt: Receipt = match kind {
        Kind::Succinct => {
            let mut level: Vec<_> = proven
                .into_iter()
                .map(|p| match p {
                    Proven::Succinct(r) => r,
                    Proven::Segment(_) => unreachable!(),
                })
                .collect();
            while level.len() > 1 {
                let mut next = Vec::with_capacity(level.len().div_ceil(2));
                let mut it = level.into_iter();
                while let Some(a) = it.next() {
                    match it.next() {
                        Some(b) => {
                            let t = Instant::now();
                            next.push(join(&a, &b)?);
                            eprintln!("  joined in {:.1?}", t.elapsed());
                        }
                        None => next.push(a),
                    }
                }
                level = next;
            }
            let root = level.pop().context("the guest produced no segments")?;
            finalize(root, exec.journal.clone(), image_id)?
        }
        Kind::Composite => {
            let segs = proven
                .into_iter()
                .map(|p| match p {
                    Proven::Segment(r) => r,
                    Proven::Succinct(_) => unreachable!(),
                })
                .collect();
            finalize_composite(segs, exec.journal.clone(), image_id)?
        }
    };

    let dir = args.data_dir.join("receipts");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir:?}"))?;
    let path = dir.join(format!("{}-{}.bin", image_id, std::process::id()));
    std::fs::write(&path, encode(&receipt)).with_context(|| format!("writing {path:?}"))?;

    println!("journal (hex):  {}", hex::encode(&exec.journal));
    if let Ok(text) = std::str::from_utf8(&exec.journal)
        && !text.is_empty()
        && text.chars().all(|c| !c.is_control() || c == '\n')
    {
        println!("journal (utf8): {text}");
    }
    if !exec.stdout.is_empty() {
        println!("guest stdout:   {}", String::from_utf8_lossy(&exec.stdout).trim_end());
    }
    println!("cycles:         {} user, {} total", exec.user_cycles, exec.total_cycles);
    println!("segments:       {}", exec.segments);
    if let Some(t) = first_prove {
        println!("first prove at: {t:.1?} after start");
    }
    println!("wall time:      {:.1?}", started.elapsed());
    println!("receipt:        {}", path.display());
    println!("verified:       yes ({:?} receipt, image {image_id})", kind);
    Ok(())
}
