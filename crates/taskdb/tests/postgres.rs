//! The conformance suite on the PostgreSQL backend, against a real throwaway server
//! (`tiffin_taskdb::testing`), one database per test. Fails (never skips) without PostgreSQL.
//! Below it, what only PostgreSQL does: which rows a claim or completion may wait for, and the
//! housekeeper's repair of a job whose end was interrupted.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sqlx::Connection;
use tiffin_taskdb::{Config, JobState, Kind, NewJob, NewTask, PostgresTaskDb, TaskDb};

async fn open(config: Config) -> (Arc<dyn TaskDb>, ()) {
    let (db, _url) = connect_with(config).await;
    (Arc::new(db), ())
}

fn main() {
    common::run(open);
}

async fn connect() -> (PostgresTaskDb, String) {
    connect_with(common::conformance::config()).await
}

async fn connect_with(config: Config) -> (PostgresTaskDb, String) {
    let url = tiffin_taskdb::testing::fresh_database_url().await;
    let db = PostgresTaskDb::connect(&url, config)
        .await
        .unwrap_or_else(|e| panic!("connect to test PostgreSQL {url}: {e}"));
    (db, url)
}

async fn recent_service_survives_a_restart() {
    let (db, url) = connect().await;
    common::conformance::serve_a_backlog_before_a_restart(Arc::new(db)).await;
    let db = PostgresTaskDb::connect(&url, common::conformance::config()).await.unwrap();
    common::conformance::newcomer_goes_first_after_a_restart(Arc::new(db)).await;
}
backend_test!(recent_service_survives_a_restart);

const LONG: Duration = Duration::from_secs(60);
/// Far longer than a claim or completion takes here, far shorter than "blocked for good".
const PATIENCE: Duration = Duration::from_secs(5);

fn kinds() -> Vec<Kind> {
    vec![Kind::new("x")]
}

/// Holds a row lock from another connection, as a slow transaction (one waiting for its commit
/// to reach the disk) would.
async fn hold_lock(url: &str, sql: &str) -> sqlx::PgConnection {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    let rows = sqlx::query(sql).execute(&mut conn).await.unwrap().rows_affected();
    assert!(rows > 0, "{sql} locked nothing");
    conn
}

