//! The hot path under bad input and load, on every storage: an outcome the
//! database cannot store never holds back another, a server never holds
//! more jobs than it can run and record, jobs fetched ahead are given back
//! at shutdown, and no finished job is reported as a lost lease.
//!
//! Log lines are captured (one subscriber for the binary) so that tests can
//! assert what the server did *not* say.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use common::*;
use jobs::prelude::*;
use jobs::{MAX_TEXT_LEN, NUL_REPLACEMENT};
use tokio::sync::Semaphore;

/// Every log line of this binary, for assertions on what was said.
static LOG: LazyLock<Arc<Mutex<Vec<u8>>>> = LazyLock::new(|| {
    let log = Arc::new(Mutex::new(Vec::new()));
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter("jobs_runtime=warn")
        .with_ansi(false)
        .with_writer(move || LogWriter(writer.clone()))
        .init();
    log
});

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log lines of this binary that contain `text` (no test here loses a
/// lease on purpose, so any such line is a fault).
fn logged(text: &str) -> Vec<String> {
    let log = LOG.lock().unwrap();
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|line| line.contains(text))
        .map(str::to_owned)
        .collect()
}

static RUNS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Default::default);

fn runs(key: &str) -> usize {
    RUNS.lock().unwrap().get(key).copied().unwrap_or(0)
}

/// Records that it ran.
#[job(name = "hot_path.counted")]
async fn counted(key: String) {
    *RUNS.lock().unwrap().entry(key).or_default() += 1;
}

/// Records that it ran, after working `millis`.
#[job(name = "hot_path.counted_slowly")]
async fn counted_slowly(key: String, millis: u64) {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    *RUNS.lock().unwrap().entry(key).or_default() += 1;
}

/// Fails for good with exactly this text.
#[job(name = "hot_path.fails_with", retries = 0)]
async fn fails_with(text: String) -> Result<(), String> {
    Err(text)
}

/// Panics with this text.
#[job(name = "hot_path.panics_with", retries = 0)]
async fn panics_with(text: String) {
    std::panic::panic_any(text);
}

/// Fails with `text` on its first attempt, then succeeds.
#[job(name = "hot_path.fails_once_with", retries = 1, backoff = "10ms")]
async fn fails_once_with(ctx: JobContext, text: String) -> Result<(), String> {
    if ctx.attempt() == 1 {
        Err(text)
    } else {
        Ok(())
    }
}

/// Blocks until the gate of `key` lets it through.
#[job(name = "hot_path.gated")]
async fn gated(key: String) {
    let gate = gate(&key);
    let _pass = gate.acquire().await.expect("gates are never closed");
    *RUNS.lock().unwrap().entry(key).or_default() += 1;
}

static GATES: LazyLock<Mutex<HashMap<String, Arc<Semaphore>>>> = LazyLock::new(Default::default);

fn gate(key: &str) -> Arc<Semaphore> {
    GATES
        .lock()
        .unwrap()
        .entry(key.to_owned())
        .or_insert_with(|| Arc::new(Semaphore::new(0)))
        .clone()
}

/// Whether any move of the job was a rescue.
async fn was_rescued(storage: &Storage, id: impl Into<JobId>) -> bool {
    storage.history(id).await.unwrap().iter().any(|change| {
        change
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("rescued"))
    })
}

async fn count_in(storage: &Storage, state: State) -> u64 {
    storage.counts().await.unwrap().get(state)
}

async fn a_nul_in_an_error_fails_that_job_and_the_next_50_succeed(fx: &Fixture) {
    LazyLock::force(&LOG);
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).workers(4).start().unwrap();
    let bad = fails_with::enqueue(&client, "broken\0text".into())
        .await
        .unwrap();
    let mut good = Vec::new();
    for n in 0..50 {
        let key = fx.key(&format!("after-nul-{n}"));
        good.push((counted::enqueue(&client, key.clone()).await.unwrap(), key));
    }
    let failed = wait_for_state(&storage, bad, State::Failed).await;
    for (id, _) in &good {
        wait_for_state(&storage, *id, State::Succeeded).await;
    }
    server.shutdown().await;
    assert_eq!(
        failed.reason.as_deref(),
        Some(format!("broken{NUL_REPLACEMENT}text").as_str())
    );
    for (id, key) in &good {
        assert_eq!(runs(key), 1, "{key} ran once");
        assert!(!was_rescued(&storage, *id).await);
    }
    assert!(!was_rescued(&storage, bad).await);
}

