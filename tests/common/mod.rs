//! Helpers shared by the integration tests: a fresh SQLite file per test and
//! waiting on a condition with a deadline (never sleep-and-hope).
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use jobs::{JobId, JobRecord, ServerBuilder, State, Storage};

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

/// A server builder with short intervals, so tests finish fast.
pub fn fast_server(storage: &Storage) -> ServerBuilder {
    jobs::Server::builder(storage.clone())
        .workers(4)
        .poll_interval(Duration::from_millis(50))
        .schedule_interval(Duration::from_millis(50))
        .rescue_interval(Duration::from_millis(100))
        .shutdown_timeout(Duration::from_secs(5))
}

/// Polls `condition` every 10 ms until it holds; panics with `what` after
/// [`DEADLINE`].
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !condition().await {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the job is in `state` and returns it.
pub async fn wait_for_state(storage: &Storage, id: JobId, state: State) -> JobRecord {
    wait_until(&format!("job {id} to be {state}"), || async {
        job(storage, id).await.state == state
    })
    .await;
    job(storage, id).await
}

/// Reads a job that must exist.
pub async fn job(storage: &Storage, id: JobId) -> JobRecord {
    storage
        .job(id)
        .await
        .expect("read job")
        .unwrap_or_else(|| panic!("job {id} exists"))
}

/// The states of a job's history, oldest first.
pub async fn history_states(storage: &Storage, id: JobId) -> Vec<State> {
    storage
        .history(id)
        .await
        .expect("read history")
        .into_iter()
        .map(|change| change.state)
        .collect()
}
