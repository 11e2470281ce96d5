//! What a user would run instead of a cluster on one machine: risc0's own local prover,
//! `default_prover().prove_with_opts(…)`, on a sample guest. `scripts/bench-cluster` compares
//! `tiffin prove` against it.
//!
//! Usage: risc0_local <spin-cycles> <po2> <succinct|composite>

use std::time::Instant;

use risc0_zkvm::{ExecutorEnv, ProverOpts, default_prover};
use tiffin_guests::{SPIN, spin_input};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cycles: u32 = args.first().map(|a| a.parse().expect("cycles")).unwrap_or(20_000);
    let po2: u32 = args.get(1).map(|a| a.parse().expect("po2")).unwrap_or(14);
    let opts = match args.get(2).map(String::as_str).unwrap_or("succinct") {
        "composite" => ProverOpts::composite(),
        _ => ProverOpts::succinct(),
    };
    // SAFETY: single-threaded at this point; selects the in-process prover explicitly.
    unsafe { std::env::set_var("RISC0_PROVER", "local") };
    let input = spin_input(cycles);
    let env = ExecutorEnv::builder().write_slice(&input).segment_limit_po2(po2).build().unwrap();
    let t = Instant::now();
    let info = default_prover().prove_with_opts(env, SPIN.program, &opts).unwrap();
    let secs = t.elapsed().as_secs_f64();
    info.receipt.verify(SPIN.image_id).unwrap();
    println!("risc0_local segments={} wall_s={secs:.2}", info.stats.segments);
}
