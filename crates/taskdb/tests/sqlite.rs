//! The conformance suite on the SQLite backend (every registered scenario, one database file
//! each), and what only this backend's tests do.

#[macro_use]
mod common;

use std::sync::Arc;

use tiffin_taskdb::{Config, SqliteTaskDb, TaskDb};

async fn open(config: Config) -> (Arc<dyn TaskDb>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = SqliteTaskDb::open(dir.path().join("taskdb.sqlite"), config)
        .await
        .expect("open SQLite TaskDB");
    (Arc::new(db), dir)
}

fn main() {
    common::run(open);
}

async fn recent_service_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let open =
        || SqliteTaskDb::open(dir.path().join("taskdb.sqlite"), common::conformance::config());
    let db = open().await.expect("open SQLite TaskDB");
    common::conformance::serve_a_backlog_before_a_restart(Arc::new(db)).await;
    let db = open().await.expect("reopen SQLite TaskDB");
    common::conformance::newcomer_goes_first_after_a_restart(Arc::new(db)).await;
}
backend_test!(recent_service_survives_a_restart);
