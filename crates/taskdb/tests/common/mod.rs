//! Shared harness: the conformance scenarios, each registered where it is defined with
//! `scenario!`, and `run`, which makes one test of each registered scenario on a backend (a
//! custom test harness: `harness = false` for `tests/sqlite.rs` and `tests/postgres.rs`).
//! There is no list of names to keep: a scenario function that is not registered is never
//! used, and the dead-code lint (`-D warnings` in `scripts/lint`) refuses it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use libtest_mimic::{Arguments, Trial};
use tiffin_taskdb::{Config, TaskDb};

/// What a scenario or a backend's own test returns.
pub type Run = Pin<Box<dyn Future<Output = ()>>>;

/// One conformance scenario: its test name, the configuration its fresh database is opened
/// with, and what it does with that database.
pub struct Scenario {
    pub name: &'static str,
    pub config: fn() -> Config,
    pub run: fn(Arc<dyn TaskDb>) -> Run,
}

inventory::collect!(Scenario);

/// A test of one backend only (e.g. one that reopens its database), registered in that
/// backend's test file with `backend_test!`.
pub struct BackendTest {
    pub name: &'static str,
    pub run: fn() -> Run,
}

inventory::collect!(BackendTest);

/// Registers the scenario `async fn $name(db: Arc<dyn TaskDb>)` defined just above it, run on
/// a database opened with `conformance::config()` or with the given configuration function.
#[macro_export]
macro_rules! scenario {
    ($name:ident) => {
        $crate::scenario!($name, $crate::common::conformance::config);
    };
    ($name:ident, $config:path) => {
        inventory::submit! {
            $crate::common::Scenario {
                name: stringify!($name),
                config: $config,
                run: |db| Box::pin($name(db)),
            }
        }
    };
}

/// Registers the backend test `async fn $name()` defined just above it.
#[macro_export]
macro_rules! backend_test {
    ($name:ident) => {
        inventory::submit! {
            $crate::common::BackendTest { name: stringify!($name), run: || Box::pin($name()) }
        }
    };
}

// After the macros, so that the scenarios see them.
pub mod conformance;

/// The test binary's `main`: one test per registered scenario, each on a fresh database from
/// `open(config)` (the second value is kept alive until the scenario ends: a temporary
/// directory, for instance), and one per backend test; each in its own runtime of four
/// workers, as `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` would run it.
pub fn run<Open, Fut, Guard>(open: Open)
where
    Open: Fn(Config) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = (Arc<dyn TaskDb>, Guard)>,
{
    let mut trials: Vec<Trial> = inventory::iter::<Scenario>
        .into_iter()
        .map(|s| {
            Trial::test(s.name, move || {
                on_runtime(async move {
                    let (db, _guard) = open((s.config)()).await;
                    (s.run)(db).await;
                });
                Ok(())
            })
        })
        .collect();
    trials.extend(inventory::iter::<BackendTest>.into_iter().map(|t| {
        Trial::test(t.name, move || {
            on_runtime((t.run)());
            Ok(())
        })
    }));
    trials.sort_by_key(|t| t.name().to_string());
    if let Some(twins) = trials.windows(2).find(|w| w[0].name() == w[1].name()) {
        panic!("two tests are named {}", twins[0].name());
    }
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

fn on_runtime(test: impl Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a test runtime")
        .block_on(test);
}
