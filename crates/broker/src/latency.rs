//! Per-order latency split into the pipeline's stages, from the stage times the database
//! keeps: what `tiffin broker status --timings` and `scripts/bench-broker` print. The broker's
//! overhead is everything but the cluster's proving: preflight, the wait for the lock, the
//! queue for a proving slot, aggregation and the submission.

use crate::order::StageTimes;

/// One order's stages, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Seen → priced (fetch, preflight execution, pricing).
    pub preflight: u64,
    /// Priced → locked (waiting for the price ramp and capacity, then the transaction).
    pub lock: u64,
    /// Locked → proving session started.
    pub queue: u64,
    /// The proving session, as the broker saw it (start → proof done).
    pub prove: u64,
    /// Proof done → sealed: waiting in the open batch, the set-builder proof of an aggregated
    /// batch, and the verifier service's seal.
    pub aggregate: u64,
    /// Sealed → fulfilled on-chain (the transactions).
    pub submit: u64,
}

impl Latency {
    /// The stages of a fulfilled order; `None` while any stage time is missing.
    pub fn of(t: &StageTimes) -> Option<Self> {
        let span = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        Some(Self {
            preflight: span(t.seen, t.priced)?,
            lock: span(t.priced, t.locked)?,
            queue: span(t.locked, t.proving)?,
            prove: span(t.proving, t.proved)?,
            // An order recorded before the seal time was kept counts it all as aggregation.
            aggregate: span(t.proved, t.sealed.or(t.fulfilled))?,
            submit: span(t.sealed.or(t.fulfilled), t.fulfilled)?,
        })
    }

    pub fn total(&self) -> u64 {
        self.preflight + self.lock + self.queue + self.prove + self.aggregate + self.submit
    }

    /// Everything but proving.
    pub fn overhead(&self) -> u64 {
        self.total() - self.prove
    }
}

/// The mean of each stage over `orders`, and the overhead as a share of proving time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub orders: usize,
    pub mean: Latency,
    /// Σ overhead / Σ prove, in percent.
    pub overhead_percent: f64,
}

pub fn summarize(orders: &[Latency]) -> Option<Summary> {
    let n = orders.len() as u64;
    if n == 0 {
        return None;
    }
    let sum = |f: fn(&Latency) -> u64| orders.iter().map(f).sum::<u64>();
    let mean = Latency {
        preflight: sum(|l| l.preflight) / n,
        lock: sum(|l| l.lock) / n,
        queue: sum(|l| l.queue) / n,
        prove: sum(|l| l.prove) / n,
        aggregate: sum(|l| l.aggregate) / n,
        submit: sum(|l| l.submit) / n,
    };
    let prove = sum(|l| l.prove).max(1) as f64;
    let overhead_percent = 100.0 * sum(Latency::overhead) as f64 / prove;
    Some(Summary { orders: orders.len(), mean, overhead_percent })
}

/// A table row: the stages in seconds with one decimal.
pub fn row(label: &str, l: &Latency) -> String {
    let s = |ms: u64| format!("{:.1}", ms as f64 / 1000.0);
    format!(
        "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
        s(l.preflight),
        s(l.lock),
        s(l.queue),
        s(l.prove),
        s(l.aggregate),
        s(l.submit),
        s(l.total()),
        s(l.overhead())
    )
}

/// The table's header.
pub const HEADER: &str = "| order | preflight s | lock s | queue s | prove s | aggregate s | submit s | total s | overhead s |\n\
                          | --- | --- | --- | --- | --- | --- | --- | --- | --- |";

#[cfg(test)]
mod tests {
    use super::*;

    /// Stage times in milliseconds: seen, priced, locked, proving, proved, sealed, fulfilled.
    fn times(t: [u64; 7]) -> StageTimes {
        StageTimes {
            seen: Some(t[0]),
            priced: Some(t[1]),
            locked: Some(t[2]),
            proving: Some(t[3]),
            proved: Some(t[4]),
            sealed: Some(t[5]),
            fulfilled: Some(t[6]),
        }
    }

    #[test]
    fn stages_add_up_and_overhead_is_everything_but_proving() {
        let l = Latency::of(&times([0, 1_000, 1_500, 1_700, 11_700, 12_500, 13_000])).unwrap();
        let want = Latency {
            preflight: 1_000,
            lock: 500,
            queue: 200,
            prove: 10_000,
            aggregate: 800,
            submit: 500,
        };
        assert_eq!(l, want);
        assert_eq!(l.total(), 13_000);
        assert_eq!(l.overhead(), 3_000);
        assert_eq!(row("a", &l), "| a | 1.0 | 0.5 | 0.2 | 10.0 | 0.8 | 0.5 | 13.0 | 3.0 |");
        let mut open = times([0, 1, 2, 3, 4, 5, 6]);
        open.fulfilled = None;
        assert_eq!(Latency::of(&open), None, "an order not yet fulfilled has no latency");
        let mut older = times([0, 1, 2, 3, 4, 5, 9]);
        older.sealed = None;
        let l = Latency::of(&older).unwrap();
        assert_eq!((l.aggregate, l.submit), (5, 0), "no seal time: all of it is aggregation");
    }

    #[test]
    fn the_summary_averages_stages_and_weighs_overhead_by_proving_time() {
        let a = Latency::of(&times([0, 1_000, 1_000, 1_000, 11_000, 11_500, 12_000])).unwrap();
        let b = Latency::of(&times([0, 1_000, 1_000, 1_000, 31_000, 31_500, 32_000])).unwrap();
        let s = summarize(&[a, b]).unwrap();
        assert_eq!(s.orders, 2);
        assert_eq!(s.mean.prove, 20_000);
        assert!((s.overhead_percent - 10.0).abs() < 1e-9, "{}", s.overhead_percent);
        assert_eq!(summarize(&[]), None);
    }
}
