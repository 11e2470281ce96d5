//! Prints how many po2-14 segments the spin guest makes for a few cycle counts — the numbers
//! the tests and benchmarks pick their inputs from.

use tiffin_guests::{SPIN, spin_input};
use tiffin_zkvm::{ExecuteOptions, encode, execute};

fn main() {
    let po2: u32 = std::env::args().nth(1).map(|a| a.parse().unwrap()).unwrap_or(14);
    for n in [1_000u32, 5_000, 10_000, 20_000, 35_000, 42_000, 50_000, 110_000, 230_000] {
        let mut size = 0;
        let opts = ExecuteOptions { po2, ..Default::default() };
        let e = execute(SPIN.program, &spin_input(n)[..], &opts, |s| {
            size = size.max(encode(&s).len());
            Ok::<_, String>(())
        })
        .unwrap();
        println!("spin({n}): {} segments, {} user / {} total cycles, largest segment {size} B", e.segments, e.user_cycles, e.total_cycles);
    }
}
