//! Which receipt kind to ask the cluster for. A composite receipt carries one segment receipt
//! per segment, so a long request proven composite can outgrow what the verifier service (and
//! the cluster's receipt upload, for aggregation) accept: 64 MiB each by default. Such an order
//! could never be sealed and its collateral would be lost. An order whose estimated composite
//! receipt exceeds [`COMPOSITE_BUDGET`] is proven succinct instead (one receipt of fixed size).
//!
//! The estimate is pessimistic on purpose: the broker does not know the cluster's segment size,
//! so it assumes the smallest one the cluster accepts (po2 14) and [`SEGMENT_RECEIPT_BYTES`] per
//! segment receipt. Pure: no I/O.

use crate::cluster::ReceiptKind;

/// The smallest segment the cluster accepts (`tiffin_zkvm` MIN_PO2), in cycles.
pub const SMALLEST_SEGMENT: u64 = 1 << 14;
/// An upper bound of one segment receipt's size in bytes (seal and claim).
pub const SEGMENT_RECEIPT_BYTES: u64 = 256 << 10;
/// The largest composite receipt the broker asks for: half the verifier's default cap.
pub const COMPOSITE_BUDGET: u64 = 32 << 20;

/// The estimated size of a composite receipt of `cycles`, in bytes.
pub fn composite_bytes(cycles: u64) -> u64 {
    cycles.div_ceil(SMALLEST_SEGMENT).max(1).saturating_mul(SEGMENT_RECEIPT_BYTES)
}

/// The kind to prove an order of `cycles` with, given the configured kind.
pub fn kind_for(configured: ReceiptKind, cycles: u64) -> ReceiptKind {
    match configured {
        ReceiptKind::Composite if composite_bytes(cycles) > COMPOSITE_BUDGET => {
            ReceiptKind::Succinct
        }
        kind => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReceiptKind::{Composite, Succinct};

    #[test]
    fn long_composite_proofs_become_succinct() {
        let most = COMPOSITE_BUDGET / SEGMENT_RECEIPT_BYTES * SMALLEST_SEGMENT;
        let table = [
            ("one segment", Composite, 1_000, Composite),
            ("at the budget", Composite, most, Composite),
            ("one cycle over", Composite, most + 1, Succinct),
            ("succinct stays succinct", Succinct, 10, Succinct),
            ("huge", Composite, u64::MAX, Succinct),
        ];
        for (name, configured, cycles, want) in table {
            assert_eq!(kind_for(configured, cycles), want, "{name}");
        }
    }
}
