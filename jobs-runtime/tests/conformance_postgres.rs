//! The storage conformance suite on PostgreSQL, through the `Storage`
//! handle: a new schema per test, so tests run in parallel without seeing
//! each other's jobs. Without a reachable PostgreSQL each test prints
//! `SKIPPED` and passes, except under `CI=true`, where it fails.

use std::ops::Deref;

use jobs_runtime::Storage;
use jobs_runtime::testing::{TestPostgres, fresh_postgres};

/// The handle over a fresh schema, dropped (after the handle) when the
/// test ends.
struct TestStorage {
    storage: Storage,
    _schema: TestPostgres,
}

impl Deref for TestStorage {
    type Target = Storage;

    fn deref(&self) -> &Storage {
        &self.storage
    }
}

async fn fresh() -> Option<TestStorage> {
    let pg = fresh_postgres().await?;
    Some(TestStorage {
        storage: Storage::new(pg.storage.clone()),
        _schema: pg,
    })
}

jobs_runtime::storage_conformance_tests!(fresh);

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

/// An operator's delete of a running job tells every listening server at
/// once (`NOTIFY`), so that its server stops it without waiting for its
/// next lease renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_notifies_revoked_leases() {
    let Some(storage) = fresh().await else {
        return;
    };
    jobs_runtime::conformance::listen_notifies_revoked_leases(&storage).await;
}
