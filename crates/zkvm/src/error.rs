use thiserror::Error;

/// Whether retrying the same work could succeed. The scheduler fails a job at once on a
/// permanent error and retries (with backoff) on a transient one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Deterministic: the same input fails the same way (bad program, guest panic, …).
    Permanent,
    /// Environmental: out of memory, a prover hiccup, a failing segment sink.
    Transient,
}

/// Every failure of the zkVM layer, each with a stable code operators can search for.
#[derive(Debug, Error, tiffin_codes::Coded)]
pub enum ZkvmError {
    /// The uploaded bytes are not a loadable RISC Zero program binary.
    #[error(
        "TIFFIN-ZKVM-001 invalid guest program: {0}. Upload a RISC Zero program binary \
         (R0BF: the guest ELF packaged with its kernel, as risc0's guest builder emits)"
    )]
    InvalidProgram(String),

    /// The guest halted with a non-zero exit code (the C/Rust equivalent of a panic).
    #[error("TIFFIN-ZKVM-002 guest exited with code {exit_code}: {message}")]
    GuestPanic {
        /// The guest's exit code.
        exit_code: u32,
        /// What the guest wrote to stderr (trimmed), or a placeholder.
        message: String,
        /// Cycles it ran (paging and padding included) before it halted: what it costs.
        cycles: u64,
    },

    /// The session ran past its cycle limit.
    #[error(
        "TIFFIN-ZKVM-003 guest exceeded the cycle limit of {limit} cycles; raise \
         exec_cycle_limit or reduce the work: {detail}"
    )]
    CycleLimit {
        /// The configured limit.
        limit: u64,
        /// risc0's own message.
        detail: String,
    },

    /// The executor rejected the guest while running (illegal instruction, bad memory access,
    /// unknown syscall, …). Deterministic, so permanent.
    #[error("TIFFIN-ZKVM-004 guest fault during execution: {0}")]
    GuestFault(String),

    /// The receipt's claim is for another program than the one asked for.
    #[error("TIFFIN-ZKVM-005 image id mismatch: expected {expected}, receipt proves {actual}")]
    ImageIdMismatch {
        /// The image id the caller expected.
        expected: String,
        /// The image id the receipt's claim names.
        actual: String,
    },

    /// A receipt failed cryptographic verification.
    #[error("TIFFIN-ZKVM-006 receipt verification failed: {0}")]
    VerificationFailed(String),

    /// Stored bytes could not be decoded as the expected artefact.
    #[error("TIFFIN-ZKVM-007 corrupt {what}: {detail}")]
    Corrupt {
        /// What was being decoded (segment, receipt …).
        what: &'static str,
        /// The decoder's message.
        detail: String,
    },

    /// The prover failed (out of memory, HAL error …); retrying may help.
    #[error("TIFFIN-ZKVM-008 prover failed during {stage}: {detail}")]
    ProverFailed {
        /// Which step failed (prove_segment, lift, join, …).
        stage: &'static str,
        /// risc0's message.
        detail: String,
    },

    /// This host cannot make Groth16 proofs.
    #[error(
        "TIFFIN-ZKVM-009 Groth16 SNARK proving is unavailable on this host: {0}. risc0's \
         shrink-wrap step needs a running Docker engine (x86) or a CUDA build with the rzup \
         Groth16 artefacts; run snark tasks on an agent that has one"
    )]
    SnarkUnavailable(String),

    /// The consumer of streamed segments failed (e.g. the hot store is unreachable).
    #[error("TIFFIN-ZKVM-010 segment sink failed: {0}")]
    SegmentSink(String),

    /// The caller passed options outside what the cluster supports.
    #[error("TIFFIN-ZKVM-011 invalid options: {0}")]
    InvalidOptions(String),

    /// The guest paused or ended in a way the cluster does not support.
    #[error("TIFFIN-ZKVM-012 unsupported guest behaviour: {0}")]
    Unsupported(String),

    /// A receipt given as an assumption cannot discharge it: resolving needs a succinct
    /// receipt of an unconditional claim.
    #[error("TIFFIN-ZKVM-013 unusable assumption receipt: {0}")]
    UnusableAssumption(String),
}

impl ZkvmError {
    /// Whether a retry could help.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::ProverFailed { .. } | Self::SegmentSink(_) => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }

    /// Shorthand for `class() == Permanent`.
    pub fn is_permanent(&self) -> bool {
        self.class() == ErrorClass::Permanent
    }

    pub(crate) fn prover(stage: &'static str, err: impl std::fmt::Display) -> Self {
        Self::ProverFailed { stage, detail: format!("{err:#}") }
    }
}
