//! Running a guest and streaming its segments out as they are produced.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use risc0_zkvm::{ExecutorEnv, ExecutorImpl, ExitCode, NullSegmentRef, Receipt};

use crate::{ImageId, ZkvmError};

pub use risc0_zkvm::Segment;

/// Smallest segment size the cluster accepts (2^14 cycles). Smaller segments spend almost
/// all their cycles on the v1compat kernel's per-segment overhead.
pub const MIN_PO2: u32 = 14;
/// Largest segment size the cluster accepts (2^22 cycles, ~10 GB of prover memory).
pub const MAX_PO2: u32 = 22;

/// A segment size inside [`MIN_PO2`]..=[`MAX_PO2`] that is refused all the same: risc0 3.1's
/// executor reserves 25,000 cycles of every segment from po2 15 up for one (bigint)
/// instruction, against 2,000 below 15, and 4,113 more for its tables. A po2-15 segment of
/// 32,768 cycles keeps ~3,650 for the guest and its paging (a po2-14 one ~10,270), about five
/// pages, so runs thrash: set-builder over two claims took 220 segments (7.2M cycles) at po2
/// 15, against 11 (0.18M) at 14 and 2 (0.08M) at 16.
pub const REFUSED_PO2: u32 = 15;

/// Checks a segment size: [`ZkvmError::InvalidOptions`] outside [`MIN_PO2`]..=[`MAX_PO2`] or
/// at [`REFUSED_PO2`].
pub fn check_po2(po2: u32) -> Result<(), ZkvmError> {
    if !(MIN_PO2..=MAX_PO2).contains(&po2) {
        return Err(ZkvmError::InvalidOptions(format!(
            "segment po2 {po2} is outside the supported range {MIN_PO2}..={MAX_PO2}"
        )));
    }
    if po2 == REFUSED_PO2 {
        return Err(ZkvmError::InvalidOptions(format!(
            "segment po2 {po2} is refused: risc0 reserves 25,000 of its 32,768 cycles per segment \
             for one instruction, so runs take 10-100x the cycles of po2 14 or 16; use 14 or 16"
        )));
    }
    Ok(())
}

/// Guest logs are for humans; cap what we keep so a chatty guest cannot exhaust memory.
const MAX_LOG_BYTES: usize = 1 << 20;

/// How to run a guest.
#[derive(Clone, Debug)]
pub struct ExecuteOptions {
    /// Segment size as a power of two, in [`MIN_PO2`]..=[`MAX_PO2`] but not [`REFUSED_PO2`].
    pub po2: u32,
    /// Hard limit on total cycles; exceeding it is a permanent [`ZkvmError::CycleLimit`].
    pub cycle_limit: Option<u64>,
    /// Receipts the guest may verify through `env::verify` (composition).
    pub assumptions: Vec<Receipt>,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        Self { po2: 20, cycle_limit: None, assumptions: Vec::new() }
    }
}

/// The result of a completed execution: what execute-only sessions report and what the
/// finalize step needs.
#[derive(Clone, Debug)]
pub struct Execution {
    /// The image id of the program that ran.
    pub image_id: ImageId,
    /// The journal (public output) the guest committed.
    pub journal: Vec<u8>,
    /// Cycles spent in guest code.
    pub user_cycles: u64,
    /// All cycles, including paging and per-segment overhead (what proving pays for).
    pub total_cycles: u64,
    /// How many segments were streamed to the callback.
    pub segments: u32,
    /// The guest's stdout (capped at 1 MiB).
    pub stdout: Vec<u8>,
    /// The guest's stderr (capped at 1 MiB).
    pub stderr: Vec<u8>,
    /// The assumptions the guest verified, as indexes into [`ExecuteOptions::assumptions`],
    /// head of the claim's assumption list first: the order [`crate::resolve`] must discharge
    /// them in (each resolve removes the head). Receipts the guest never asked for are absent.
    pub assumptions_used: Vec<usize>,
}

/// A capped, shareable log sink for the guest's stdout/stderr.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut inner = self.0.lock().unwrap();
        let room = MAX_LOG_BYTES.saturating_sub(inner.len());
        inner.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Runs `program` (an `R0BF` program binary) on `input`, handing every segment to
