//! Scaling: how many agents a worker kind needs to drain its queue within a target time, the
//! number `GET /admin/queue-report` hands to autoscalers. Pure arithmetic, tested here.
//!
//! An "agent" here is one task slot: an agent started with `--concurrency 4` counts as four.

/// Seconds a task is assumed to take while no task of its kind has finished yet. A minute errs
/// towards more agents: a po2-20 segment proves in seconds on a GPU, in minutes on a CPU.
pub const DEFAULT_TASK_SECS: f64 = 60.0;

/// The work of one kind, as the queue report sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Demand {
    /// Tasks ready to be claimed.
    pub queued: u64,
    /// Tasks leased to agents now.
    pub running: u64,
    /// Measured mean seconds per task (`None` when none finished yet).
    pub mean_task_secs: Option<f64>,
}

impl Demand {
    /// The seconds per task the estimate uses: the measured mean, else [`DEFAULT_TASK_SECS`].
    pub fn task_secs(&self) -> f64 {
        self.mean_task_secs.filter(|s| s.is_finite() && *s >= 0.0).unwrap_or(DEFAULT_TASK_SECS)
    }
}

/// Agents needed to finish the queued and running tasks within `target_secs` (> 0):
/// `ceil((queued + running) × task_secs / target_secs)`, but never fewer than the tasks
/// running now (their agents are busy until they finish) and at least 1 while there is work;
/// 0 when the kind is idle.
pub fn agents_needed(demand: &Demand, target_secs: f64) -> u64 {
    let tasks = demand.queued + demand.running;
    if tasks == 0 {
        return 0;
    }
    let target = if target_secs.is_finite() && target_secs > 0.0 { target_secs } else { 1.0 };
    // `as` saturates: an absurd demand asks for u64::MAX agents rather than wrapping.
    let drain = (tasks as f64 * demand.task_secs() / target).ceil() as u64;
    drain.max(demand.running).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(queued: u64, running: u64, mean: Option<f64>) -> Demand {
        Demand { queued, running, mean_task_secs: mean }
    }

    #[test]
    fn an_idle_kind_needs_no_agent() {
        assert_eq!(agents_needed(&demand(0, 0, Some(10.0)), 300.0), 0);
        assert_eq!(agents_needed(&demand(0, 0, None), 300.0), 0);
    }

    #[test]
    fn work_is_spread_over_the_target_time() {
        // 100 tasks of 30 s in 300 s: 10 agents; 101 tasks round up to 11.
        assert_eq!(agents_needed(&demand(90, 10, Some(30.0)), 300.0), 10);
        assert_eq!(agents_needed(&demand(91, 10, Some(30.0)), 300.0), 11);
        // A shorter target needs more agents.
        assert_eq!(agents_needed(&demand(90, 10, Some(30.0)), 60.0), 50);
    }

    #[test]
    fn any_work_needs_one_agent_and_running_tasks_keep_theirs() {
        assert_eq!(agents_needed(&demand(1, 0, Some(0.5)), 300.0), 1);
        assert_eq!(agents_needed(&demand(0, 7, Some(1.0)), 300.0), 7, "busy agents stay");
        assert_eq!(agents_needed(&demand(3, 0, Some(0.0)), 300.0), 1, "instant tasks");
    }

    #[test]
    fn an_unmeasured_kind_assumes_the_default_duration() {
        assert_eq!(demand(1, 0, None).task_secs(), DEFAULT_TASK_SECS);
        assert_eq!(demand(1, 0, Some(f64::NAN)).task_secs(), DEFAULT_TASK_SECS);
        // 10 tasks of 60 s in 300 s.
        assert_eq!(agents_needed(&demand(10, 0, None), 300.0), 2);
    }

    #[test]
    fn nonsense_targets_and_huge_queues_stay_finite() {
        assert_eq!(agents_needed(&demand(2, 0, Some(1.0)), 0.0), 2, "treated as 1 s");
        assert_eq!(agents_needed(&demand(u64::MAX / 2, 0, Some(1e300)), 1.0), u64::MAX);
    }
}
