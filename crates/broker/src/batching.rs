//! Batching: when to close a batch of proven orders and fulfil it on-chain.
//!
//! Pure policy: no I/O and no clock; `now` is seconds since the epoch. A batch shares one
//! set-builder proof and one transaction, so waiting for more orders saves gas, but only up to
//! the limits here. [`flush_reason`] checks them in this order (the first that holds is
//! returned):
//!
//! | Reason          | Holds when                                                     |
//! |-----------------|----------------------------------------------------------------|
//! | `Deadline`      | earliest order deadline − now ≤ `block_deadline_buffer_secs`   |
//! | `Size`          | orders ≥ `min_batch_size` (clamped to `max_concurrent_proofs`) |
//! | `JournalBytes`  | journal bytes ≥ `batch_max_journal_bytes`                      |
//! | `Fees`          | fees ≥ `batch_max_fees` (when set)                             |
//! | `MaxTime`       | now − opened_at ≥ `batch_max_time`                             |

use alloy::primitives::U256;
use std::fmt;

/// The batching settings (the lead maps the configuration onto these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchParams {
    /// Orders that close a batch; clamped to `max_concurrent_proofs`, since no more proofs than
    /// that can ever be waiting.
    pub min_batch_size: u32,
    /// Seconds a batch may stay open.
    pub batch_max_time: u64,
    /// Journal bytes that close a batch (they all go into the fulfilment's calldata).
    pub batch_max_journal_bytes: usize,
    /// Fees (wei) at stake that close a batch, if set.
    pub batch_max_fees: Option<U256>,
    /// Seconds kept free before an order's deadline for the fulfilment to land.
    pub block_deadline_buffer_secs: u64,
    /// The most orders committed at once.
    pub max_concurrent_proofs: u32,
}

/// An open batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchState {
    /// When its first order was added.
    pub opened_at: u64,
    /// Orders in it.
    pub orders: usize,
    /// Their journals' total size in bytes.
    pub journal_bytes: usize,
    /// The fees (wei) its orders earn.
    pub fees: U256,
    /// The earliest deadline among its orders.
    pub earliest_deadline: Option<u64>,
}

/// Why to close a batch now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlushReason {
    /// It holds `min_batch_size` orders.
    Size,
    /// Its journals reached `batch_max_journal_bytes`.
    JournalBytes,
    /// It has been open `batch_max_time` seconds.
    MaxTime,
    /// Its fees reached `batch_max_fees`.
    Fees,
    /// An order's deadline is within `block_deadline_buffer_secs`.
    Deadline,
}

impl FlushReason {
    /// A stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Size => "size",
            Self::JournalBytes => "journal_bytes",
            Self::MaxTime => "max_time",
            Self::Fees => "fees",
            Self::Deadline => "deadline",
        }
    }
}

impl fmt::Display for FlushReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The batch size that closes a batch: `min_batch_size`, at most `max_concurrent_proofs`.
pub fn effective_min_batch_size(params: &BatchParams) -> u32 {
    params.min_batch_size.min(params.max_concurrent_proofs)
}

/// Why to close `state` now, or `None` to keep it open (always `None` for an empty batch).
pub fn flush_reason(state: &BatchState, params: &BatchParams, now: u64) -> Option<FlushReason> {
    if state.orders == 0 {
        return None;
    }
    let deadline_close = state
        .earliest_deadline
        .is_some_and(|d| d.saturating_sub(now) <= params.block_deadline_buffer_secs);
    let fees_reached = params.batch_max_fees.is_some_and(|max| state.fees >= max);
    [
        (deadline_close, FlushReason::Deadline),
        (state.orders as u64 >= u64::from(effective_min_batch_size(params)), FlushReason::Size),
        (state.journal_bytes >= params.batch_max_journal_bytes, FlushReason::JournalBytes),
        (fees_reached, FlushReason::Fees),
        (now.saturating_sub(state.opened_at) >= params.batch_max_time, FlushReason::MaxTime),
    ]
    .into_iter()
    .find_map(|(holds, reason)| holds.then_some(reason))
}

/// How many of the proved orders (earliest expiry first, with these journal sizes) go into the
/// closing batch: all of them, unless their journals pass `batch_max_journal_bytes`; then up to
/// and including the order that reaches it (never none). The rest wait for the next batch.
pub fn batch_len(journal_sizes: &[usize], params: &BatchParams) -> usize {
    let mut total = 0usize;
    for (i, size) in journal_sizes.iter().enumerate() {
        total = total.saturating_add(*size);
        if total >= params.batch_max_journal_bytes {
            return i + 1;
        }
    }
    journal_sizes.len()
}