/// `on_segment` as soon as the executor seals it — the caller can store and schedule it for
/// proving while the guest keeps running, and can block to apply backpressure.
///
/// An error returned by `on_segment` stops execution and comes back as
/// [`ZkvmError::SegmentSink`] (transient). A non-zero guest exit code is a permanent
/// [`ZkvmError::GuestPanic`] carrying what the guest wrote to stderr.
pub fn execute<F, E>(
    program: &[u8],
    input: impl Read,
    opts: &ExecuteOptions,
    mut on_segment: F,
) -> Result<Execution, ZkvmError>
where
    F: FnMut(Segment) -> Result<(), E> + Send,
    E: std::fmt::Display,
{
    check_po2(opts.po2)?;
    if opts.cycle_limit == Some(0) {
        return Err(ZkvmError::InvalidOptions("cycle limit must be positive".into()));
    }
    let image_id = ImageId::of_program(program)?;

    let stdout = LogBuffer::default();
    let stderr = LogBuffer::default();
    let mut builder = ExecutorEnv::builder();
    builder
        .stdin(input)
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .segment_limit_po2(opts.po2)
        .session_limit(opts.cycle_limit);
    for receipt in &opts.assumptions {
        builder.add_assumption(receipt.clone());
    }
    let env = builder
        .build()
        .map_err(|e| ZkvmError::InvalidOptions(format!("executor environment: {e:#}")))?;
    let mut executor = ExecutorImpl::from_elf(env, program)
        .map_err(|e| ZkvmError::InvalidProgram(format!("{e:#}")))?;

    let mut sink_error: Option<String> = None;
    let mut count = 0u32;
    let result = executor.run_with_callback(|segment| {
        count += 1;
        if let Err(e) = on_segment(segment) {
            let msg = e.to_string();
            sink_error = Some(msg.clone());
            return Err(anyhow::anyhow!(msg));
        }
        Ok(Box::new(NullSegmentRef))
    });
    if let Some(msg) = sink_error {
        return Err(ZkvmError::SegmentSink(msg));
    }
    let session = result.map_err(|e| run_error(opts.cycle_limit, &e))?;
    let stderr_bytes = stderr.take();
    check_exit(session.exit_code, &stderr_bytes, session.total_cycles)?;

    let assumptions_used = used_assumptions(&session.assumptions, &opts.assumptions)?;
    Ok(Execution {
        assumptions_used,
        image_id,
        journal: session.journal.map(|j| j.bytes).unwrap_or_default(),
        user_cycles: session.user_cycles,
        total_cycles: session.total_cycles,
        segments: count,
        stdout: stdout.take(),
        stderr: stderr_bytes,
    })
}

/// What a failed run is: past the cycle limit, or a fault of the guest.
fn run_error(cycle_limit: Option<u64>, e: &anyhow::Error) -> ZkvmError {
    let detail = format!("{e:#}");
    match cycle_limit {
        Some(limit) if detail.contains("limit exceeded") => ZkvmError::CycleLimit { limit, detail },
        _ => ZkvmError::GuestFault(detail),
    }
}

/// Accepts only a guest that halted with code 0; a non-zero code is a [`ZkvmError::GuestPanic`]
/// carrying what the guest wrote to `stderr` and the `cycles` it ran.
fn check_exit(exit_code: ExitCode, stderr: &[u8], cycles: u64) -> Result<(), ZkvmError> {
    match exit_code {
        ExitCode::Halted(0) => Ok(()),
        ExitCode::Halted(code) => {
            let text = String::from_utf8_lossy(stderr).trim().to_string();
            let message = if text.is_empty() { "(no message on stderr)".to_string() } else { text };
            Err(ZkvmError::GuestPanic { exit_code: code, message, cycles })
        }
        other => Err(ZkvmError::Unsupported(format!(
            "guest ended with {other:?}; only halting guests can be proven"
        ))),
    }
}

/// Maps the assumptions a session used back to the receipts the caller supplied.
fn used_assumptions(
    used: &[(risc0_zkvm::Assumption, risc0_zkvm::AssumptionReceipt)],
    supplied: &[Receipt],
) -> Result<Vec<usize>, ZkvmError> {
    use risc0_zkvm::sha::Digestible;
    let digests: Vec<_> =
        supplied.iter().map(|r| r.claim().map(|c| c.digest())).collect::<Result<_, _>>().map_err(
            |e| ZkvmError::UnusableAssumption(format!("claim of a supplied receipt: {e}")),
        )?;
    used.iter()
        .map(|(assumption, _)| {
            digests.iter().position(|d| *d == assumption.claim).ok_or_else(|| {
                ZkvmError::UnusableAssumption(format!(
                    "the guest verified claim {} but no supplied receipt proves it",
                    assumption.claim
                ))
            })
        })
        .collect()
}
