//! The storage conformance suite on PostgreSQL: a new schema per test, so
//! tests run in parallel without seeing each other's jobs. Without a
//! reachable PostgreSQL each test prints `SKIPPED` and passes, except under
//! `CI=true`, where it fails.

use jobs_runtime::testing::fresh_postgres;

jobs_core::storage_conformance_tests!(fresh_postgres);

/// The fetch reads the partial index of enqueued jobs.
#[tokio::test]
async fn fetch_uses_the_partial_index() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let schema = pg.storage.schema().to_owned();
    let mut conn = pg.storage.pool().acquire().await.unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "EXPLAIN SELECT id FROM {schema}.jobs_job WHERE state = 'Enqueued' AND queue = 'q' ORDER BY id LIMIT 10"
    )))
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    sqlx::query("RESET enable_seqscan")
        .execute(&mut *conn)
        .await
        .unwrap();
    let plan: Vec<_> = plan.into_iter().map(|row| row.0).collect();
    assert!(
        plan.iter().any(|line| line.contains("jobs_job_enqueued")),
        "{plan:#?}"
    );
}

/// Tables and our migrations table live in the configured schema; nothing
/// lands in `public`, and `_sqlx_migrations` is never used.
#[tokio::test]
async fn everything_lives_in_the_configured_schema() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
    )
    .bind(pg.storage.schema())
    .fetch_all(pg.storage.pool())
    .await
    .unwrap();
    let tables: Vec<_> = tables.into_iter().map(|t| t.0).collect();
    assert!(tables.contains(&"jobs_job".to_owned()), "{tables:?}");
    assert!(tables.contains(&"jobs_migrations".to_owned()), "{tables:?}");
    assert!(
        !tables.contains(&"_sqlx_migrations".to_owned()),
        "{tables:?}"
    );
}
