//! The proving speed the broker plans with, in kHz (thousands of cycles a second): the
//! operator's `peak_prove_khz` when set, else the speed the cluster says a new job gets now
//! (`GET /admin/capacity`, when the broker has the cluster's capacity key), else the speed
//! measured over the broker's own recent proofs (cycles ÷ seconds from the start of proving to the proof), else the speed of the
//! calibration proof the broker runs at start. Without any of them the broker locks nothing
//! (skip S-022, capacity C-004): a deadline cannot be checked without a speed.
//!
//! Pure: the caller reads the samples and the calibration from the database.

/// One finished proof: its cycles and the milliseconds from its start to the proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub cycles: u64,
    pub millis: u64,
}

/// Where the speed in force came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Configured,
    Cluster,
    Measured,
    Calibrated,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Configured => "peak_prove_khz",
            Source::Cluster => "cluster capacity",
            Source::Measured => "measured",
            Source::Calibrated => "calibration",
        }
    }
}

/// The speed over `samples` (total cycles ÷ total milliseconds, i.e. kHz, rounded down but at
/// least 1); `None` without a sample that took time.
pub fn measured_khz(samples: &[Sample]) -> Option<u64> {
    let millis: u64 = samples.iter().map(|s| s.millis).fold(0, u64::saturating_add);
    let cycles: u64 = samples.iter().map(|s| s.cycles).fold(0, u64::saturating_add);
    (millis > 0 && cycles > 0).then(|| (cycles / millis).max(1))
}

/// The speeds the broker knows, each `None` (or 0) when unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Known {
    /// `peak_prove_khz`.
    pub configured: Option<u64>,
    /// What the cluster's capacity report promises a new job.
    pub cluster: Option<u64>,
    /// Over the broker's own recent proofs.
    pub measured: Option<u64>,
    /// The calibration proof's.
    pub calibrated: Option<u64>,
}

/// The speed to plan with, by precedence: configured, the cluster's, measured, calibrated
/// (0 counts as unset).
pub fn in_force(k: Known) -> Option<(u64, Source)> {
    let set = |v: Option<u64>, s| v.filter(|&k| k > 0).map(|k| (k, s));
    let Known { configured, cluster, measured, calibrated } = k;
    set(configured, Source::Configured)
        .or(set(cluster, Source::Cluster))
        .or(set(measured, Source::Measured))
        .or(set(calibrated, Source::Calibrated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_speed_is_total_cycles_over_total_time() {
        let s = |cycles, millis| Sample { cycles, millis };
        let table: &[(&str, Vec<Sample>, Option<u64>)] = &[
            ("none", vec![], None),
            ("no time", vec![s(1_000, 0)], None),
            ("one proof", vec![s(65_536, 16_384)], Some(4)),
            (
                "weighted by time, not averaged",
                vec![s(1_000_000, 1_000), s(1_000, 9_000)],
                Some(100),
            ),
            ("slower than 1 kHz still counts as 1", vec![s(10, 1_000)], Some(1)),
            ("no cycles", vec![s(0, 1_000)], None),
        ];
        for (name, samples, want) in table {
            assert_eq!(measured_khz(samples), *want, "{name}");
        }
    }

    #[test]
    fn the_operator_wins_then_the_cluster_then_the_measurement_then_the_calibration() {
        use Source::*;
        let table = [
            ("nothing", (None, None, None, None), None),
            ("all", (Some(500), Some(90), Some(20), Some(3)), Some((500, Configured))),
            ("unset: the cluster's", (None, Some(90), Some(20), Some(3)), Some((90, Cluster))),
            ("zero is unset", (Some(0), Some(0), Some(20), Some(3)), Some((20, Measured))),
            ("cluster silent: own history", (None, None, Some(20), Some(3)), Some((20, Measured))),
            ("calibration only", (None, None, None, Some(3)), Some((3, Calibrated))),
        ];
        for (name, (configured, cluster, measured, calibrated), want) in table {
            let known = Known { configured, cluster, measured, calibrated };
            assert_eq!(in_force(known), want, "{name}");
        }
    }
}
