//! The storage conformance suite on SQLite, through the `Storage` handle:
//! a new database file per test, and again in memory (where no other
//! process can write, so the storage has no notifications).

use std::ops::Deref;

use jobs_runtime::Storage;
use jobs_runtime::sqlite::SqliteStorage;

/// A fresh SQLite file behind the handle, deleted with its directory when
/// the test ends.
struct TestStorage {
    storage: Storage,
    sqlite: SqliteStorage,
    _dir: tempfile::TempDir,
}

impl Deref for TestStorage {
    type Target = Storage;

    fn deref(&self) -> &Storage {
        &self.storage
    }
}

async fn fresh_sqlite() -> Option<TestStorage> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let sqlite = SqliteStorage::connect(&url).await.expect("open SQLite");
    Some(TestStorage {
        storage: Storage::new(sqlite.clone()),
        sqlite,
        _dir: dir,
    })
}

jobs_runtime::storage_conformance_tests!(fresh_sqlite);

/// The suite on an in-memory database.
mod in_memory {
    use jobs_runtime::Storage;
    use jobs_runtime::sqlite::SqliteStorage;

    async fn fresh_in_memory() -> Option<Storage> {
        let sqlite = SqliteStorage::connect("sqlite::memory:")
            .await
            .expect("open SQLite in memory");
        Some(Storage::new(sqlite))
    }

    jobs_runtime::storage_conformance_tests!(fresh_in_memory, notifications = false);
}

/// Our migrations are tracked in our own table, never `_sqlx_migrations`.
#[tokio::test]
async fn migrations_use_our_own_table() {
    let storage = fresh_sqlite().await.unwrap();
    let tables: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(storage.sqlite.pool())
            .await
            .unwrap();
    let tables: Vec<_> = tables.into_iter().map(|t| t.0).collect();
    assert!(tables.contains(&"jobs_migrations".to_owned()), "{tables:?}");
    assert!(
        !tables.contains(&"_sqlx_migrations".to_owned()),
        "{tables:?}"
    );
}