/// Whether a closing batch is worth aggregating under one set-builder root: two orders or more
/// (one is fulfilled with its own seal: no extra proof), and not closed by a deadline (a
/// set-builder proof would eat the time kept for the transaction).
pub fn aggregate(orders: usize, reason: FlushReason) -> bool {
    orders >= 2 && reason != FlushReason::Deadline
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 5_000;

    fn params() -> BatchParams {
        BatchParams {
            min_batch_size: 4,
            batch_max_time: 60,
            batch_max_journal_bytes: 10_000,
            batch_max_fees: Some(U256::from(1_000u64)),
            block_deadline_buffer_secs: 30,
            max_concurrent_proofs: 8,
        }
    }

    fn state() -> BatchState {
        BatchState {
            opened_at: NOW - 10,
            orders: 2,
            journal_bytes: 500,
            fees: U256::from(100u64),
            earliest_deadline: Some(NOW + 600),
        }
    }

    #[test]
    fn flush_table() {
        use FlushReason::*;
        type Change = fn(&mut BatchState, &mut BatchParams);
        let table: Vec<(&str, Change, Option<FlushReason>)> = vec![
            ("nothing holds", |_, _| {}, None),
            (
                "empty batch",
                |s, _| {
                    s.orders = 0;
                    s.opened_at = 0;
                    s.earliest_deadline = Some(NOW)
                },
                None,
            ),
            ("size reached", |s, _| s.orders = 4, Some(Size)),
            ("size one short", |s, _| s.orders = 3, None),
            (
                "size clamped to max_concurrent_proofs",
                |s, p| {
                    s.orders = 3;
                    p.max_concurrent_proofs = 3
                },
                Some(Size),
            ),
            (
                "min_batch_size 0 flushes any order",
                |s, p| {
                    s.orders = 1;
                    p.min_batch_size = 0
                },
                Some(Size),
            ),
            ("journal bytes reached", |s, _| s.journal_bytes = 10_000, Some(JournalBytes)),
            ("journal bytes one short", |s, _| s.journal_bytes = 9_999, None),
            ("fees reached", |s, _| s.fees = U256::from(1_000u64), Some(Fees)),
            (
                "no fee limit",
                |s, p| {
                    s.fees = U256::MAX;
                    p.batch_max_fees = None
                },
                None,
            ),
            ("max time reached", |s, _| s.opened_at = NOW - 60, Some(MaxTime)),
            ("max time one short", |s, _| s.opened_at = NOW - 59, None),
            ("opened in the future", |s, _| s.opened_at = NOW + 5, None),
            (
                "deadline within the buffer",
                |s, _| s.earliest_deadline = Some(NOW + 30),
                Some(Deadline),
            ),
            ("deadline just outside the buffer", |s, _| s.earliest_deadline = Some(NOW + 31), None),
            ("deadline passed", |s, _| s.earliest_deadline = Some(NOW - 1), Some(Deadline)),
            ("no deadline", |s, _| s.earliest_deadline = None, None),
            (
                "deadline first",
                |s, _| {
                    s.earliest_deadline = Some(NOW);
                    s.orders = 100;
                    s.opened_at = 0
                },
                Some(Deadline),
            ),
            (
                "size before the rest",
                |s, _| {
                    s.orders = 100;
                    s.journal_bytes = usize::MAX;
                    s.opened_at = 0
                },
                Some(Size),
            ),
        ];
        for (name, change, expected) in table {
            let (mut state, mut params) = (state(), params());
            change(&mut state, &mut params);
            assert_eq!(flush_reason(&state, &params, NOW), expected, "{name}");
        }
    }

    #[test]
    fn a_batch_ends_at_the_order_that_reaches_the_journal_limit() {
        let p = BatchParams { batch_max_journal_bytes: 100, ..params() };
        let table: [(&[usize], usize); 7] = [
            (&[], 0),
            (&[10, 20, 30], 3),
            (&[60, 40, 5], 2),
            (&[60, 39, 5], 3),
            (&[150, 1], 1),
            (&[0, 0, 100, 1], 3),
            (&[usize::MAX, usize::MAX], 1),
        ];
        for (sizes, want) in table {
            assert_eq!(batch_len(sizes, &p), want, "{sizes:?}");
        }
    }

    #[test]
    fn only_batches_of_two_or_more_not_closed_by_a_deadline_are_aggregated() {
        use FlushReason::*;
        assert!(aggregate(2, Size) && aggregate(5, MaxTime) && aggregate(3, JournalBytes));
        assert!(aggregate(2, Fees));
        assert!(!aggregate(1, Size), "one order gets its own seal");
        assert!(!aggregate(0, MaxTime));
        assert!(!aggregate(4, Deadline), "no extra proof when the deadline is near");
    }

    #[test]
    fn reasons_have_stable_names() {
        assert_eq!(FlushReason::JournalBytes.to_string(), "journal_bytes");
        assert_eq!(FlushReason::MaxTime.as_str(), "max_time");
        let mut p = params();
        assert_eq!(effective_min_batch_size(&p), 4);
        p.max_concurrent_proofs = 2;
        assert_eq!(effective_min_batch_size(&p), 2);
    }
}
