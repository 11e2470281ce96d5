//! The execute task: runs the guest, streams each segment into the hot store and its tasks
//! into TaskDB while the guest still runs, and pauses while unproven segments fill the hot
//! store's budget (backpressure).

use std::collections::HashSet;

use bytes::Bytes;
use tiffin_taskdb::{NewTask, TaskDb, TaskState};
use tiffin_zkvm::{ExecuteOptions, Execution, Receipt, ReceiptKind, decode, encode, execute};

use super::context::{Context, Outcome, Task};
use crate::planner::{PlannedTask, Planner, Shape, Step};
use crate::spec::{DEFAULT_MAX_JOURNAL_BYTES, EXECUTE_KEY, ExecuteOutput, JobSpec, TaskPayload};
use crate::{TaskError, blobs, kinds};

/// Inside a job, tasks nearest the root are claimed first: TaskDB favours small depth.
const ROOT_DEPTH: i32 = 1_000;

pub fn run(ctx: &Context, task: &Task<'_>, spec: &JobSpec) -> Result<Outcome, TaskError> {
    let job = task.lease.job_id;
    let program = ctx.block_on(ctx.stores.cold.get(&blobs::image(&spec.image_id)))?;
    let input = ctx.block_on(ctx.stores.cold.get(&spec.input_key))?;
    let shape = match spec.receipt_kind {
        ReceiptKind::Succinct => Shape::Succinct,
        ReceiptKind::Composite => Shape::Composite,
    };
    // A retried execute re-plans the same deterministic DAG; tasks an earlier attempt already
    // added are skipped rather than duplicated, and the segments of those already proven are
    // not stored again (nothing would read or delete them: they would sit in the hot store
    // until retention).
    let (existing, proven) = earlier_attempt(ctx, task)?;
    let mut planner = Planner::new(shape);
    let assumptions = load_assumptions(ctx, spec)?;
    let opts = ExecuteOptions { po2: spec.po2, cycle_limit: spec.cycle_limit, assumptions };

    let mut ran: u64 = 0;
    let result = execute(&program, &input[..], &opts, |segment| -> Result<(), TaskError> {
        ran = ran.saturating_add(1u64 << segment.po2());
        task.check_cancelled()?;
        if spec.execute_only {
            // A proving session is charged by its prove tasks; an execute-only one by this.
            return record_executed(ctx, job, ran);
        }
        let key = blobs::segment(job, segment.index);
        // What proving the segment costs: its padded trace of 2^po2 cycles.
        let cycles = 1i64 << segment.po2();
        let planned = planner.add_segment().map_err(|e| TaskError::permanent(e.to_string()))?;
        if needs_storing(&planned, &proven) {
            let bytes = Bytes::from(encode(&segment));
            ctx.block_on(ctx.stores.hot.put_with_room(&key, bytes, ctx.room_timeout))?;
        }
        add(ctx, job, &existing, planned, spec, &Plan { used: &[], segment_cycles: Some(cycles) })
    });
    // The sink's own errors come back as transient SegmentSink errors. A guest that panicked
    // ran its cycles all the same: they are recorded for the charge.
    if let Err(tiffin_zkvm::ZkvmError::GuestPanic { cycles, .. }) = &result {
        record_executed(ctx, job, *cycles)?;
    }
    let exec = result?;

    store_logs_and_journal(ctx, job, spec, &exec)?;
    if !spec.execute_only {
        // The receipts of the claims the guest verified, in the order its claim lists them.
        let used: Vec<String> =
            exec.assumptions_used.iter().map(|&i| spec.assumptions[i].clone()).collect();
        let resolve = !used.is_empty() && spec.receipt_kind == ReceiptKind::Succinct;
        let planned = planner.finish(resolve).map_err(|e| TaskError::permanent(e.to_string()))?;
        add(ctx, job, &existing, planned, spec, &Plan { used: &used, segment_cycles: None })?;
    }
    let output = ExecuteOutput {
        journal_hex: String::new(),
        journal_bytes: exec.journal.len() as u64,
        user_cycles: exec.user_cycles,
        total_cycles: exec.total_cycles,
        segments: exec.segments,
    };
    Ok(Outcome {
        output: serde_json::to_value(output).unwrap(),
        cleanup: Vec::new(),
        proven_cycles: 0,
    })
}

/// The keys of the tasks an earlier attempt of this execute added, and of the prove tasks
/// among them already done; both empty on a first attempt.
fn earlier_attempt(
    ctx: &Context,
    task: &Task<'_>,
) -> Result<(HashSet<String>, HashSet<String>), TaskError> {
    if task.lease.attempt <= 1 {
        return Ok((HashSet::new(), HashSet::new()));
    }
    let tasks = ctx.block_on(ctx.db.tasks(task.lease.job_id))?;
    let proven: HashSet<String> = tasks
        .iter()
        .filter(|t| t.kind == kinds::PROVE && t.state == TaskState::Done)
        .map(|t| t.key.clone())
        .collect();
    Ok((tasks.into_iter().map(|t| t.key).collect(), proven))
}

/// The receipts the guest may verify, read from the cold store in the spec's order.
fn load_assumptions(ctx: &Context, spec: &JobSpec) -> Result<Vec<Receipt>, TaskError> {
    let mut assumptions = Vec::with_capacity(spec.assumptions.len());
    for key in &spec.assumptions {
        let bytes = ctx.block_on(ctx.stores.cold.get(key))?;
        assumptions.push(decode::<Receipt>("assumption receipt", &bytes)?);
    }
    Ok(assumptions)
}

