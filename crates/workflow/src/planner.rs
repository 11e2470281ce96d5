//! The planner: turns a stream of segments into the proving DAG of one job, incrementally.
//!
//! Segments arrive one at a time while the guest is still executing. Each one gets a prove
//! task at once, and joins are emitted as soon as both children exist (a binary counter, or
//! "mountain range": equal-height peaks merge), so recursion overlaps execution instead of
//! waiting for it. [`Planner::finish`] folds the remaining peaks right to left and adds the
//! resolve and finalize steps. Pure logic: no I/O, so every shape is unit-tested here.

use std::fmt;

/// The kinds of task the planner emits (and agents serve).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// Prove one segment (and lift it, for succinct receipts).
    Prove {
        /// Segment index.
        segment: u32,
    },
    /// Join two succinct receipts covering adjacent segment ranges.
    Join {
        /// The first segment covered by the result.
        first: u32,
        /// The last segment covered by the result (inclusive).
        last: u32,
    },
    /// Resolve the guest's assumptions (composition) on the root receipt.
    Resolve,
    /// Build, verify and store the final receipt.
    Finalize,
}

/// A stable task key within a job: outputs are stored under (job, key), so a retried task
/// finds and overwrites the same blob.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskKey(pub String);

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Step {
    /// The task key of this step.
    pub fn key(&self) -> TaskKey {
        TaskKey(match self {
            Step::Prove { segment } => format!("prove:{segment}"),
            Step::Join { first, last } => format!("join:{first}-{last}"),
            Step::Resolve => "resolve".into(),
            Step::Finalize => "finalize".into(),
        })
    }
}

/// One task to create: its step, prerequisites and height in the tree (0 = leaf), which the
/// scheduler uses to favour tasks nearest the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTask {
    /// What the task does.
    pub step: Step,
    /// Steps that must be done first, in order (a join's left child comes first).
    pub deps: Vec<Step>,
    /// Height in the recursion tree.
    pub height: u32,
}

/// Whether segment receipts are joined into one succinct receipt or shipped as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Lift and join everything into one receipt.
    Succinct,
    /// No recursion: finalize takes every segment receipt.
    Composite,
}

/// Incremental planner for one job.
#[derive(Debug)]
pub struct Planner {
    shape: Shape,
    /// Peaks of the mountain range, left to right, with strictly decreasing heights.
    peaks: Vec<(Step, u32)>,
    segments: u32,
    finished: bool,
}

/// Misuse of the planner (a bug in the caller, never user input).
#[derive(Debug, PartialEq, Eq, thiserror::Error, tiffin_codes::Coded)]
pub enum PlanError {
    /// `finish` was called for a job with no segments.
    #[error("TIFFIN-PLAN-001 a job needs at least one segment")]
    NoSegments,
    /// A segment arrived after `finish`.
    #[error("TIFFIN-PLAN-002 the plan is already finished")]
    Finished,
}

impl Planner {
    /// A planner for a job of the given shape.
    pub fn new(shape: Shape) -> Self {
        Self { shape, peaks: Vec::new(), segments: 0, finished: false }
    }

    /// Segments planned so far.
    pub fn segments(&self) -> u32 {
        self.segments
    }

    /// Adds the next segment; returns its prove task and any joins that became possible.
    pub fn add_segment(&mut self) -> Result<Vec<PlannedTask>, PlanError> {
        if self.finished {
            return Err(PlanError::Finished);
        }
        let segment = self.segments;
        self.segments += 1;
        let prove = Step::Prove { segment };
        let mut out = vec![PlannedTask { step: prove, deps: vec![], height: 0 }];
        if self.shape == Shape::Composite {
            return Ok(out);
        }
        self.peaks.push((prove, 0));
        while let [.., (_, hl), (_, hr)] = self.peaks[..]
            && hl == hr
        {
            let (right, h) = self.peaks.pop().unwrap();
            let (left, _) = self.peaks.pop().unwrap();
            let join = join_of(left, right);
            out.push(PlannedTask { step: join, deps: vec![left, right], height: h + 1 });
            self.peaks.push((join, h + 1));
        }
        Ok(out)
    }

    /// Ends the segment stream: folds the remaining peaks and adds resolve (when the guest
    /// used assumptions) and finalize.
    pub fn finish(&mut self, resolve: bool) -> Result<Vec<PlannedTask>, PlanError> {
        if self.finished {
            return Err(PlanError::Finished);
        }
        if self.segments == 0 {
            return Err(PlanError::NoSegments);
        }
        self.finished = true;
        let mut out = Vec::new();
        if self.shape == Shape::Composite {
            let deps = (0..self.segments).map(|segment| Step::Prove { segment }).collect();
            out.push(PlannedTask { step: Step::Finalize, deps, height: 1 });
            return Ok(out);
        }
        while self.peaks.len() > 1 {
            let (right, hr) = self.peaks.pop().unwrap();
            let (left, hl) = self.peaks.pop().unwrap();
            let join = join_of(left, right);
            let height = hl.max(hr) + 1;
            out.push(PlannedTask { step: join, deps: vec![left, right], height });
            self.peaks.push((join, height));
        }
        let (mut root, mut height) = self.peaks.pop().unwrap();
        if resolve {
            height += 1;
            out.push(PlannedTask { step: Step::Resolve, deps: vec![root], height });
            root = Step::Resolve;
        }
        out.push(PlannedTask { step: Step::Finalize, deps: vec![root], height: height + 1 });
        Ok(out)
    }
}

