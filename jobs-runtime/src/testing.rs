//! Support for tests against PostgreSQL: a fresh schema per test, dropped
//! when the test ends, and a plain skip when no PostgreSQL is reachable.
//! Not part of the public API.

use std::ops::Deref;

use jobs_core::StorageBackend;

use crate::postgres::PostgresStorage;

/// The environment variable naming the test database.
pub const URL_VAR: &str = "JOBS_TEST_POSTGRES_URL";

/// The test database when [`URL_VAR`] is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The URL of the test database.
pub fn postgres_url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A storage in a schema of its own, dropped with it.
pub struct TestPostgres {
    /// The storage.
    pub storage: PostgresStorage,
    url: String,
}

impl Deref for TestPostgres {
    type Target = dyn StorageBackend;

    fn deref(&self) -> &Self::Target {
        &self.storage
    }
}

impl TestPostgres {
    /// The database URL, for opening more connections to the same schema.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.storage.schema().to_owned();
        // Drop may run inside a runtime: clean up on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                        let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                            .execute(&mut conn)
                            .await;
                    }
                });
            }
        });
        let _ = cleanup.join();
    }
}

/// A migrated PostgreSQL storage in a new schema, or `None` when PostgreSQL
/// is not reachable and this is not CI: then the test says so on stderr
/// and passes as skipped.
///
/// # Panics
/// When PostgreSQL is not reachable and `CI=true`: CI must not skip.
pub async fn fresh_postgres() -> Option<TestPostgres> {
    let url = postgres_url();
    if let Err(error) = reachable(&url).await {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("CI=true but PostgreSQL at {url} is not usable: {error}");
        }
        return None;
    }
    let schema = format!("test_{:016x}", fastrand::u64(..));
    let storage = PostgresStorage::connect_with_schema(&url, &schema)
        .await
        .unwrap_or_else(|error| panic!("PostgreSQL at {url} answered, but: {error}"));
    Some(TestPostgres { storage, url })
}

/// Whether one connection opens within 5 seconds; asked once per test
/// binary, so that a machine without PostgreSQL skips at once.
async fn reachable(url: &str) -> Result<(), String> {
    static PROBE: tokio::sync::OnceCell<Result<(), String>> = tokio::sync::OnceCell::const_new();
    PROBE
        .get_or_init(|| async {
            use sqlx::Connection;
            let connect = sqlx::PgConnection::connect(url);
            let result = match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    Ok(())
                }
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err("no answer within 5 s".to_owned()),
            };
            if let Err(error) = &result
                && !std::env::var("CI").is_ok_and(|ci| ci == "true")
            {
                // Straight to the stream: libtest captures `eprintln!` of
                // passing tests, and a skip must be seen.
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: the PostgreSQL tests of this binary pass without running: PostgreSQL at {url} is not usable ({error}); start it or set {URL_VAR}"
                );
            }
            result
        })
        .await
        .clone()
}
