//! Random DAGs (proptest) completed by concurrent workers, each task exactly once.

use super::*;

/// A random job: task i's prerequisites are earlier tasks; tasks arrive in batches while the
/// `exec` task (held by the "executor") is unfinished.
#[derive(Debug, Clone)]
struct RandomJob {
    prereqs: Vec<Vec<usize>>,
    batches: Vec<usize>,
    seed: u64,
}

fn random_job() -> impl proptest::strategy::Strategy<Value = RandomJob> {
    use proptest::prelude::*;
    (1usize..20, any::<u64>()).prop_flat_map(|(n, seed)| {
        let prereqs = proptest::collection::vec(
            proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
            n,
        );
        let batches = proptest::collection::vec(1usize..6, 1..5);
        (prereqs, batches).prop_map(move |(p, batches)| RandomJob {
            prereqs: p
                .into_iter()
                .enumerate()
                .map(|(i, idx)| {
                    let mut v: Vec<usize> =
                        if i == 0 { vec![] } else { idx.iter().map(|x| x.index(i)).collect() };
                    v.sort();
                    v.dedup();
                    v
                })
                .collect(),
            batches,
            seed,
        })
    })
}

struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

async fn run_random_job(db: &Arc<dyn TaskDb>, case: RandomJob, tenant: &str) {
    let n = case.prereqs.len();
    let mut rng = Rng(case.seed | 1);
    let mk = |i: usize| {
        task(&format!("t{i}"), if i.is_multiple_of(2) { "a" } else { "b" })
            .after(case.prereqs[i].iter().map(|p| format!("t{p}")))
            .max_attempts(1000)
            .depth((n - i) as i32)
    };
    // cut the tasks into batches
    let mut cuts = Vec::new();
    let mut at = 0;
    for b in &case.batches {
        if at >= n {
            break;
        }
        let end = (at + b).min(n);
        cuts.push((at, end));
        at = end;
    }
    if at < n {
        cuts.push((at, n));
    }
    let mut first = vec![task("exec", "exec")];
    first.extend((cuts[0].0..cuts[0].1).map(mk));
    let job = db.create_job(NewJob::new(tenant, first)).await.unwrap();
    let mut next_batch = 1;
    let exec = claim(db, &["exec"]).await.unwrap();
    let mut exec = Some(exec);
    let mut held: Vec<(Lease, bool)> = Vec::new();
    let mut done: HashMap<String, usize> = HashMap::new();
    let kinds = [k("a"), k("b")];
    for step in 0.. {
        assert!(step < 20_000, "random job did not finish");
        if db.job(job).await.unwrap().state == JobState::Succeeded {
            break;
        }
        match rng.next(4) {
            0 | 1 => {
                let expire = rng.next(5) == 0;
                let lease = if expire { Duration::from_millis(1) } else { LONG };
                match db.claim("p", &kinds, lease).await.unwrap() {
                    Some(l) => held.push((l, expire)),
                    None if held.is_empty() && exec.is_none() => {
                        db.requeue_expired().await.unwrap();
                    }
                    None => {}
                }
            }
            2 => {
                if !held.is_empty() {
                    let (l, expired) = held.swap_remove(rng.next(held.len()));
                    if expired {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        let e = db.complete(&l, json!(null)).await.unwrap_err();
                        assert_eq!(e.code(), "TIFFIN-TASKDB-020");
                        db.requeue_expired().await.unwrap();
                    } else {
                        db.complete(&l, json!(l.key)).await.unwrap();
                        *done.entry(l.key.clone()).or_default() += 1;
                    }
                }
            }
            _ => {
                if next_batch < cuts.len() {
                    let (s, e) = cuts[next_batch];
                    db.add_tasks(job, (s..e).map(mk).collect()).await.unwrap();
                    next_batch += 1;
                } else if let Some(l) = exec.take() {
                    db.complete(&l, json!("exec")).await.unwrap();
                    *done.entry(l.key.clone()).or_default() += 1;
                }
            }
        }
    }
    assert_eq!(done.len(), n + 1);
    assert!(done.values().all(|&c| c == 1), "every task done exactly once: {done:?}");
    let st = db.job(job).await.unwrap();
    assert_eq!(st.count_state(TaskState::Done), (n + 1) as i64);
    assert!(held.iter().all(|(_, expired)| *expired), "no live lease remains");
}

async fn random_dags_complete_exactly_once(db: Arc<dyn TaskDb>) {
    use proptest::test_runner::{Config as PtConfig, TestRunner};
    let handle = tokio::runtime::Handle::current();
    let mut runner =
        TestRunner::new(PtConfig { cases: 24, max_shrink_iters: 32, ..PtConfig::default() });
    let counter = AtomicUsize::new(0);
    runner
        .run(&random_job(), |case| {
            let db = db.clone();
            let tenant = format!("p{}", counter.fetch_add(1, Ordering::Relaxed));
            tokio::task::block_in_place(|| handle.block_on(run_random_job(&db, case, &tenant)));
            Ok(())
        })
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    db.requeue_expired().await.unwrap();
    assert_eq!(running_total(&db).await, 0);
}
scenario!(random_dags_complete_exactly_once);
