//! The conformance suite on the PostgreSQL backend, against a real throwaway server
//! (`tiffin_taskdb::testing`), one database per test. Fails (never skips) without PostgreSQL.

mod common;

use std::sync::Arc;

use tiffin_taskdb::{PostgresTaskDb, TaskDb};

async fn make() -> (Arc<dyn TaskDb>, ()) {
    let url = tiffin_taskdb::testing::fresh_database_url().await;
    let db = PostgresTaskDb::connect(&url, common::conformance::config())
        .await
        .unwrap_or_else(|e| panic!("connect to test PostgreSQL {url}: {e}"));
    (Arc::new(db), ())
}

conformance_suite!(make);
