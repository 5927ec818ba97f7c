//! Helpers shared by the integration tests: a fresh SQLite file per test and
//! waiting on a condition with a deadline (never sleep-and-hope).
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use jobs::storage::PostgresStorage;
use jobs::{JobId, JobRecord, ServerBuilder, State, Storage};
use jobs_runtime::testing::{TestPostgres, fresh_postgres};

/// How long any condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A migrated SQLite storage in a new temporary directory (deleted on drop).
pub async fn temp_storage() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = open(&dir).await;
    (dir, storage)
}

/// Opens (again) the database file of a temporary directory.
pub async fn open(dir: &tempfile::TempDir) -> Storage {
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    Storage::connect(&url).await.expect("connect to SQLite")
}

/// A fresh storage for one test, of either kind.
pub struct Fixture {
    /// The storage.
    pub storage: Storage,
    kind: &'static str,
    place: Place,
}

enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(TestPostgres),
}

impl Fixture {
    /// A new SQLite file.
    pub async fn sqlite() -> Fixture {
        let (dir, storage) = temp_storage().await;
        Fixture {
            storage,
            kind: "sqlite",
            place: Place::Sqlite(dir),
        }
    }

    /// A new PostgreSQL schema, or `None` to skip (see `fresh_postgres`).
    pub async fn postgres() -> Option<Fixture> {
        let pg = fresh_postgres().await?;
        Some(Fixture {
            storage: Storage::new(pg.storage.clone()),
            kind: "postgres",
            place: Place::Postgres(pg),
        })
    }

    /// The `jobs` command-line tool's options naming this storage:
    /// `--database URL`, and `--schema NAME` on PostgreSQL.
    pub fn cli_storage_args(&self) -> Vec<String> {
        match &self.place {
            Place::Sqlite(dir) => vec![
                "--database".to_owned(),
                format!("sqlite://{}", dir.path().join("jobs.db").display()),
            ],
            Place::Postgres(pg) => vec![
                "--database".to_owned(),
                pg.url().to_owned(),
                "--schema".to_owned(),
                pg.storage.schema().to_owned(),
            ],
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn storage_kind(&self) -> &'static str {
        self.kind
    }

    /// `name`, made unique to this storage kind, for side effects recorded
    /// in statics that both kinds' tests share.
    pub fn key(&self, name: &str) -> String {
        format!("{}-{name}", self.kind)
    }

    /// The storage's backend, opened anew beside the handle: for tests that
    /// play a server by hand (a server that fetched a job and died, one of
    /// a newer version), as another process would.
    pub async fn backend(&self) -> Box<dyn jobs::storage::StorageBackend> {
        match &self.place {
            Place::Sqlite(dir) => {
                let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
                Box::new(
                    jobs::storage::SqliteStorage::connect(&url)
                        .await
                        .expect("reopen SQLite"),
                )
            }
            Place::Postgres(pg) => Box::new(pg.storage.clone()),
        }
    }

    /// The SQLite file's URL, for the application's own pool.
    pub fn sqlite_url(&self) -> Option<String> {
        match &self.place {
            Place::Sqlite(dir) => {
                Some(format!("sqlite://{}", dir.path().join("jobs.db").display()))
            }
            Place::Postgres(_) => None,
        }
    }

    /// The PostgreSQL storage (its pool, its schema), for the
    /// application's own transactions.
    pub fn postgres_storage(&self) -> Option<&PostgresStorage> {
        match &self.place {
            Place::Postgres(pg) => Some(&pg.storage),
            Place::Sqlite(_) => None,
        }
    }

    /// The same database opened anew, as another process would.
    pub async fn reopen(&self) -> Storage {
        match &self.place {
            Place::Sqlite(dir) => open(dir).await,
            Place::Postgres(pg) => {
                let schema = pg.storage.schema();
                let storage = PostgresStorage::connect_with_schema(pg.url(), schema)
                    .await
                    .expect("reopen PostgreSQL");
                Storage::new(storage)
            }
        }
    }
}

/// Runs each `async fn case(fx: &Fixture)` as two tests, `sqlite::case` and
/// `postgres::case`.
#[macro_export]
macro_rules! on_every_storage {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = $crate::common::Fixture::sqlite().await;
                    super::$case(&fixture).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(fixture) = $crate::common::Fixture::postgres().await else { return };
                    super::$case(&fixture).await;
                }
            )*
        }
    };
}

/// A server builder with short intervals, so tests finish fast.
pub fn fast_server(storage: &Storage) -> ServerBuilder {
    jobs::Server::builder(storage.clone())
        .workers(4)
        .poll_interval(Duration::from_millis(50))
        .schedule_interval(Duration::from_millis(50))
        .rescue_interval(Duration::from_millis(100))
        .shutdown_timeout(Duration::from_secs(5))
        .heartbeat_interval(Duration::from_millis(200))
        .leader_ttl(Duration::from_secs(1))
}

/// Polls `condition` every 10 ms until it holds; panics with `what` after
/// [`DEADLINE`].
pub async fn wait_until<F, Fut>(what: &str, condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_within(what, DEADLINE, condition).await;
}

/// Polls `condition` every 10 ms until it holds; panics with `what` after
/// `deadline`.
pub async fn wait_within<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the job is in `state` and returns it.
pub async fn wait_for_state(storage: &Storage, id: impl Into<JobId>, state: State) -> JobRecord {
    let id = id.into();
    wait_until(&format!("job {id} to be {state}"), || async {
        job(storage, id).await.state == state
    })
    .await;
    job(storage, id).await
}

/// Reads a job that must exist.
pub async fn job(storage: &Storage, id: impl Into<JobId>) -> JobRecord {
    let id = id.into();
    storage
        .job(id)
        .await
        .expect("read job")
        .unwrap_or_else(|| panic!("job {id} exists"))
}

/// The states of a job's history, oldest first.
pub async fn history_states(storage: &Storage, id: impl Into<JobId>) -> Vec<State> {
    storage
        .history(id)
        .await
        .expect("read history")
        .into_iter()
        .map(|change| change.state)
        .collect()
}

/// What each key saw, across all tests of a binary (each test uses keys
/// of its own): jobs and filters record their steps with [`see`], tests
/// read them with [`seen`].
static SEEN: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, Vec<String>>>> =
    std::sync::LazyLock::new(Default::default);

/// Records that `key` saw `what`.
pub fn see(key: &str, what: impl Into<String>) {
    SEEN.lock()
        .unwrap()
        .entry(key.to_owned())
        .or_default()
        .push(what.into());
}

/// What `key` saw, in order.
pub fn seen(key: &str) -> Vec<String> {
    SEEN.lock().unwrap().get(key).cloned().unwrap_or_default()
}
