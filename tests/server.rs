//! The server end to end, on every storage: each case runs against a new
//! SQLite file and against a new PostgreSQL schema.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use chrono::Utc;
use common::*;
use jobs::prelude::*;
use jobs::storage::{EnqueueParams, LeadParams, MAINTENANCE_LEADERSHIP, NewJob};

/// How many times each key ran, across all tests of this binary (each test
/// uses keys of its own).
static RUNS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Default::default);

fn runs(key: &str) -> usize {
    RUNS.lock().unwrap().get(key).copied().unwrap_or(0)
}

fn count_run(key: &str) {
    *RUNS.lock().unwrap().entry(key.to_owned()).or_default() += 1;
}

/// Records that it ran.
#[job]
async fn record_run(key: String) {
    count_run(&key);
}

/// Records when it ran, to check a delayed job against its time.
#[job]
async fn note_start_time(key: String) {
    RUN_TIMES.lock().unwrap().insert(key, Utc::now());
}

static RUN_TIMES: LazyLock<Mutex<HashMap<String, chrono::DateTime<Utc>>>> =
    LazyLock::new(Default::default);

/// Fails until its `succeed_on` attempt.
#[job(retries = 5, backoff = "10ms")]
async fn flaky(ctx: JobContext, succeed_on: u32) -> Result<(), String> {
    if ctx.attempt() < succeed_on {
        Err(format!("transient failure on attempt {}", ctx.attempt()))
    } else {
        Ok(())
    }
}

/// Always fails.
#[job(retries = 2, backoff = "10ms")]
async fn always_fails(reason: String) -> Result<(), std::io::Error> {
    Err(std::io::Error::other(reason))
}

/// Panics.
#[job(retries = 0)]
async fn panics(message: String) {
    panic!("{message}");
}

/// Counts its starts and its finishes, working `millis` in between.
#[job]
async fn tracked(key: String, millis: u64) {
    count_run(&format!("{key}/started"));
    tokio::time::sleep(Duration::from_millis(millis)).await;
    count_run(&format!("{key}/finished"));
}

/// An argument whose decoding panics.
#[derive(Debug, Clone, serde::Serialize)]
struct Bomb;

impl<'de> serde::Deserialize<'de> for Bomb {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("decoding exploded")
    }
}

/// Never runs: its argument cannot be decoded.
#[job(retries = 0)]
async fn explosive(arg: Bomb) {
    let _ = arg;
}

/// Sleeps, then records that it ran.
#[job]
async fn slow(key: String, millis: u64) {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    count_run(&key);
}

async fn enqueued_job_succeeds_with_its_history(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let id = record_run::enqueue(&client, fx.key("history"))
        .await
        .unwrap();
    assert_eq!(job(&storage, id).await.state, State::Enqueued);

    let server = fast_server(&storage).start().unwrap();
    let done = wait_for_state(&storage, id, State::Succeeded).await;
    server.shutdown().await;

    assert_eq!(runs(&fx.key("history")), 1);
    assert_eq!(done.attempt, 1);
    assert_eq!(done.name, "record_run");
    assert_eq!(
        history_states(&storage, id).await,
        [State::Enqueued, State::Processing, State::Succeeded]
    );
}

async fn method_on_the_argument_struct_enqueues_too(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let id = RecordRun {
        key: fx.key("method"),
    }
    .enqueue(&client)
    .await
    .unwrap();
    let stored = job(&storage, id).await;
    assert_eq!(stored.args, format!(r#"{{"key":"{}"}}"#, fx.key("method")));
    assert_eq!(stored.max_attempts, 11, "Hangfire's default: 10 retries");
}

async fn delayed_job_runs_after_its_time_and_not_before(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).start().unwrap();

    let delay = Duration::from_millis(1500);
    let before = Utc::now();
    let id = note_start_time::schedule_in(&client, delay, fx.key("delayed"))
        .await
        .unwrap();
    let scheduled = job(&storage, id).await;
    assert_eq!(scheduled.state, State::Scheduled);
    let due = scheduled.run_at.expect("a scheduled job has a due time");
    // Stored times have millisecond precision.
    assert!(due.timestamp_millis() >= before.timestamp_millis() + 1500);

    wait_for_state(&storage, id, State::Succeeded).await;
    server.shutdown().await;
    let ran_at = RUN_TIMES.lock().unwrap()[&fx.key("delayed")];
    assert!(ran_at >= due, "ran at {ran_at}, before its time {due}");
    assert_eq!(
        history_states(&storage, id).await,
        [
            State::Scheduled,
            State::Enqueued,
            State::Processing,
            State::Succeeded
        ]
    );
}

async fn schedule_at_a_past_time_runs_at_once(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).start().unwrap();
    let at = Utc::now() - chrono::Duration::seconds(5);
    let id = RecordRun {
        key: fx.key("past"),
    }
    .schedule_at(&client, at)
    .await
    .unwrap();
    wait_for_state(&storage, id, State::Succeeded).await;
    server.shutdown().await;
    assert_eq!(runs(&fx.key("past")), 1);
}