async fn a_nul_in_a_panic_and_in_a_retried_error_is_stored_readably(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).workers(2).start().unwrap();
    let panicked = panics_with::enqueue(&client, "boom\0".into())
        .await
        .unwrap();
    let retried = fails_once_with::enqueue(&client, "first\0try".into())
        .await
        .unwrap();
    let panicked = wait_for_state(&storage, panicked, State::Failed).await;
    wait_for_state(&storage, retried, State::Succeeded).await;
    server.shutdown().await;
    let reason = panicked.reason.unwrap();
    assert!(
        reason.contains(&format!("boom{NUL_REPLACEMENT}")),
        "{reason}"
    );
    let history = storage.history(retried).await.unwrap();
    let retry = history
        .iter()
        .find(|change| change.state == State::Scheduled)
        .expect("a retry was recorded");
    let error = retry.data.as_ref().unwrap()["error"].as_str().unwrap();
    assert_eq!(error, format!("first{NUL_REPLACEMENT}try"));
}

async fn a_megabyte_error_is_stored_cut_with_its_length(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).workers(1).start().unwrap();
    let huge = "e".repeat(1 << 20);
    let id = fails_with::enqueue(&client, huge).await.unwrap();
    let failed = wait_for_state(&storage, id, State::Failed).await;
    server.shutdown().await;
    let reason = failed.reason.unwrap();
    assert!(reason.len() <= MAX_TEXT_LEN, "{} bytes", reason.len());
    assert!(
        reason.ends_with("[truncated, 1048576 bytes in all]"),
        "{}",
        &reason[reason.len() - 60..]
    );
    let history = storage.history(id).await.unwrap();
    let stored: usize = history
        .iter()
        .filter_map(|change| change.reason.as_ref())
        .map(String::len)
        .sum();
    assert!(
        stored <= MAX_TEXT_LEN,
        "the history holds {stored} bytes of reasons"
    );
}

/// Runs a few no-op jobs, so that the server knows its jobs are short and
/// fetches as far ahead as its prefetch allows (see `PREFETCH_HORIZON`).
async fn warm_up(fx: &Fixture, client: &Client, what: &str) {
    let key = fx.key(&format!("{what}-warm-up"));
    let ids = client
        .enqueue_many((0..5).map(|_| Counted { key: key.clone() }))
        .await
        .unwrap();
    for id in ids {
        wait_for_state(&fx.storage, id, State::Succeeded).await;
    }
}

/// With every worker busy, the server holds `workers + prefetch` jobs and
/// no more, however many wait.
async fn a_server_holds_at_most_its_workers_plus_prefetch(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage)
        .workers(2)
        .prefetch(3)
        .start()
        .unwrap();
    warm_up(fx, &client, "bounded").await;
    let key = fx.key("bounded");
    let ids = client
        .enqueue_many((0..20).map(|_| Gated { key: key.clone() }))
        .await
        .unwrap();
    wait_until("five jobs held", || async {
        count_in(&storage, State::Processing).await == 5
    })
    .await;
    // Held steady: nothing more is fetched while the workers are busy.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(count_in(&storage, State::Processing).await, 5);
        assert_eq!(count_in(&storage, State::Enqueued).await, 15);
    }
    gate(&key).add_permits(20);
    for id in ids {
        wait_for_state(&storage, id, State::Succeeded).await;
    }
    server.shutdown().await;
    assert_eq!(runs(&key), 20);
}

/// Jobs of unknown length (none finished yet) are fetched one round ahead
/// of the workers only, whatever the prefetch allows.
async fn before_any_job_finished_one_job_per_worker_is_fetched_ahead(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let key = fx.key("unknown-length");
    let ids = client
        .enqueue_many((0..20).map(|_| Gated { key: key.clone() }))
        .await
        .unwrap();
    let server = fast_server(&storage)
        .workers(2)
        .prefetch(10)
        .start()
        .unwrap();
    wait_until("four jobs held", || async {
        count_in(&storage, State::Processing).await == 4
    })
    .await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(count_in(&storage, State::Processing).await, 4);
    }
    gate(&key).add_permits(20);
    for id in ids {
        wait_for_state(&storage, id, State::Succeeded).await;
    }
    server.shutdown().await;
}

/// Jobs fetched ahead and not started go back to `Enqueued` at shutdown,
/// without losing an attempt.
async fn shutdown_gives_back_jobs_fetched_ahead(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage)
        .workers(1)
        .prefetch(3)
        .shutdown_timeout(Duration::from_millis(300))
        .start()
        .unwrap();
    warm_up(fx, &client, "given-back").await;
    let key = fx.key("given-back");
    let ids = client
        .enqueue_many((0..4).map(|_| Gated { key: key.clone() }))
        .await
        .unwrap();
    wait_until("four jobs held", || async {
        count_in(&storage, State::Processing).await == 4
    })
    .await;
    server.shutdown().await;
    let mut given_back = 0;
    for id in ids {
        let job = job(&storage, id).await;
        assert_eq!(job.state, State::Enqueued, "{job:?}");
        assert_eq!(
            job.max_attempts,
            job.attempt + jobs::RetryPolicy::DEFAULT.max_attempts()
        );
        let reason = job.reason.unwrap();
        if reason.contains("stopped before the job started") {
            given_back += 1;
        } else {
            assert!(
                reason.contains("stopped before the job finished"),
                "{reason}"
            );
        }
    }
    assert_eq!(given_back, 3);
    assert_eq!(runs(&key), 0);
}

