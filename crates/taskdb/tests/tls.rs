//! The TaskDB over TLS (docs/operations.md, "TLS"): a real PostgreSQL with `ssl=on`, reached
//! with `sslmode=verify-full` and the CA that signed its certificate — one query shows the
//! session is encrypted — and refused, with `TIFFIN-TLS-005`, under another CA.

use sqlx::Connection as _;
use tiffin_taskdb::testing::TestPostgres;
use tiffin_taskdb::{Config, PostgresTaskDb, TaskDb as _};
use tiffin_tls::testing::TestCa;

#[tokio::test]
async fn postgres_with_verify_full_trusts_the_ca_file_and_refuses_another_ca() {
    let (ca, other) = (TestCa::new("db"), TestCa::new("other"));
    let issued = ca.issue_localhost("postgres");
    let pg = TestPostgres::start_tls(&issued.cert, &issued.key).expect("PostgreSQL with ssl=on");
    let with_ca = |ca: &TestCa| {
        format!("{}?sslmode=verify-full&sslrootcert={}", pg.admin_url(), ca.ca_file().display())
    };

    let db = PostgresTaskDb::connect(&with_ca(&ca), Config::default()).await.unwrap();
    assert!(db.pins().await.unwrap().is_empty(), "one TaskDB query over TLS");
    let mut conn = sqlx::PgConnection::connect(&with_ca(&ca)).await.unwrap();
    let (ssl,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(ssl, "the session is encrypted");

    let err = PostgresTaskDb::connect(&with_ca(&other), Config::default()).await.err().unwrap();
    let refused = tiffin_tls::untrusted_certificate(&err).unwrap_or_else(|| panic!("{err}"));
    assert_eq!(refused.code(), "TIFFIN-TLS-005", "{refused}");
}
