//! Real proofs of the sample C guests (no dev mode, no fake receipts).
//!
//! Composite receipts only: a recursion step (lift, join, resolve, identity_p254) costs 41–115 s
//! on 2 cores, so the succinct path of this crate (lift, join, finalize, identity_p254, snark,
//! tampered succinct receipts) is checked on the receipt the agents build in
//! `crates/workflow/tests/embedded.rs`, and resolve in `crates/api/tests/bonsai.rs`.

use sha2::{Digest as _, Sha256};
use tiffin_guests::{ECHO, PANIC, SHA_CHAIN, SPIN, sha_chain_input, spin_input};
use tiffin_zkvm::{
    ErrorClass, ExecuteOptions, Execution, ImageId, MAX_PO2, MIN_PO2, Receipt, Segment, ZkvmError,
    decode, encode, execute, finalize_composite, prove_segment, verify,
};

/// Many-segment runs use po2 14 (the v1compat kernel's start-up alone fills ~2 such segments).
const PO2: u32 = 14;
/// At po2 16 echo fits one segment.
const PO2_ONE_SEGMENT: u32 = 16;
/// Spin cycles giving 4 segments at po2 14.
const SPIN_FOUR_SEGMENTS: u32 = 10_000;

fn opts(po2: u32) -> ExecuteOptions {
    ExecuteOptions { po2, ..Default::default() }
}

fn image(g: &tiffin_guests::Guest) -> ImageId {
    ImageId::from_words(g.image_id)
}

/// Executes a guest and collects its segments, round-tripping each through bytes the way
/// they travel through the hot store.
fn execute_collect(program: &[u8], input: &[u8], po2: u32) -> (Execution, Vec<Segment>) {
    let mut segments = Vec::new();
    let exec = execute(program, input, &opts(po2), |segment: Segment| {
        let bytes = encode(&segment);
        segments.push(decode::<Segment>("segment", &bytes).unwrap());
        Ok::<_, String>(())
    })
    .expect("execution succeeds");
    (exec, segments)
}

/// What the spin guest commits, computed independently in Rust.
fn spin_journal(n: u32) -> Vec<u8> {
    let (mut x, mut sum) = (0x9e37_79b9u32, 0u32);
    for _ in 0..n / 9 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        sum = sum.wrapping_add(x);
    }
    [n.to_le_bytes(), sum.to_le_bytes()].concat()
}

#[test]
fn echo_commits_its_input_and_its_composite_receipt_verifies() {
    let input = b"hello from tiffin, a proving cluster".to_vec();
    let (exec, segments) = execute_collect(ECHO.program, &input, PO2_ONE_SEGMENT);
    assert_eq!(exec.journal, input);
    assert_eq!(exec.segments as usize, segments.len());
    assert_eq!(segments.len(), 1);
    assert!(exec.total_cycles > exec.user_cycles && exec.user_cycles > 0);
    let proven = prove_segment(&segments[0]).unwrap();
    let receipt =
        finalize_composite(vec![proven], vec![], exec.journal.clone(), image(&ECHO)).unwrap();
    assert_eq!(receipt.journal.bytes, input);
    // The final receipt survives the bincode trip Bonsai clients make.
    let decoded: Receipt = decode("receipt", &encode(&receipt)).unwrap();
    verify(&decoded, image(&ECHO)).unwrap();
}

#[test]
fn image_ids_match_the_packaged_programs() {
    for g in tiffin_guests::ALL {
        assert_eq!(ImageId::of_program(g.program).unwrap(), image(g), "{}", g.name);
        assert_eq!(image(g).to_hex(), g.image_id_hex());
        assert_eq!(g.image_id_hex().parse::<ImageId>().unwrap(), image(g));
    }
}

#[test]
fn echo_streams_large_inputs_across_segments() {
    let input: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (exec, segments) = execute_collect(ECHO.program, &input, PO2);
    assert_eq!(exec.journal, input);
    assert!(segments.len() >= 2, "100 kB echo should span segments at po2 14");
    let indices: Vec<u32> = segments.iter().map(|s| s.index).collect();
    assert_eq!(indices, (0..segments.len() as u32).collect::<Vec<_>>());
}

#[test]
fn many_segments_give_a_verified_composite_receipt() {
    let (exec, segments) = execute_collect(SPIN.program, &spin_input(SPIN_FOUR_SEGMENTS), PO2);
    assert_eq!(segments.len(), 4, "spin({SPIN_FOUR_SEGMENTS}) should give 4 segments");
    let receipts: Vec<_> = segments.iter().map(|s| prove_segment(s).unwrap()).collect();
    let receipt =
        finalize_composite(receipts.clone(), vec![], exec.journal.clone(), image(&SPIN)).unwrap();
    assert_eq!(receipt.journal.bytes, spin_journal(SPIN_FOUR_SEGMENTS));
    assert!(exec.user_cycles >= SPIN_FOUR_SEGMENTS as u64 / 2);
    // Execute-only gives the same journal as the proven run.
    let again = execute(SPIN.program, &spin_input(SPIN_FOUR_SEGMENTS)[..], &opts(PO2), |_| {
        Ok::<_, String>(())
    })
    .unwrap();
    assert_eq!(again.journal, receipt.journal.bytes);
    let decoded: Receipt = decode("receipt", &encode(&receipt)).unwrap();
    verify(&decoded, image(&SPIN)).unwrap();

    // Dropping or reordering a segment breaks the chain of system states.
    let mut missing = receipts.clone();
    missing.remove(1);
    assert!(finalize_composite(missing, vec![], exec.journal.clone(), image(&SPIN)).is_err());
    let mut swapped = receipts;
    swapped.swap(0, 1);
    assert!(finalize_composite(swapped, vec![], exec.journal, image(&SPIN)).is_err());
}

