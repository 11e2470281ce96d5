//! Heavy proving work (segment proofs, lifts, joins, resolves) run where the agent can stop
//! it. risc0's proving calls cannot be interrupted, so a stopped job's proof would otherwise
//! keep its cores busy to the end, and stop-and-resubmit would stack such proofs without
//! bound. With [`Isolation::Child`] each piece of work runs in a child process (the `tiffin`
//! binary's hidden `__worker` command): the agent kills it the moment the task is cancelled,
//! its lease is lost or the agent shuts down, which frees the CPU and the memory at once. A
//! guest input that crashes the prover or exhausts memory takes down the child, not the agent.
//!
//! The protocol is one request and one answer: the agent writes the [`Work`] (bincode) to the
//! child's stdin and closes it; the child writes its [`Answer`] to stdout and exits.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tiffin_taskdb::FailureKind;
use tiffin_zkvm::types::ReceiptClaim;
use tiffin_zkvm::{Receipt, Segment, SuccinctReceipt, assumption_of, decode, encode};

use crate::TaskError;

/// The hidden subcommand of the `tiffin` binary that runs one [`Work`].
pub const WORKER_COMMAND: &str = "__worker";
/// How often a running child is checked for cancellation.
const POLL: Duration = Duration::from_millis(50);
/// How much of a failed child's stderr goes into the task's error.
const STDERR_TAIL: usize = 2048;

/// Where heavy work runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// On the agent's own blocking thread: cannot be stopped mid-proof (library users and
    /// tests without the `tiffin` binary).
    #[default]
    InProcess,
    /// In a child process of this executable (`EXE __worker`), killed when the task stops.
    Child(PathBuf),
}

/// One piece of proving work, with its inputs as stored (bincode bytes).
#[derive(Debug, Serialize, Deserialize)]
pub enum Work {
    /// Prove a segment; lift the receipt to a succinct one when `lift`.
    Prove { segment: Vec<u8>, lift: bool },
    /// Join two succinct receipts of adjacent segment ranges.
    Join { left: Vec<u8>, right: Vec<u8> },
    /// Resolve a conditional succinct receipt's assumptions with these receipts, in order.
    Resolve { root: Vec<u8>, assumptions: Vec<Vec<u8>> },
}

/// What a piece of work produced: the encoded receipt, and the cycles it proved.
#[derive(Debug, Serialize, Deserialize)]
pub struct Done {
    /// The output receipt (bincode).
    pub bytes: Vec<u8>,
    /// 2^po2 for a segment proof, 0 otherwise.
    pub proven_cycles: u64,
}

/// A child's answer: the output, or the failure with whether a retry could help.
type Answer = Result<Done, (bool, String)>;

impl Work {
    /// Does the work on this thread.
    pub fn run(&self) -> Result<Done, TaskError> {
        let bytes = match self {
            Work::Prove { segment, lift } => {
                let seg: Segment = decode("segment", segment)?;
                let receipt = tiffin_zkvm::prove_segment(&seg)?;
                let proven_cycles = 1u64 << seg.po2();
                let bytes = match lift {
                    true => encode(&tiffin_zkvm::lift(&receipt)?),
                    false => encode(&receipt),
                };
                return Ok(Done { bytes, proven_cycles });
            }
            Work::Join { left, right } => {
                let a: SuccinctReceipt<ReceiptClaim> = decode("succinct receipt", left)?;
                let b: SuccinctReceipt<ReceiptClaim> = decode("succinct receipt", right)?;
                encode(&tiffin_zkvm::join(&a, &b)?)
            }
            Work::Resolve { root, assumptions } => {
                let mut receipt: SuccinctReceipt<ReceiptClaim> = decode("succinct receipt", root)?;
                for bytes in assumptions {
                    let assumption: Receipt = decode("assumption receipt", bytes)?;
                    receipt = tiffin_zkvm::resolve(&receipt, &assumption_of(&assumption)?)?;
                }
                encode(&receipt)
            }
        };
        Ok(Done { bytes, proven_cycles: 0 })
    }

    /// Does the work as `isolation` says, giving up (and killing the child) once `cancelled`.
    pub fn perform(self, isolation: &Isolation, cancelled: &AtomicBool) -> Result<Done, TaskError> {
        match isolation {
            Isolation::InProcess => self.run(),
            Isolation::Child(exe) => self.in_child(exe, cancelled),
        }
    }

    fn in_child(self, exe: &PathBuf, cancelled: &AtomicBool) -> Result<Done, TaskError> {
        let spawn_err = |e: std::io::Error| {
            TaskError::transient(format!(
                "TIFFIN-WORKFLOW-006 could not run {}: {e}",
                exe.display()
            ))
        };
        let mut cmd = Command::new(exe);
        cmd.arg(WORKER_COMMAND).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // The child dies with the thread that waits for it: an agent killed outright (kill -9)
        // leaves no orphan proof running.
        // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let mut stdin = child.stdin.take().expect("piped");
        let request = encode(&self);
        drop(self);
        let writer = std::thread::spawn(move || stdin.write_all(&request));
        let stdout = read_all(child.stdout.take().expect("piped"));
        let stderr = read_all(child.stderr.take().expect("piped"));
        let status = wait_unless_cancelled(&mut child, cancelled)?;
        let _ = writer.join();
        let (out, err) = (join_reader(stdout), join_reader(stderr));
        if !status.success() {
            let tail = String::from_utf8_lossy(&err[err.len().saturating_sub(STDERR_TAIL)..]);
            return Err(TaskError::transient(format!(
                "TIFFIN-WORKFLOW-006 proving worker {status} (a crash or out of memory): {}",
                tail.trim()
            )));
        }
        match decode::<Answer>("worker answer", &out)? {
            Ok(done) => Ok(done),
            Err((true, message)) => Err(TaskError::permanent(message)),
            Err((false, message)) => Err(TaskError::transient(message)),
        }
    }
}

/// Waits for the child, killing it if the task is cancelled meanwhile.
fn wait_unless_cancelled(
    child: &mut Child,
    cancelled: &AtomicBool,
) -> Result<std::process::ExitStatus, TaskError> {
    loop {
        if let Some(status) = child.try_wait().map_err(|e| TaskError::transient(e.to_string()))? {
            return Ok(status);
        }
        if cancelled.load(Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TaskError::transient("task stopped: its proving worker was killed"));
        }
        std::thread::sleep(POLL);
    }
}

fn read_all(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = from.read_to_end(&mut buf);
        buf
    })
}

fn join_reader(handle: std::thread::JoinHandle<Vec<u8>>) -> Vec<u8> {
    handle.join().unwrap_or_default()
}

/// The child's side: reads one [`Work`] from stdin, does it, writes the [`Answer`] to
/// stdout. Returns the process exit code.
pub fn child_main() -> i32 {
    let mut request = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut request) {
        eprintln!("reading the work: {e}");
        return 2;
    }
    let answer: Answer = match decode::<Work>("work", &request) {
        Ok(work) => work.run().map_err(|e| (e.kind == FailureKind::Permanent, e.message)),
        Err(e) => Err((true, e.to_string())),
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(&encode(&answer)).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("writing the answer: {e}");
            2
        }
    }
}