fn range(step: Step) -> (u32, u32) {
    match step {
        Step::Prove { segment } => (segment, segment),
        Step::Join { first, last } => (first, last),
        Step::Resolve | Step::Finalize => unreachable!("only proofs of segments are joined"),
    }
}

fn join_of(left: Step, right: Step) -> Step {
    Step::Join { first: range(left).0, last: range(right).1 }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    fn plan(n: u32, shape: Shape, resolve: bool) -> Vec<PlannedTask> {
        let mut p = Planner::new(shape);
        let mut all = Vec::new();
        for _ in 0..n {
            all.extend(p.add_segment().unwrap());
        }
        all.extend(p.finish(resolve).unwrap());
        all
    }

    /// Checks the DAG is well formed and returns (joins, depth of the join tree).
    fn check(tasks: &[PlannedTask], n: u32) -> (usize, u32) {
        let mut seen = HashSet::new();
        let mut depth: HashMap<Step, u32> = HashMap::new();
        let mut consumers: HashMap<Step, u32> = HashMap::new();
        for t in tasks {
            for d in &t.deps {
                assert!(seen.contains(d), "{:?} depends on {d:?} before it exists", t.step);
                *consumers.entry(*d).or_default() += 1;
            }
            assert!(seen.insert(t.step), "duplicate {:?}", t.step);
            let d = t.deps.iter().map(|d| depth[d] + 1).max().unwrap_or(0);
            if let Step::Join { first, last } = t.step {
                let (l, r) = (range(t.deps[0]), range(t.deps[1]));
                assert_eq!((l.0, l.1 + 1, r.1), (first, r.0, last), "join covers adjacent ranges");
            }
            depth.insert(t.step, d);
        }
        for s in 0..n {
            assert!(seen.contains(&Step::Prove { segment: s }));
        }
        for t in tasks {
            let expect = if t.step == Step::Finalize { 0 } else { 1 };
            assert_eq!(consumers.get(&t.step).copied().unwrap_or(0), expect, "{:?}", t.step);
        }
        let joins = tasks.iter().filter(|t| matches!(t.step, Step::Join { .. })).count();
        let join_depth = tasks
            .iter()
            .filter(|t| matches!(t.step, Step::Join { .. }))
            .map(|t| depth[&t.step])
            .max()
            .unwrap_or(0);
        (joins, join_depth)
    }

    #[test]
    fn succinct_shapes_have_n_minus_one_joins_and_log_depth() {
        for n in [1u32, 2, 3, 7, 8, 1000] {
            let tasks = plan(n, Shape::Succinct, false);
            let (joins, depth) = check(&tasks, n);
            assert_eq!(joins as u32, n - 1, "n = {n}");
            assert_eq!(depth, n.next_power_of_two().trailing_zeros(), "n = {n}");
            let last = tasks.last().unwrap();
            assert_eq!(last.step, Step::Finalize);
            let root = if n == 1 {
                Step::Prove { segment: 0 }
            } else {
                Step::Join { first: 0, last: n - 1 }
            };
            assert_eq!(last.deps, vec![root]);
        }
    }

    #[test]
    fn joins_are_emitted_as_soon_as_both_children_exist() {
        let mut p = Planner::new(Shape::Succinct);
        assert_eq!(p.add_segment().unwrap().len(), 1);
        let second = p.add_segment().unwrap();
        assert_eq!(second[1].step, Step::Join { first: 0, last: 1 });
        assert_eq!(p.add_segment().unwrap().len(), 1);
        let fourth: Vec<_> = p.add_segment().unwrap().into_iter().map(|t| t.step).collect();
        assert_eq!(
            fourth,
            vec![
                Step::Prove { segment: 3 },
                Step::Join { first: 2, last: 3 },
                Step::Join { first: 0, last: 3 }
            ]
        );
    }

    #[test]
    fn resolve_sits_between_the_root_and_finalize() {
        let tasks = plan(3, Shape::Succinct, true);
        check(&tasks, 3);
        let n = tasks.len();
        assert_eq!(tasks[n - 2].step, Step::Resolve);
        assert_eq!(tasks[n - 2].deps, vec![Step::Join { first: 0, last: 2 }]);
        assert_eq!(tasks[n - 1].deps, vec![Step::Resolve]);
        assert!(tasks[n - 1].height > tasks[n - 2].height);
    }

    #[test]
    fn composite_jobs_have_no_joins_and_finalize_takes_every_segment() {
        let tasks = plan(8, Shape::Composite, false);
        let (joins, _) = check(&tasks, 8);
        assert_eq!(joins, 0);
        assert_eq!(tasks.last().unwrap().deps.len(), 8);
    }

    #[test]
    fn misuse_is_reported() {
        let mut p = Planner::new(Shape::Succinct);
        assert_eq!(p.finish(false), Err(PlanError::NoSegments));
        let mut p = Planner::new(Shape::Succinct);
        p.add_segment().unwrap();
        p.finish(false).unwrap();
        assert_eq!(p.add_segment(), Err(PlanError::Finished));
        assert_eq!(p.finish(false), Err(PlanError::Finished));
    }

    #[test]
    fn heights_grow_towards_the_root() {
        let tasks = plan(13, Shape::Succinct, false);
        let h: HashMap<Step, u32> = tasks.iter().map(|t| (t.step, t.height)).collect();
        for t in &tasks {
            for d in &t.deps {
                assert!(h[d] < t.height, "{:?} not above {d:?}", t.step);
            }
        }
    }
}