/// Many short jobs with the lease renewed every third of a second: a job
/// whose outcome is being recorded is never reported as a lost lease.
async fn finished_jobs_are_never_reported_as_lost_leases(fx: &Fixture) {
    LazyLock::force(&LOG);
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage)
        .workers(8)
        .lease(Duration::from_secs(1))
        .start()
        .unwrap();
    let key = fx.key("lease-race");
    let started = std::time::Instant::now();
    let mut enqueued = 0;
    // Keep the server busy across several renewals, with outcomes being
    // recorded all the time.
    while started.elapsed() < Duration::from_millis(2500) {
        let jobs = (0..40).map(|_| CountedSlowly {
            key: key.clone(),
            millis: 2,
        });
        client.enqueue_many(jobs).await.unwrap();
        enqueued += 40;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_until("every job to run", || async { runs(&key) >= enqueued }).await;
    wait_until("every job recorded", || async {
        count_in(&storage, State::Succeeded).await >= enqueued as u64
    })
    .await;
    server.shutdown().await;
    assert_eq!(runs(&key), enqueued, "no job ran twice");
    assert_eq!(logged("lost the lease"), Vec::<String>::new());
}

/// A job enqueued through another handle (as by another process) starts
/// though the server never polls: the storage's change signal wakes it
/// (PostgreSQL `NOTIFY`, SQLite `PRAGMA data_version`).
async fn a_job_from_another_process_starts_without_polling(fx: &Fixture) {
    let storage = fx.storage.clone();
    let server = fast_server(&storage)
        .poll_interval(Duration::from_secs(3600))
        .start()
        .unwrap();
    // The server's first fetch found nothing; from now on only a wake-up
    // can start a job.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = Client::new(fx.reopen().await);
    let key = fx.key("other-process");
    let id = counted::enqueue(&other, key.clone()).await.unwrap();
    wait_for_state(&storage, id, State::Succeeded).await;
    server.shutdown().await;
    assert_eq!(runs(&key), 1);
}

/// With jobs of 30 ms on one worker, the server fetches about one job
/// ahead: a job of a higher-priority queue enqueued later passes all but
/// the running job and one or two fetched ahead (with a fixed prefetch of
/// eight per worker it waited behind nine).
async fn a_later_urgent_job_waits_behind_few_fetched_ahead(fx: &Fixture) {
    static ORDER: LazyLock<Mutex<Vec<String>>> = LazyLock::new(Default::default);

    #[job(name = "hot_path.slow_low", queue = "hot_path_low")]
    async fn slow_low(tag: String) {
        tokio::time::sleep(Duration::from_millis(30)).await;
        ORDER.lock().unwrap().push(tag);
    }

    #[job(name = "hot_path.urgent", queue = "hot_path_high")]
    async fn urgent(tag: String) {
        ORDER.lock().unwrap().push(tag);
    }

    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let low = fx.key("low");
    client
        .enqueue_many((0..40).map(|_| SlowLow { tag: low.clone() }))
        .await
        .unwrap();
    let server = fast_server(&storage)
        .workers(1)
        .queues(["hot_path_high", "hot_path_low"])
        .start()
        .unwrap();
    let count = |tag: &str| ORDER.lock().unwrap().iter().filter(|t| *t == tag).count();
    wait_until("four slow jobs to run", || async { count(&low) >= 4 }).await;
    let before = count(&low);
    let high = fx.key("high");
    urgent::enqueue(&client, high.clone()).await.unwrap();
    wait_until("the urgent job to run", || async { count(&high) == 1 }).await;
    let position = ORDER
        .lock()
        .unwrap()
        .iter()
        .filter(|t| **t == low || **t == high)
        .position(|t| *t == high)
        .unwrap();
    server.shutdown().await;
    let passed_by = position - before;
    assert!(
        passed_by <= 3,
        "{passed_by} slow jobs ran before the urgent one"
    );
}

on_every_storage!(
    a_later_urgent_job_waits_behind_few_fetched_ahead,
    before_any_job_finished_one_job_per_worker_is_fetched_ahead,
    a_nul_in_an_error_fails_that_job_and_the_next_50_succeed,
    a_nul_in_a_panic_and_in_a_retried_error_is_stored_readably,
    a_megabyte_error_is_stored_cut_with_its_length,
    a_server_holds_at_most_its_workers_plus_prefetch,
    shutdown_gives_back_jobs_fetched_ahead,
    finished_jobs_are_never_reported_as_lost_leases,
    a_job_from_another_process_starts_without_polling,
);
