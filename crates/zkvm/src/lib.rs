//! The risc0 wrapper every other crate proves through.
//!
//! Why a wrapper: risc0's API is broad, untyped at the edges (`anyhow` everywhere) and its
//! intermediate artefacts must travel through Redis and S3 between agents. This crate fixes
//! one small vocabulary for the cluster — [`execute`] streams [`Segment`]s out while the guest
//! runs, [`prove_and_lift`]/[`join`]/[`resolve`] build the recursion tree, [`finalize`] turns the
//! root into a verified [`Receipt`] — serialises every intermediate with [`codec`], and
//! classifies every failure as permanent or transient with a stable `TIFFIN-ZKVM-0xx` code so
//! the scheduler knows whether a retry can help.

mod codec;
mod error;
mod execute;
mod image;
mod prove;
mod receipt;
mod snark;

pub use codec::{decode, encode};
pub use error::{ErrorClass, ZkvmError};
pub use execute::{
    ExecuteOptions, Execution, MAX_PO2, MIN_PO2, REFUSED_PO2, Segment, check_po2, execute,
};
pub use image::ImageId;
pub use prove::{assumption_of, join, lift, prove_and_lift, prove_segment, resolve};
pub use receipt::{ReceiptKind, finalize, finalize_composite, verify, verify_integrity};
pub use snark::{Groth16Availability, groth16_availability, identity_p254, shrink_wrap, snark};

/// Re-exports of the risc0 types that appear in this crate's API, so callers need not
/// depend on (and pin) risc0-zkvm themselves.
pub mod types {
    pub use risc0_zkvm::{
        Groth16Receipt, InnerReceipt, Receipt, ReceiptClaim, SegmentReceipt, SuccinctReceipt,
        Unknown,
    };
}

pub use types::{Receipt, SegmentReceipt, SuccinctReceipt};

/// The risc0-zkvm version this build proves with (what `/version` reports).
pub const RISC0_ZKVM_VERSION: &str = "3.1.0-rc.1";