async fn failed_attempts_are_retried_until_success(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).start().unwrap();
    let id = flaky::enqueue(&client, 3).await.unwrap();
    let done = wait_for_state(&storage, id, State::Succeeded).await;
    server.shutdown().await;

    assert_eq!(done.attempt, 3);
    let history = storage.history(id).await.unwrap();
    let retries: Vec<_> = history
        .iter()
        .filter(|change| change.state == State::Scheduled)
        .map(|change| change.reason.clone().unwrap())
        .collect();
    assert_eq!(retries, ["retry attempt 1 of 5", "retry attempt 2 of 5"]);
    let first_error = history
        .iter()
        .find(|change| change.state == State::Scheduled)
        .and_then(|change| change.data.clone())
        .unwrap();
    assert_eq!(first_error["error"], "transient failure on attempt 1");
}

async fn exhausted_attempts_fail_with_the_error_text(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).start().unwrap();
    let id = always_fails::enqueue(&client, "disk full".into())
        .await
        .unwrap();
    let failed = wait_for_state(&storage, id, State::Failed).await;
    server.shutdown().await;

    assert_eq!(failed.attempt, 3, "first attempt plus 2 retries");
    assert_eq!(failed.reason.as_deref(), Some("disk full"));
    let states = history_states(&storage, id).await;
    assert_eq!(
        states.iter().filter(|s| **s == State::Processing).count(),
        3
    );
    assert_eq!(states.last(), Some(&State::Failed));
}

async fn a_panic_fails_its_job_and_the_server_goes_on(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).workers(1).start().unwrap();
    let panicked = panics::enqueue(&client, "boom".into()).await.unwrap();
    let next = record_run::enqueue(&client, fx.key("after-panic"))
        .await
        .unwrap();

    let failed = wait_for_state(&storage, panicked, State::Failed).await;
    wait_for_state(&storage, next, State::Succeeded).await;
    server.shutdown().await;
    // The reason says where it panicked, with the backtrace.
    let reason = failed.reason.unwrap();
    assert!(
        reason.starts_with("the job panicked: boom\nat tests/server.rs:"),
        "{reason}"
    );
    assert!(reason.contains("\nbacktrace:\n"), "{reason}");
    assert_eq!(runs(&fx.key("after-panic")), 1);
}

/// Stores a job with any name and arguments, as a client of another
/// binary could.
async fn enqueue_raw(fx: &Fixture, name: &str, args: &str) -> JobId {
    let ids = fx
        .backend()
        .await
        .enqueue(EnqueueParams::jobs(vec![NewJob::new(
            name, "default", args, 3,
        )]))
        .await
        .unwrap();
    ids[0]
}