async fn completions_do_not_wait_for_the_job_row() {
    let (db, url) = connect().await;
    let tasks = (0..3).map(|i| NewTask::new(format!("s{i}"), "x", json!(i))).collect();
    let job = db.create_job(NewJob::new("t", tasks)).await.unwrap();
    let ls = db.claim_batch("a", &kinds(), LONG, 3).await.unwrap();
    let _holder =
        hold_lock(&url, &format!("SELECT 1 FROM jobs WHERE id = '{job}' FOR UPDATE")).await;
    // sinks that are not the job's last complete while another transaction holds the job row
    for l in &ls[..2] {
        let c = tokio::time::timeout(PATIENCE, db.complete(l, json!(null)))
            .await
            .expect("a sink's completion waited for the job row")
            .unwrap();
        assert_eq!(c.job_state, JobState::Running);
    }
    let out = tokio::time::timeout(PATIENCE, db.complete_batch(vec![(ls[2].clone(), json!(1))]));
    // the last one does lock the job row to end the job: it waits until the holder is gone
    assert!(out.await.is_err(), "the job's last completion ends it under the job lock");
    drop(_holder);
    let st = tokio::time::timeout(PATIENCE, async {
        loop {
            db.requeue_expired().await.unwrap();
            let st = db.job(job).await.unwrap();
            if st.state != JobState::Running {
                return st;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the job ends once the holder is gone (its end resumes, or the housekeeper)");
    assert_eq!(st.state, JobState::Succeeded);
    assert_eq!(st.remaining, 0);
}
backend_test!(completions_do_not_wait_for_the_job_row);

async fn claims_and_completions_do_not_wait_for_the_stream_row() {
    let (db, url) = connect().await;
    let tasks = (0..4).map(|i| NewTask::new(format!("s{i}"), "x", json!(i))).collect();
    let job = db.create_job(NewJob::new("t", tasks)).await.unwrap();
    // as a transaction updating the stream (its base count, its settings) until its commit
    let _holder = hold_lock(&url, "SELECT 1 FROM streams FOR NO KEY UPDATE").await;
    let step = async {
        let one = db.claim("a", &kinds(), LONG).await.unwrap().unwrap();
        let more = db.claim_batch("a", &kinds(), LONG, 3).await.unwrap();
        assert_eq!(more.len(), 3);
        db.complete(&one, json!(null)).await.unwrap();
        let done = more.into_iter().map(|l| (l, json!(null))).collect();
        db.complete_batch(done).await.unwrap()
    };
    let out = tokio::time::timeout(PATIENCE, step).await.expect("waited for the stream row");
    assert!(out.iter().all(|r| r.is_ok()));
    assert_eq!(db.job(job).await.unwrap().state, JobState::Succeeded);
    drop(_holder);
    let running: i64 = db.streams().await.unwrap().iter().map(|s| s.running).sum();
    assert_eq!(running, 0);
}
backend_test!(claims_and_completions_do_not_wait_for_the_stream_row);

async fn housekeeper_ends_a_job_whose_end_was_interrupted() {
    let (db, _url) = connect().await;
    let job = db
        .create_job(NewJob::new("t", vec![NewTask::new("only", "x", json!(null))]))
        .await
        .unwrap();
    let l = db.claim("a", &kinds(), LONG).await.unwrap().unwrap();
    // the completion's first statement commits; the process dies before the second
    let status: String =
        sqlx::query_scalar("SELECT o_status FROM tiffin_complete_many($1, $2, $3)")
            .bind(vec![l.task_id])
            .bind(vec![l.attempt])
            .bind(vec![json!("out")])
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(status, "ok");
    let st = db.job(job).await.unwrap();
    assert_eq!((st.state, st.remaining), (JobState::Running, 0), "done, but not yet ended");
    assert_eq!(db.requeue_expired().await.unwrap(), 0, "no task was requeued");
    let st = db.job(job).await.unwrap();
    assert_eq!(st.state, JobState::Succeeded);
    assert!(st.finished_at.is_some());
    // a job with unfinished work is left alone
    let busy =
        db.create_job(NewJob::new("t", vec![NewTask::new("w", "x", json!(null))])).await.unwrap();
    db.requeue_expired().await.unwrap();
    assert_eq!(db.job(busy).await.unwrap().state, JobState::Running);
}
backend_test!(housekeeper_ends_a_job_whose_end_was_interrupted);

/// The scheduler's functions in the database are exactly those of `src/postgres/functions.sql`
/// (one current definition each; the ones no code calls were dropped), and applying the file
/// again — as every process does when it connects, several at once — changes nothing.
async fn the_scheduler_functions_are_the_ones_of_the_functions_file() {
    let (db, url) = connect().await;
    let file = include_str!("../src/postgres/functions.sql");
    let mut defined: Vec<String> = file
        .lines()
        .filter_map(|l| l.strip_prefix("CREATE OR REPLACE FUNCTION "))
        .map(|l| l.split('(').next().unwrap().trim().to_string())
        .collect();
    defined.sort();
    assert!(defined.contains(&"tiffin_claim_batch".to_string()), "{defined:?}");
    let installed = || async {
        let mut names: Vec<String> = sqlx::query_scalar(
            "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
              WHERE n.nspname = current_schema() AND p.proname LIKE 'tiffin\\_%'",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        names.sort();
        names
    };
    assert_eq!(installed().await, defined, "one definition each, nothing else");
    let again = (0..3).map(|_| PostgresTaskDb::connect(&url, common::conformance::config()));
    for db in futures::future::join_all(again).await {
        db.expect("concurrent connects re-apply the functions");
    }
    assert_eq!(installed().await, defined);
}
backend_test!(the_scheduler_functions_are_the_ones_of_the_functions_file);
