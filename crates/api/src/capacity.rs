//! Capacity: how fast the cluster proves, measured from the tasks it finished, and when a new
//! job of C cycles would finish if admitted now (`GET /admin/capacity`). Pure arithmetic, no
//! clock: the caller passes what it read and the time.
//!
//! The model: one agent slot proves `slot_cycles_per_sec` while busy (the cycles of the prove
//! tasks finished in the window over the seconds they took, first claim to completion). The
//! fair share by recent service gives a newcomer about an equal share of the slots beside the
//! tenants that have prove work waiting or running, so a new job proves at
//! `slot_cycles_per_sec × slots / (tenants_busy + 1)`, and never finishes sooner than one task
//! takes (its segments cannot be split further). The joins and the final steps after the last
//! segment are left out: they are a few task times whatever the job's size.

/// Finished tasks per kind whose durations make a kind's mean task time (the queue and the
/// capacity reports).
pub const DURATION_SAMPLE: u32 = 100;

/// What was finished over a window, for one kind (and receipt kind).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// Seconds the window spans (> 0).
    pub window_secs: f64,
    /// Cycles of the tasks finished in it.
    pub cycles: i64,
    /// Seconds those tasks took, summed (first claim to completion).
    pub busy_secs: f64,
}

impl Measured {
    /// Cycles finished per second of the window: what the cluster did, whatever it was asked.
    pub fn cycles_per_sec(&self) -> f64 {
        if self.window_secs > 0.0 { self.cycles.max(0) as f64 / self.window_secs } else { 0.0 }
    }

    /// Cycles one slot proves per second while busy; `None` without timed work.
    pub fn slot_cycles_per_sec(&self) -> Option<f64> {
        (self.cycles > 0 && self.busy_secs > 0.0 && self.busy_secs.is_finite())
            .then(|| self.cycles as f64 / self.busy_secs)
    }
}

/// The prove side of the cluster as the estimate sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Provers {
    /// Measured speed of one busy slot ([`Measured::slot_cycles_per_sec`]).
    pub slot_cycles_per_sec: Option<f64>,
    /// Live prove slots.
    pub slots: u64,
    /// Tenants with prove tasks ready or running now.
    pub tenants_busy: u64,
    /// Cycles of the ready prove tasks.
    pub cycles_waiting: u64,
    /// Mean seconds of a prove task (`None` until one finished).
    pub task_secs: Option<f64>,
}

/// When a new job would finish.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Slots its fair share is worth (may be a fraction: one slot shared by two tenants).
    pub share_slots: f64,
    /// Cycles a second it would be proven at.
    pub cycles_per_sec: f64,
    /// Seconds from now to its last segment's proof.
    pub secs: f64,
    /// Seconds if it waited for every ready prove task first (the worst case: no fair share).
    pub behind_queue_secs: f64,
}

/// The estimate for a job of `cycles`; `None` while no slot is alive or no speed is measured
/// (then nothing can be promised).
pub fn estimate(cycles: u64, p: &Provers) -> Option<Estimate> {
    let speed = p.slot_cycles_per_sec.filter(|s| s.is_finite() && *s > 0.0)?;
    if p.slots == 0 {
        return None;
    }
    let slots = p.slots as f64;
    let share_slots = slots / (p.tenants_busy as f64 + 1.0);
    let cycles_per_sec = speed * share_slots;
    let floor = p.task_secs.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(0.0);
    let secs = (cycles as f64 / cycles_per_sec).max(floor);
    let behind_queue_secs =
        ((p.cycles_waiting as f64 + cycles as f64) / (speed * slots)).max(floor);
    Some(Estimate { share_slots, cycles_per_sec, secs, behind_queue_secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: u64 = 1 << 20;

    fn provers(speed: Option<f64>, slots: u64, busy: u64, waiting: u64) -> Provers {
        Provers {
            slot_cycles_per_sec: speed,
            slots,
            tenants_busy: busy,
            cycles_waiting: waiting,
            task_secs: Some(2.0),
        }
    }

    #[test]
    fn measured_rates() {
        let table = [
            ("idle window", Measured { window_secs: 600.0, cycles: 0, busy_secs: 0.0 }, 0.0, None),
            (
                "four slots busy all along",
                Measured { window_secs: 100.0, cycles: 400 * MI as i64, busy_secs: 400.0 },
                4.0 * MI as f64,
                Some(MI as f64),
            ),
            (
                "busy a tenth of the window",
                Measured { window_secs: 100.0, cycles: 10 * MI as i64, busy_secs: 10.0 },
                0.1 * MI as f64,
                Some(MI as f64),
            ),
            ("no window", Measured { window_secs: 0.0, cycles: 5, busy_secs: 1.0 }, 0.0, Some(5.0)),
            (
                "untimed cycles give no speed",
                Measured { window_secs: 10.0, cycles: 5, busy_secs: 0.0 },
                0.5,
                None,
            ),
        ];
        for (name, m, per_sec, slot) in table {
            assert_eq!((m.cycles_per_sec(), m.slot_cycles_per_sec()), (per_sec, slot), "{name}");
        }
    }

    #[test]
    fn estimates() {
        let mi = MI as f64;
        // (share_slots, secs, behind_queue_secs)
        type Want = Option<(f64, f64, f64)>;
        let table: [(&str, u64, Provers, Want); 7] = [
            ("no speed measured", 8 * MI, provers(None, 4, 0, 0), None),
            ("no slot alive", 8 * MI, provers(Some(mi), 0, 0, 0), None),
            (
                "an idle cluster is all ours",
                8 * MI,
                provers(Some(mi), 4, 0, 0),
                Some((4.0, 2.0, 2.0)),
            ),
            (
                "one busy tenant halves the share, not the queue",
                8 * MI,
                provers(Some(mi), 4, 1, 400 * MI),
                Some((2.0, 4.0, 102.0)),
            ),
            (
                "two slots shared by four",
                6 * MI,
                provers(Some(mi), 2, 3, 0),
                Some((0.5, 12.0, 3.0)),
            ),
            (
                "never sooner than one task",
                MI / 4,
                provers(Some(mi), 8, 0, 0),
                Some((8.0, 2.0, 2.0)),
            ),
            ("zero cycles still take a task", 0, provers(Some(mi), 1, 0, 0), Some((1.0, 2.0, 2.0))),
        ];
        for (name, cycles, p, want) in table {
            let got = estimate(cycles, &p).map(|e| (e.share_slots, e.secs, e.behind_queue_secs));
            assert_eq!(got, want, "{name}");
        }
        let e = estimate(8 * MI, &provers(Some(mi), 4, 1, 0)).unwrap();
        assert_eq!(e.cycles_per_sec, 2.0 * mi, "speed × share");
    }
}