async fn an_unknown_job_name_fails_and_the_server_goes_on(fx: &Fixture) {
    let storage = fx.storage.clone();
    let unknown = enqueue_raw(fx, "no_such_job", "{}").await;
    let next = enqueue_raw(
        fx,
        "record_run",
        &format!(r#"{{"key":"{}"}}"#, fx.key("after-unknown")),
    )
    .await;
    let server = fast_server(&storage).workers(1).start().unwrap();

    let failed = wait_for_state(&storage, unknown, State::Failed).await;
    wait_for_state(&storage, next, State::Succeeded).await;
    server.shutdown().await;
    let reason = failed.reason.unwrap();
    assert!(
        reason.contains("no job named `no_such_job` is registered"),
        "{reason}"
    );
    assert_eq!(
        failed.attempt, 1,
        "not retried: another attempt cannot help"
    );
}

async fn arguments_that_no_longer_decode_fail_and_the_server_goes_on(fx: &Fixture) {
    let storage = fx.storage.clone();
    let broken = enqueue_raw(fx, "record_run", r#"{"user":7}"#).await;
    let next = enqueue_raw(
        fx,
        "record_run",
        &format!(r#"{{"key":"{}"}}"#, fx.key("after-broken")),
    )
    .await;
    let server = fast_server(&storage).workers(1).start().unwrap();

    let failed = wait_for_state(&storage, broken, State::Failed).await;
    wait_for_state(&storage, next, State::Succeeded).await;
    server.shutdown().await;
    let reason = failed.reason.unwrap();
    assert!(
        reason.contains("arguments of job `record_run` no longer decode"),
        "{reason}"
    );
    assert!(reason.contains("missing field `key`"), "{reason}");
}

async fn shutdown_waits_for_running_jobs(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).start().unwrap();
    let key = fx.key("finishes-at-shutdown");
    let id = tracked::enqueue(&client, key.clone(), 300).await.unwrap();
    // Running, not only fetched: a job fetched ahead and not yet started
    // is given back at shutdown instead.
    wait_until("the job to start", || async {
        runs(&format!("{key}/started")) == 1
    })
    .await;

    server.shutdown().await;
    assert_eq!(job(&storage, id).await.state, State::Succeeded);
    assert_eq!(runs(&format!("{key}/finished")), 1);
}

async fn shutdown_requeues_jobs_that_outlast_the_timeout(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage)
        .shutdown_timeout(Duration::from_millis(100))
        .start()
        .unwrap();
    let id = slow::enqueue(&client, fx.key("interrupted"), 60_000)
        .await
        .unwrap();
    wait_for_state(&storage, id, State::Processing).await;

    server.shutdown().await;
    let requeued = job(&storage, id).await;
    assert_eq!(requeued.state, State::Enqueued);
    assert_eq!(requeued.attempt, 1, "attempt numbers only grow");
    assert_eq!(
        requeued.max_attempts, 12,
        "the interrupted attempt is given back"
    );
    assert!(
        requeued
            .reason
            .unwrap()
            .contains("stopped before the job finished")
    );
    assert_eq!(runs(&fx.key("interrupted")), 0);
}

async fn jobs_enqueued_before_a_restart_run_after_it(fx: &Fixture) {
    let ids = {
        let storage = fx.reopen().await;
        let server = fast_server(&storage).start().unwrap();
        server.shutdown().await;
        let client = Client::new(storage.clone());
        let mut ids = Vec::new();
        for n in 0..20 {
            ids.push(
                record_run::enqueue(&client, fx.key(&format!("restart-{n}")))
                    .await
                    .unwrap(),
            );
        }
        ids
    };
    // A new process would open the storage anew: so does this.
    let storage = fx.reopen().await;
    let server = fast_server(&storage).start().unwrap();
    for id in &ids {
        wait_for_state(&storage, *id, State::Succeeded).await;
    }
    server.shutdown().await;
    for n in 0..20 {
        assert_eq!(runs(&fx.key(&format!("restart-{n}"))), 1);
    }
}

async fn a_job_whose_server_died_is_rescued_after_its_lease(fx: &Fixture) {
    let storage = fx.storage.clone();
    let id = enqueue_raw(
        fx,
        "record_run",
        &format!(r#"{{"key":"{}"}}"#, fx.key("rescued")),
    )
    .await;
    // A server that fetched the job and died: nothing renews its lease.
    let taken = fx
        .backend()
        .await
        .fetch(jobs::storage::FetchParams {
            queues: vec!["default".into()],
            limit: 1,
            server: "dead-server".into(),
            lease: Duration::from_secs(1),
        })
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);

    let server = fast_server(&storage).start().unwrap();
    let done = wait_for_state(&storage, id, State::Succeeded).await;
    server.shutdown().await;
    assert_eq!(done.attempt, 2);
    let history = storage.history(id).await.unwrap();
    let rescue = history
        .iter()
        .find_map(|change| change.reason.clone().filter(|r| r.contains("dead-server")))
        .expect("the rescue is recorded");
    assert!(rescue.contains("stopped renewing it"), "{rescue}");
    assert_eq!(runs(&fx.key("rescued")), 1);
}

async fn a_long_job_keeps_its_lease_while_its_server_lives(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    // The job runs for three leases; the lease keeper must renew it.
    let server = fast_server(&storage)
        .lease(Duration::from_secs(1))
        .start()
        .unwrap();
    let id = slow::enqueue(&client, fx.key("long"), 3_000).await.unwrap();
    let done = wait_for_state(&storage, id, State::Succeeded).await;
    server.shutdown().await;
    assert_eq!(done.attempt, 1, "never rescued");
    assert_eq!(runs(&fx.key("long")), 1);
}

async fn a_thousand_jobs_on_eight_workers_each_run_exactly_once(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).workers(8).start().unwrap();
    let mut ids = Vec::new();
    for n in 0..1000 {
        ids.push(
            record_run::enqueue(&client, fx.key(&format!("thousand-{n}")))
                .await
                .unwrap(),
        );
    }
    wait_until("1000 jobs to succeed", || async {
        storage.counts().await.unwrap().get(State::Succeeded) == 1000
    })
    .await;
    server.shutdown().await;
    for n in 0..1000 {
        assert_eq!(
            runs(&fx.key(&format!("thousand-{n}"))),
            1,
            "job thousand-{n}"
        );
    }
    let counts = storage.counts().await.unwrap();
    assert_eq!(counts.total(), 1000);
}

