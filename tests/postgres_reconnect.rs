//! The server survives its database connections being terminated
//! (`pg_terminate_backend`) mid-run: it reconnects, finishes every job, and
//! its `LISTEN` connection comes back too. Its own test binary, so that
//! terminating connections touches no other test.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::wait_within;
use jobs::prelude::*;
use jobs::storage::PostgresStorage;
use jobs_runtime::testing::fresh_postgres;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

static RUNS: LazyLock<Mutex<HashMap<i64, u32>>> = LazyLock::new(Default::default);

/// Counts its runs, after a short pause.
#[job(retries = 5, backoff = "50ms")]
async fn counted(n: i64) {
    tokio::time::sleep(Duration::from_millis(1)).await;
    *RUNS.lock().unwrap().entry(n).or_default() += 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_carries_on_after_its_connections_are_terminated() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let schema = pg.storage.schema().to_owned();
    // The server's own pool, named so that only its sessions are terminated.
    let app = format!("jobs_reconnect_{schema}");
    let options = PgConnectOptions::from_str(pg.url())
        .unwrap()
        .application_name(&app);
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .connect_with(options)
        .await
        .unwrap();
    let server_storage = Storage::new(PostgresStorage::from_pool(pool, &schema).await.unwrap());
    // A second handle, as another process would have: its enqueues reach
    // the server through NOTIFY only.
    let other_process = Storage::new(pg.storage.clone());
    let client = Client::new(other_process.clone());

    let total = 3000;
    client
        .enqueue_many((0..total).map(|n| Counted { n }))
        .await
        .unwrap();
    let server = Server::builder(server_storage)
        .workers(8)
        // Only a notification wakes it quickly: a broken LISTEN would show.
        .poll_interval(Duration::from_secs(30))
        .start()
        .unwrap();
    let succeeded = || async { other_process.counts().await.unwrap().get(State::Succeeded) };
    wait_within("some jobs to run", Duration::from_secs(60), || async {
        succeeded().await >= 500
    })
    .await;

    let (terminated,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                               WHERE application_name = $1) AS t",
    )
    .bind(&app)
    .fetch_one(pg.storage.pool())
    .await
    .unwrap();
    assert!(terminated >= 1, "the server's connections were found");

    wait_within("every job to succeed", Duration::from_secs(120), || async {
        succeeded().await == total as u64
    })
    .await;

    // After the storm: a job enqueued elsewhere starts at once, so the
    // server is listening again.
    wait_within("the listener to be back", Duration::from_secs(20), || async {
        let (listening,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
        )
        .bind(&app)
        .fetch_one(pg.storage.pool())
        .await
        .unwrap();
        listening >= 1
    })
    .await;
    let started = Instant::now();
    let late = counted::enqueue(&client, total).await.unwrap();
    // The deadline stays under the 30 s poll interval: only NOTIFY can make it.
    wait_within("the late job", Duration::from_secs(20), || async {
        other_process.job(late).await.unwrap().unwrap().state == State::Succeeded
    })
    .await;
    let woke_in = started.elapsed();
    server.shutdown().await;

    let runs = RUNS.lock().unwrap();
    assert_eq!(runs.len(), total as usize + 1, "every job ran");
    let twice: Vec<_> = runs.iter().filter(|(_, runs)| **runs > 1).collect();
    assert!(
        twice.is_empty(),
        "no job ran twice (no lease expired): {twice:?}"
    );
    eprintln!("terminated {terminated} connections; late job ran {woke_in:?} after enqueue");
}
