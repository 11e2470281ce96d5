//! The zkVM baseline: wall time of every proving operation on this machine, one at a time.
//! Later cluster numbers are compared against these ("the physical limit").
//!
//! Run: `scripts/bench-zkvm` (or `cargo run -p tiffin-zkvm --example baseline -- 14 16 18`);
//! `scripts/bench-zkvm resolve` times only `resolve`.

use std::time::Instant;

use tiffin_guests::{COMPOSE, ECHO, SPIN, spin_input};
use tiffin_zkvm::{
    ExecuteOptions, ImageId, Receipt, Segment, assumption_of, execute, finalize, identity_p254,
    join, lift, prove_segment, resolve,
};

/// Resets the kernel's peak-RSS counter so each row reports its own peak.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

struct Row(String, String, f64, u64);

fn timed<T>(rows: &mut Vec<Row>, op: &str, detail: String, f: impl FnOnce() -> T) -> T {
    reset_peak();
    let t = Instant::now();
    let out = f();
    let secs = t.elapsed().as_secs_f64();
    eprintln!("{op:<16} {detail:<28} {secs:>8.2} s");
    rows.push(Row(op.into(), detail, secs, peak_mib()));
    out
}

fn segments(cycles: u32, po2: u32) -> (tiffin_zkvm::Execution, Vec<Segment>) {
    let mut segs = Vec::new();
    let opts = ExecuteOptions { po2, ..Default::default() };
    let exec = execute(SPIN.program, &spin_input(cycles)[..], &opts, |s| {
        segs.push(s);
        Ok::<_, String>(())
    })
    .unwrap();
    (exec, segs)
}

fn print_table(rows: &[Row]) {
    println!("| operation | input | wall time (s) | peak RSS (MiB) |");
    println!("|---|---|---:|---:|");
    for Row(op, detail, secs, rss) in rows {
        println!("| {op} | {detail} | {secs:.2} | {rss} |");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut rows = Vec::new();
    if args == ["resolve"] {
        resolve_row(&mut rows);
        return print_table(&rows);
    }
    let po2s: Vec<u32> = args.iter().map(|a| a.parse().expect("po2 or `resolve`")).collect();
    let po2s = if po2s.is_empty() { vec![14, 16, 18] } else { po2s };

    // Execute throughput on a long run (segments discarded as they come).
    let cycles = 32_000_000u32;
    let exec = timed(&mut rows, "execute", format!("spin {cycles} cycles, po2 20"), || {
        execute(SPIN.program, &spin_input(cycles)[..], &ExecuteOptions::default(), |_| {
            Ok::<_, String>(())
        })
        .unwrap()
    });
    let exec_secs = rows[0].2;
    rows[0].1 = format!(
        "{} M cycles, {:.1} M cycles/s",
        exec.total_cycles / 1_000_000,
        exec.total_cycles as f64 / exec_secs / 1e6
    );

    // At po2 16 the spin guest is proven as a whole two-segment execution (35,000 cycles
    // make exactly 2 segments there), so its lifts can be joined and finalized into a receipt
    // that verifies. (At po2 14 the v1compat kernel's overhead gives any run ≥ 3 segments.)
    const PAIR_PO2: u32 = 16;
    let mut pair = Vec::new();
    let mut pair_exec = None;
    for &po2 in &po2s {
        let is_pair = po2 == PAIR_PO2;
        let (exec, segs) = segments(if is_pair { 35_000 } else { 1 << (po2 + 1) }, po2);
        if is_pair {
            assert_eq!(segs.len(), 2, "the pair run must make exactly 2 segments at po2 {po2}");
        }
        let take = if is_pair { 2 } else { 1 };
        for seg in segs.iter().take(take) {
            let detail = format!("po2 {} (segment {})", seg.po2(), seg.index);
            let sr =
                timed(&mut rows, "prove_segment", detail.clone(), || prove_segment(seg).unwrap());
            let l = timed(&mut rows, "lift", detail, || lift(&sr).unwrap());
            if is_pair {
                pair.push(l);
            }
        }
        if is_pair {
            pair_exec = Some(exec);
        }
    }
    if pair.len() == 2 {
        let root = timed(&mut rows, "join", format!("two po2-{PAIR_PO2} lifts"), || {
            join(&pair[0], &pair[1]).unwrap()
        });
        let exec = pair_exec.unwrap();
        timed(&mut rows, "finalize", "build + verify succinct".into(), || {
            finalize(root.clone(), exec.journal.clone(), ImageId::from_words(SPIN.image_id))
                .unwrap()
        });
        let p254 = timed(&mut rows, "identity_p254", "joined receipt".into(), || {
            identity_p254(&root).unwrap()
        });
        // The suite does not run identity_p254 on hosts without Groth16 (docs/testing.md):
        // its one check lives here.
        assert_eq!(
            tiffin_zkvm::encode(&p254.claim),
            tiffin_zkvm::encode(&root.claim),
            "identity_p254 proves the same claim"
        );
    }
    resolve_row(&mut rows);
    print_table(&rows);
}

/// Times `resolve`: the `compose` guest verifies a succinct echo receipt inside the zkVM, and
/// its lifted conditional receipt gets that assumption discharged. (Setting it up proves and
/// proves two small po2-16 guests first — lifting and joining their segments, since the
/// v1compat kernel's startup can make a second one; only the resolve itself is timed.)
fn resolve_row(rows: &mut Vec<Row>) {
    let succinct = |program: &[u8], input: &[u8], assumptions: Vec<Receipt>| {
        let mut segs = Vec::new();
        let opts = ExecuteOptions { po2: 16, assumptions, ..Default::default() };
        let exec = execute(program, input, &opts, |s| {
            segs.push(s);
            Ok::<_, String>(())
        })
        .unwrap();
        let mut lifts = segs.iter().map(|s| lift(&prove_segment(s).unwrap()).unwrap());
        let first = lifts.next().expect("at least one segment");
        (exec, lifts.fold(first, |acc, l| join(&acc, &l).unwrap()))
    };
    let (echo_exec, echo_root) = succinct(ECHO.program, b"baseline", Vec::new());
    let echo =
        finalize(echo_root, echo_exec.journal.clone(), ImageId::from_words(ECHO.image_id)).unwrap();
    let input =
        [ImageId::from_words(ECHO.image_id).0.as_bytes(), echo_exec.journal.as_slice()].concat();
    let (exec, conditional) = succinct(COMPOSE.program, &input, vec![echo.clone()]);
    assert_eq!(exec.assumptions_used, vec![0]);
    let assumption = assumption_of(&echo).unwrap();
    timed(rows, "resolve", "one assumption (compose over echo)".into(), || {
        resolve(&conditional, &assumption).unwrap()
    });
}
