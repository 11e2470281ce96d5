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