#[test]
fn sha_chain_matches_sha256_in_rust() {
    let data = b"the quick brown fox jumps over the lazy dog, many times over".repeat(5);
    for rounds in [1u32, 2, 17] {
        let (exec, _) = execute_collect(SHA_CHAIN.program, &sha_chain_input(rounds, &data), PO2);
        let mut digest = Sha256::digest(&data).to_vec();
        for _ in 1..rounds {
            digest = Sha256::digest(&digest).to_vec();
        }
        assert_eq!(exec.journal, digest, "rounds = {rounds}");
    }
}

#[test]
fn a_guest_panic_is_permanent_and_carries_the_message() {
    let err =
        execute(PANIC.program, &b"seven"[..], &opts(PO2), |_| Ok::<_, String>(())).unwrap_err();
    assert_eq!(err.code(), "TIFFIN-ZKVM-002");
    assert!(err.is_permanent());
    let msg = err.to_string();
    assert!(msg.contains("deliberate failure: seven"), "{msg}");
    assert!(matches!(err, ZkvmError::GuestPanic { exit_code: 101, .. }));
    // spin with no input reports its own usage error the same way.
    let err = execute(SPIN.program, &b""[..], &opts(PO2), |_| Ok::<_, String>(())).unwrap_err();
    assert!(err.to_string().contains("little-endian u32"), "{err}");
}

#[test]
fn garbage_and_truncated_programs_are_rejected_clearly() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("garbage", b"definitely not a program".to_vec()),
        ("truncated", ECHO.program[..ECHO.program.len() / 2].to_vec()),
        ("bare user elf", ECHO.user_elf.to_vec()),
    ];
    for (name, bytes) in cases {
        let err = execute(&bytes, &b""[..], &opts(PO2), |_| Ok::<_, String>(())).unwrap_err();
        assert_eq!(err.code(), "TIFFIN-ZKVM-001", "{name}: {err}");
        assert!(err.is_permanent());
        assert!(ImageId::of_program(&bytes).is_err(), "{name}");
    }
}

#[test]
fn the_cycle_limit_is_a_permanent_error() {
    let o = ExecuteOptions { po2: PO2, cycle_limit: Some(40_000), ..Default::default() };
    let err =
        execute(SPIN.program, &spin_input(1_000_000)[..], &o, |_| Ok::<_, String>(())).unwrap_err();
    assert_eq!(err.code(), "TIFFIN-ZKVM-003", "{err}");
    assert!(err.is_permanent());
}

#[test]
fn bad_options_and_failing_sinks_are_classified() {
    for po2 in [0, 13, 15, 23, 40] {
        let err = execute(ECHO.program, &b""[..], &opts(po2), |_| Ok::<_, String>(())).unwrap_err();
        assert_eq!(err.code(), "TIFFIN-ZKVM-011", "po2 {po2}");
    }
    let err = execute(ECHO.program, &b""[..], &opts(15), |_| Ok::<_, String>(())).unwrap_err();
    assert!(err.to_string().contains("use 14 or 16"), "{err}");
    let mut calls = 0;
    let err = execute(SPIN.program, &spin_input(SPIN_FOUR_SEGMENTS)[..], &opts(PO2), |_| {
        calls += 1;
        if calls == 2 { Err("hot store unreachable") } else { Ok(()) }
    })
    .unwrap_err();
    assert_eq!(err.code(), "TIFFIN-ZKVM-010");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(err.to_string().contains("hot store unreachable"));
    assert_eq!(calls, 2, "execution stops at the first sink failure");
}

/// Every po2 `execute` accepts cuts a run into segments worth at most 4× the cycles of the
/// po2-14 run (or one segment of the larger size). risc0 3.1's executor reserves 25,000 cycles
/// of every segment at po2 15 and up for one instruction, which left a po2-15 segment ~3,650
/// cycles for the guest and its paging: sha-chain took 1,240 segments (40.6M cycles) there,
/// against 36 (0.59M) at po2 14. A po2 that misbehaves like that must be refused, not run.
#[test]
fn no_accepted_po2_multiplies_the_cycles_of_a_run() {
    let cases = [
        ("echo", ECHO.program, b"hello".to_vec()),
        ("sha-chain", SHA_CHAIN.program, sha_chain_input(200, &[7; 100])),
    ];
    for (name, program, input) in cases {
        let run = |po2| execute(program, &input[..], &opts(po2), |_| Ok::<_, String>(()));
        let smallest = run(MIN_PO2).unwrap().total_cycles;
        for po2 in MIN_PO2..=MAX_PO2 {
            let exec = match run(po2) {
                Ok(exec) => exec,
                Err(e) if e.code() == "TIFFIN-ZKVM-011" => continue,
                Err(e) => panic!("{name} at po2 {po2}: {e}"),
            };
            let bound = 4 * smallest.max(1 << po2);
            assert!(
                exec.total_cycles <= bound,
                "{name} at po2 {po2}: {} segments, {} cycles (po2 {MIN_PO2}: {smallest})",
                exec.segments,
                exec.total_cycles
            );
        }
    }
}

#[test]
fn corrupt_blobs_are_reported_not_panicked_on() {
    let Err(err) = decode::<Segment>("segment", b"\x01\x02\x03") else {
        panic!("garbage decoded as a segment")
    };
    assert_eq!(err.code(), "TIFFIN-ZKVM-007");
    assert!(err.to_string().contains("segment"));
    assert!(decode::<Receipt>("receipt", &[]).is_err());
}