async fn queues_are_served_in_priority_order(fx: &Fixture) {
    static ORDER: LazyLock<Mutex<Vec<String>>> = LazyLock::new(Default::default);

    #[job(queue = "low")]
    async fn low_priority(tag: String) {
        ORDER.lock().unwrap().push(tag);
    }

    #[job(queue = "high")]
    async fn high_priority(tag: String) {
        ORDER.lock().unwrap().push(tag);
    }

    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    for n in 0..3 {
        low_priority::enqueue(&client, fx.key(&format!("low-{n}")))
            .await
            .unwrap();
    }
    for n in 0..3 {
        high_priority::enqueue(&client, fx.key(&format!("high-{n}")))
            .await
            .unwrap();
    }
    let server = fast_server(&storage)
        .workers(1)
        .queues(["high", "low"])
        .start()
        .unwrap();
    let mine = || -> Vec<String> {
        let order = ORDER.lock().unwrap();
        order
            .iter()
            .filter(|tag| tag.starts_with(&fx.key("")))
            .cloned()
            .collect()
    };
    wait_until("six jobs to run", || async { mine().len() == 6 }).await;
    server.shutdown().await;
    let expected: Vec<_> = ["high-0", "high-1", "high-2", "low-0", "low-1", "low-2"]
        .iter()
        .map(|tag| fx.key(tag))
        .collect();
    assert_eq!(mine(), expected);
}

async fn a_panic_while_decoding_fails_the_job_and_the_server_goes_on(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage).workers(1).start().unwrap();
    let broken = explosive::enqueue(&client, Bomb).await.unwrap();
    let next = record_run::enqueue(&client, fx.key("after-explosion"))
        .await
        .unwrap();
    let failed = wait_for_state(&storage, broken, State::Failed).await;
    wait_for_state(&storage, next, State::Succeeded).await;
    server.shutdown().await;
    let reason = failed.reason.unwrap();
    assert!(
        reason.starts_with("the job panicked: decoding exploded\nat tests/server.rs:"),
        "{reason}"
    );
}

async fn an_attempt_that_lost_its_lease_is_stopped(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let server = fast_server(&storage)
        .lease(Duration::from_secs(1))
        .cancel_grace(Duration::from_millis(100))
        .start()
        .unwrap();
    let key = fx.key("stolen");
    let id = tracked::enqueue(&client, key.clone(), 1_500).await.unwrap();
    wait_until("the first attempt to start", || async {
        runs(&format!("{key}/started")) == 1
    })
    .await;
    // An operator requeues the running job (a rescuer after an outage
    // longer than the lease takes it over the same way): the first attempt
    // must stop, not finish.
    storage.requeue(id).await.unwrap();
    let done = wait_for_state(&storage, id, State::Succeeded).await;
    server.shutdown().await;
    assert_eq!(done.attempt, 2);
    assert_eq!(runs(&format!("{key}/started")), 2);
    assert_eq!(
        runs(&format!("{key}/finished")),
        1,
        "the first attempt was stopped"
    );
}