/// Stores the guest's logs, refuses a journal over the spec's limit, and stores the journal.
fn store_logs_and_journal(
    ctx: &Context,
    job: tiffin_taskdb::JobId,
    spec: &JobSpec,
    exec: &Execution,
) -> Result<(), TaskError> {
    let logs = [exec.stdout.as_slice(), exec.stderr.as_slice()].concat();
    if !logs.is_empty() {
        ctx.block_on(ctx.stores.cold.put(&blobs::logs(job), Bytes::from(logs)))?;
    }
    let max_journal = spec.max_journal_bytes.unwrap_or(DEFAULT_MAX_JOURNAL_BYTES);
    if exec.journal.len() as u64 > max_journal {
        return Err(TaskError::permanent(format!(
            "TIFFIN-WORKFLOW-005 the guest committed a journal of {} bytes; this cluster keeps \
             at most {max_journal} (--max-journal-size)",
            exec.journal.len()
        )));
    }
    // The journal goes to the cold store, not into the task's output: finalize and the
    // execute-only journal route read it there.
    ctx.block_on(ctx.stores.cold.put(&blobs::journal(job), Bytes::from(exec.journal.clone())))?;
    Ok(())
}

/// Records that `job`'s execution ran `cycles` so far ([`blobs::executed`]).
fn record_executed(ctx: &Context, job: tiffin_taskdb::JobId, cycles: u64) -> Result<(), TaskError> {
    let text = Bytes::from(cycles.to_string());
    ctx.block_on(ctx.stores.cold.put(&blobs::executed(job), text))?;
    Ok(())
}

/// Whether a segment must go to the hot store: unless the prove task among the `planned` ones
/// (the segment's) is already done, from an earlier attempt of the execute task.
fn needs_storing(planned: &[PlannedTask], proven: &HashSet<String>) -> bool {
    planned
        .iter()
        .filter(|t| matches!(t.step, Step::Prove { .. }))
        .all(|t| !proven.contains(&t.step.key().0))
}

/// What the planned tasks need to know besides the job's spec.
struct Plan<'a> {
    /// Keys of the assumption receipts the guest verified (known once it has halted, so only
    /// the resolve and finalize tasks, planned then, read it).
    used: &'a [String],
    /// The proving cost of the segment whose prove task is among them, declared as its work
    /// (TaskDB sums it into the backlog that `/admin/queue-report` shows).
    segment_cycles: Option<i64>,
}

fn add(
    ctx: &Context,
    job: tiffin_taskdb::JobId,
    existing: &HashSet<String>,
    planned: Vec<PlannedTask>,
    spec: &JobSpec,
    plan: &Plan<'_>,
) -> Result<(), TaskError> {
    let tasks: Vec<NewTask> = planned
        .into_iter()
        .filter(|t| !existing.contains(&t.step.key().0))
        .map(|t| to_new_task(t, spec, plan))
        .collect();
    if tasks.is_empty() {
        return Ok(());
    }
    let db: &dyn TaskDb = ctx.db.as_ref();
    ctx.block_on(db.add_tasks(job, tasks))?;
    Ok(())
}

fn to_new_task(t: PlannedTask, spec: &JobSpec, plan: &Plan<'_>) -> NewTask {
    let used = plan.used;
    let key = t.step.key().0;
    let mut deps: Vec<String> = t.deps.iter().map(|d| d.key().0).collect();
    let (kind, payload) = match t.step {
        Step::Prove { segment } => (
            kinds::PROVE,
            TaskPayload::Prove { segment, lift: spec.receipt_kind == ReceiptKind::Succinct },
        ),
        Step::Join { .. } => {
            (kinds::JOIN, TaskPayload::Join { left: deps[0].clone(), right: deps[1].clone() })
        }
        Step::Resolve => (
            kinds::JOIN,
            TaskPayload::Resolve { root: deps[0].clone(), assumptions: used.to_vec() },
        ),
        Step::Finalize => {
            let parts = deps.clone();
            // Finalize reads the journal from the execute task's output: wait for it too.
            deps.push(EXECUTE_KEY.to_string());
            (
                kinds::AUX,
                TaskPayload::Finalize {
                    parts,
                    image_id: spec.image_id.clone(),
                    receipt_kind: spec.receipt_kind,
                    assumptions: match spec.receipt_kind {
                        ReceiptKind::Composite => used.to_vec(),
                        ReceiptKind::Succinct => Vec::new(),
                    },
                },
            )
        }
    };
    let task = NewTask::new(key, kind, serde_json::to_value(payload).unwrap())
        .after(deps)
        .depth(ROOT_DEPTH - t.height as i32)
        .max_attempts(3);
    match (t.step, plan.segment_cycles) {
        (Step::Prove { .. }, Some(cycles)) => task.work(cycles),
        _ => task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Failed before the fix: a retried execute stored every segment again, those already
    /// proven included, and nothing ever read or deleted them.
    #[test]
    fn a_retry_stores_only_segments_not_yet_proven() {
        let mut planner = Planner::new(Shape::Succinct);
        let first = planner.add_segment().unwrap();
        let second = planner.add_segment().unwrap();
        let key_of = |planned: &[PlannedTask]| {
            let prove = planned.iter().find(|t| matches!(t.step, Step::Prove { .. })).unwrap();
            prove.step.key().0
        };
        let proven: HashSet<String> = [key_of(&first)].into_iter().collect();
        let table = [
            ("first attempt: nothing proven", &first, HashSet::new(), true),
            ("segment 0 proven", &first, proven.clone(), false),
            ("segment 1 not proven", &second, proven, true),
        ];
        for (name, planned, proven, want) in table {
            assert_eq!(needs_storing(planned, &proven), want, "{name}");
        }
    }
}
