//! What a job is asked to do (stored as the job's meta and in its exec task) and what each
//! task's payload says.

use serde::{Deserialize, Serialize};
use tiffin_zkvm::ReceiptKind;

/// A proving session: which program, which input, and how to prove it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Hex image id of the program (the cold store holds it under `images/<id>`).
    pub image_id: String,
    /// Cold-store key of the input.
    pub input_key: String,
    /// Segment size (power of two).
    pub po2: u32,
    /// Succinct or composite receipt.
    pub receipt_kind: ReceiptKind,
    /// Stop after execute (journal and cycle counts only).
    pub execute_only: bool,
    /// Cycle limit for the guest, if any.
    pub cycle_limit: Option<u64>,
    /// Cold-store keys of receipts the guest may verify (composition). Those it does verify
    /// are resolved into the final receipt (succinct) or carried in it (composite).
    #[serde(default)]
    pub assumptions: Vec<String>,
    /// The largest journal the guest may commit, in bytes ([`DEFAULT_MAX_JOURNAL_BYTES`] when
    /// unset). A longer one fails the job: journals are stored whole and served whole.
    #[serde(default)]
    pub max_journal_bytes: Option<u64>,
    /// When the caller needs the job done (unix seconds): its tasks are claimed before the
    /// tenant's later-due and undated jobs; a job past it is reported, never stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<u64>,
    /// Its rank among the tenant's jobs due at the same time (higher first; default 0).
    #[serde(default)]
    pub priority: i32,
}

impl JobSpec {
    /// Whether the job missed its deadline: it ended (or, still running, it is now) past it.
    pub fn missed_deadline(&self, ended_or_now: chrono::DateTime<chrono::Utc>) -> Option<bool> {
        self.deadline.map(|d| ended_or_now.timestamp() > d as i64)
    }
}

/// The journal limit of a job that names none.
pub const DEFAULT_MAX_JOURNAL_BYTES: u64 = 64 << 20;

/// The payload of each task kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum TaskPayload {
    /// Run the guest and plan the rest of the job.
    Execute(JobSpec),
    /// Prove segment `segment` (lift it too when `lift`).
    Prove {
        /// Segment index.
        segment: u32,
        /// Lift to a succinct receipt (false for composite jobs).
        lift: bool,
    },
    /// Join the outputs of the `left` and `right` tasks.
    Join {
        /// Task key of the earlier half.
        left: String,
        /// Task key of the later half.
        right: String,
    },
    /// Discharge the assumptions of the joined root receipt `root`, one resolve each.
    Resolve {
        /// Task key of the root (the last join or the only prove).
        root: String,
        /// Cold-store keys of the assumption receipts, head of the claim's list first.
        assumptions: Vec<String>,
    },
    /// Build, verify and store the final receipt from `parts` (one root, or every segment
    /// receipt of a composite job, in order).
    Finalize {
        /// Task keys whose outputs make the receipt.
        parts: Vec<String>,
        /// Image id to verify against.
        image_id: String,
        /// Succinct or composite.
        receipt_kind: ReceiptKind,
        /// Composite only: cold-store keys of the receipts of the guest's assumptions, which
        /// a composite receipt carries (in the claim's order).
        #[serde(default)]
        assumptions: Vec<String>,
    },
    /// Convert the succinct receipt of session `session` (a job id) to Groth16; the only task
    /// of a snark job (kind `snark`).
    Snark {
        /// The succeeded session whose receipt is converted.
        session: String,
    },
}

/// Key of the one execute task of every job.
pub const EXECUTE_KEY: &str = "exec";

/// Key of the one task of a Groth16 conversion job.
pub const SNARK_KEY: &str = "snark";

/// The meta key of a Groth16 conversion job: the id of the session it converts.
pub const SNARK_OF: &str = "snark_of";

/// What the execute task reports on completion (and execute-only sessions return). The
/// journal itself is a cold-store blob (`blobs::journal`), never part of this record: a task
/// database row stays small whatever the guest commits, and status polls stay cheap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecuteOutput {
    /// The journal, hex encoded, as jobs executed by earlier versions recorded it (empty now).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub journal_hex: String,
    /// The journal's length in bytes.
    #[serde(default)]
    pub journal_bytes: u64,
    /// Guest cycles.
    pub user_cycles: u64,
    /// All cycles.
    pub total_cycles: u64,
    /// Segments produced.
    pub segments: u32,
}
