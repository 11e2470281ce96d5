//! The conformance suite on the SQLite backend.

mod common;

use std::sync::Arc;

use tiffin_taskdb::{SqliteTaskDb, TaskDb};

async fn make() -> (Arc<dyn TaskDb>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = SqliteTaskDb::open(dir.path().join("taskdb.sqlite"), common::conformance::config())
        .await
        .expect("open SQLite TaskDB");
    (Arc::new(db), dir)
}

conformance_suite!(make);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recent_service_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let open =
        || SqliteTaskDb::open(dir.path().join("taskdb.sqlite"), common::conformance::config());
    let db = open().await.expect("open SQLite TaskDB");
    common::conformance::serve_a_backlog_before_a_restart(Arc::new(db)).await;
    let db = open().await.expect("reopen SQLite TaskDB");
    common::conformance::newcomer_goes_first_after_a_restart(Arc::new(db)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_service_is_forgotten() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("taskdb.sqlite");
    let db = SqliteTaskDb::open(path, common::conformance::forgetful_config()).await.unwrap();
    common::conformance::old_service_is_forgotten(Arc::new(db)).await;
}