async fn a_job_only_another_server_knows_waits_for_it(fx: &Fixture) {
    let storage = fx.storage.clone();
    // A server of a newer version, which knows a job this binary does not.
    let newer = jobs::storage::ServerInfo {
        id: "newer-version".into(),
        workers: 1,
        queues: vec!["default".into()],
        jobs: vec!["only_in_the_new_version".into()],
    };
    fx.backend().await.register_server(newer).await.unwrap();
    let id = enqueue_raw(fx, "only_in_the_new_version", "{}").await;
    let server = fast_server(&storage).start().unwrap();

    let deferred = wait_for_state(&storage, id, State::Scheduled).await;
    let reason = deferred.reason.unwrap();
    assert!(reason.contains("server newer-version knows it"), "{reason}");
    assert_eq!(
        (deferred.attempt, deferred.max_attempts),
        (1, 4),
        "the attempt is forgiven"
    );

    // Once no running server knows it, it fails.
    fx.backend()
        .await
        .unregister_server("newer-version")
        .await
        .unwrap();
    let failed = wait_for_state(&storage, id, State::Failed).await;
    server.shutdown().await;
    let reason = failed.reason.unwrap();
    assert!(
        reason.contains("is registered on any running server"),
        "{reason}"
    );
}

/// The leader-only services run exactly while the server leads: when
/// another server holds the maintenance leadership, this one promotes no
/// scheduled job; when the leadership is free again, it takes it and
/// promotes.
async fn maintenance_runs_only_while_leading(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());
    let backend = fx.backend().await;
    let server = fast_server(&storage).start().unwrap();
    let leads = |who: String| {
        let backend = &backend;
        async move {
            backend
                .try_lead(LeadParams {
                    name: MAINTENANCE_LEADERSHIP.into(),
                    server: who,
                    ttl: Duration::from_secs(60),
                })
                .await
                .unwrap()
        }
    };
    // The server leads within its first renewals; then another takes the
    // leadership over (as after a lost renewal) for a minute.
    let first = record_run::schedule_in(&client, Duration::ZERO, fx.key("leader-1"))
        .await
        .unwrap();
    wait_for_state(&storage, first, State::Succeeded).await;
    backend
        .resign(MAINTENANCE_LEADERSHIP, server.id())
        .await
        .unwrap();
    assert!(leads("another-server".into()).await);
    // Once its renewal failed (a third of its 1 s ttl, plus the answer) it
    // stops promoting: a job due now stays Scheduled while the other leads.
    let waited = Duration::from_millis(1_500);
    tokio::time::sleep(waited).await;
    let second = record_run::schedule_in(&client, Duration::ZERO, fx.key("leader-2"))
        .await
        .unwrap();
    tokio::time::sleep(waited).await;
    assert_eq!(
        job(&storage, second).await.state,
        State::Scheduled,
        "promoted while another server leads"
    );
    // The other resigns: this server leads again and promotes it.
    backend
        .resign(MAINTENANCE_LEADERSHIP, "another-server")
        .await
        .unwrap();
    wait_for_state(&storage, second, State::Succeeded).await;
    server.shutdown().await;
}

on_every_storage!(
    enqueued_job_succeeds_with_its_history,
    method_on_the_argument_struct_enqueues_too,
    delayed_job_runs_after_its_time_and_not_before,
    schedule_at_a_past_time_runs_at_once,
    failed_attempts_are_retried_until_success,
    exhausted_attempts_fail_with_the_error_text,
    a_panic_fails_its_job_and_the_server_goes_on,
    an_unknown_job_name_fails_and_the_server_goes_on,
    arguments_that_no_longer_decode_fail_and_the_server_goes_on,
    shutdown_waits_for_running_jobs,
    shutdown_requeues_jobs_that_outlast_the_timeout,
    jobs_enqueued_before_a_restart_run_after_it,
    a_job_whose_server_died_is_rescued_after_its_lease,
    a_long_job_keeps_its_lease_while_its_server_lives,
    a_thousand_jobs_on_eight_workers_each_run_exactly_once,
    queues_are_served_in_priority_order,
    a_panic_while_decoding_fails_the_job_and_the_server_goes_on,
    an_attempt_that_lost_its_lease_is_stopped,
    a_job_only_another_server_knows_waits_for_it,
    maintenance_runs_only_while_leading,
);
