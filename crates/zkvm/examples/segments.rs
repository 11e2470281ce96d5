//! Prints how many po2-14 segments the spin guest makes for a few cycle counts — the numbers
//! the tests and benchmarks pick their inputs from.
//!
//! `cargo run --example segments [PO2 [N...]]`

use tiffin_guests::{SPIN, spin_input};
use tiffin_zkvm::{ExecuteOptions, encode, execute};

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u32>().expect("numbers only"));
    let po2 = args.next().unwrap_or(14);
    let mut counts: Vec<u32> = args.collect();
    if counts.is_empty() {
        counts = vec![1_000, 5_000, 10_000, 20_000, 35_000, 42_000, 50_000, 110_000, 230_000];
    }
    for n in counts {
        let mut size = 0;
        let opts = ExecuteOptions { po2, ..Default::default() };
        let e = execute(SPIN.program, &spin_input(n)[..], &opts, |s| {
            size = size.max(encode(&s).len());
            Ok::<_, String>(())
        })
        .unwrap();
        println!(
            "spin({n}): {} segments, {} user / {} total cycles, largest segment {size} B",
            e.segments, e.user_cycles, e.total_cycles
        );
    }
}
