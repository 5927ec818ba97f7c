//! The storage conformance suite on SQLite: a new database file per test.

use std::ops::Deref;

use jobs_core::StorageBackend;
use jobs_runtime::sqlite::SqliteStorage;

/// A fresh SQLite file, deleted with its directory when the test ends.
struct TestStorage {
    storage: SqliteStorage,
    _dir: tempfile::TempDir,
}

impl Deref for TestStorage {
    type Target = dyn StorageBackend;

    fn deref(&self) -> &Self::Target {
        &self.storage
    }
}

async fn fresh_sqlite() -> Option<TestStorage> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let storage = SqliteStorage::connect(&url).await.expect("open SQLite");
    Some(TestStorage { storage, _dir: dir })
}

jobs_core::storage_conformance_tests!(fresh_sqlite);

/// Our migrations are tracked in our own table, never `_sqlx_migrations`.
#[tokio::test]
async fn migrations_use_our_own_table() {
    let storage = fresh_sqlite().await.unwrap();
    let tables: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(storage.storage.pool())
            .await
            .unwrap();
    let tables: Vec<_> = tables.into_iter().map(|t| t.0).collect();
    assert!(tables.contains(&"jobs_migrations".to_owned()), "{tables:?}");
    assert!(
        !tables.contains(&"_sqlx_migrations".to_owned()),
        "{tables:?}"
    );
}
