//! Job control end to end, on every storage: timeouts, cancellation (of a
//! waiting job, of a running one on another handle, at shutdown), the
//! outcomes a job chooses (snooze, permanent failure, its own retry
//! delay), priority within a queue, and paused queues and job names.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use common::*;
use jobs::prelude::*;
use jobs::{CancelReason, Error, PauseTarget};

/// Says it started, waits for its cancellation token, says why it fired,
/// then returns an error (which a shutdown requeues) or `Ok` (which a
/// cancel or a timeout ignores).
#[job(retries = 1, backoff = "10ms")]
async fn waits_for_cancel(ctx: JobContext, key: String, fail: bool) -> Result<(), String> {
    see(&key, "started");
    ctx.cancelled().await;
    let reason = ctx.cancel_reason().map(|reason| format!("{reason:?}"));
    see(&key, reason.unwrap_or_default());
    if fail { Err("stopped".into()) } else { Ok(()) }
}

/// Never looks at its token: stopped by dropping it after the grace.
#[job(retries = 0)]
async fn ignores_cancel(key: String) {
    see(&key, "started");
    tokio::time::sleep(Duration::from_secs(3600)).await;
    see(&key, "finished");
}

/// Snoozes on its first attempt, then succeeds.
#[job(retries = 0)]
async fn snoozes_once(ctx: JobContext, key: String) -> Result<(), JobError> {
    see(&key, format!("attempt {}", ctx.attempt()));
    if ctx.attempt() == 1 {
        return Err(JobError::snooze(Duration::from_millis(200)));
    }
    Ok(())
}

/// Fails for good however many retries it has.
#[job(retries = 5, backoff = "10ms")]
async fn fails_for_good(key: String) -> Result<(), JobError> {
    see(&key, "ran");
    Err(JobError::permanent("card declined"))
}

/// Fails once, asking to be retried soon: its policy's backoff (Hangfire's,
/// 15 s or more) would take longer than the test waits.
#[job(retries = 1)]
async fn retries_soon(ctx: JobContext, key: String) -> Result<(), JobError> {
    see(&key, format!("attempt {}", ctx.attempt()));
    if ctx.attempt() == 1 {
        return Err(JobError::new("busy").retry_after(Duration::from_millis(100)));
    }
    Ok(())
}

/// Records its name in the order jobs ran.
#[job]
async fn in_order(key: String, name: String) {
    see(&key, name);
}

/// Jobs of this name running now, and the most seen at once, per key.
static RUNNING: LazyLock<Mutex<HashMap<String, (usize, usize)>>> = LazyLock::new(Default::default);

/// Counts `key`'s jobs running around `work`, keeping the most at once.
async fn count_running(key: String, work: impl Future<Output = ()>) {
    {
        let mut running = RUNNING.lock().unwrap();
        let (now, most) = running.entry(key.clone()).or_default();
        *now += 1;
        *most = (*most).max(*now);
    }
    work.await;
    RUNNING.lock().unwrap().get_mut(&key).unwrap().0 -= 1;
}

/// At most two run at once, on every server together.
#[job(concurrency = 2)]
async fn limited_to_two(key: String) {
    count_running(key, tokio::time::sleep(Duration::from_millis(30))).await;
}

/// At most one per customer at once.
#[job(concurrency(limit = 1, by = [customer]))]
async fn one_per_customer(key: String, customer: u32) {
    let key = format!("{key}/{customer}");
    count_running(key, tokio::time::sleep(Duration::from_millis(20))).await;
}

/// A daily report: one per day's key while it waits or runs.
#[job(unique(by = [day]))]
async fn daily_report(day: String, requested_by: u32) {
    let _ = (day, requested_by);
}

/// Its own timeout (100 ms) beats the server's default.
#[job(timeout = "100ms", retries = 0)]
async fn quick_or_nothing(key: String) {
    see(&key, "started");
    tokio::time::sleep(Duration::from_secs(3600)).await;
}

/// Cancels its own token (to stop helpers of its own) and goes on.
#[job]
async fn cancels_its_own_token(ctx: JobContext, key: String) {
    let _guard = ctx.cancellation_token().clone().drop_guard();
    ctx.cancellation_token().cancel();
    tokio::task::yield_now().await;
    see(&key, "finished");
}

/// Limit 2 across three servers (three handles, as three processes):
/// never three at once, and two at once did happen; a limit per customer
/// holds each customer to one while customers run side by side.
async fn a_concurrency_limit_holds_across_servers(fx: &Fixture) {
    let key = fx.key("limit-two");
    let client = Client::new(fx.storage.clone());
    let mut ids = Vec::new();
    for _ in 0..24 {
        ids.push(limited_to_two::enqueue(&client, key.clone()).await.unwrap());
    }
    for customer in 0..3 {
        for _ in 0..4 {
            ids.push(
                one_per_customer::enqueue(&client, key.clone(), customer)
                    .await
                    .unwrap(),
            );
        }
    }
    let mut servers = Vec::new();
    for _ in 0..3 {
        let storage = fx.reopen().await;
        servers.push(fast_server(&storage).workers(4).start().unwrap());
    }
    for id in &ids {
        wait_for_state(&fx.storage, *id, State::Succeeded).await;
    }
    for server in servers {
        server.shutdown().await;
    }
    let running = RUNNING.lock().unwrap().clone();
    assert_eq!(
        running[&key],
        (0, 2),
        "at most two at once, and two did run at once"
    );
    for customer in 0..3 {
        assert_eq!(
            running[&format!("{key}/{customer}")].1,
            1,
            "customer {customer}"
        );
    }
}

/// Many enqueuers on three handles racing to enqueue one unique report
/// store exactly one job, and every one of them gets its id.
async fn racing_enqueuers_store_one_unique_job(fx: &Fixture) {
    let day = fx.key("2026-12-01");
    let mut calls = Vec::new();
    for handle in 0..3 {
        let client = Client::new(fx.reopen().await);
        for requested_by in 0..8 {
            let (client, day) = (client.clone(), day.clone());
            calls.push(tokio::spawn(async move {
                daily_report::enqueue(&client, day, handle * 10 + requested_by).await
            }));
        }
    }
    let mut ids = Vec::new();
    for call in calls {
        ids.push(JobId::from(call.await.unwrap().unwrap()));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let counts = fx.storage.counts().await.unwrap();
    assert_eq!(counts.get(State::Enqueued), 1);
    let other = daily_report::enqueue(&Client::new(fx.storage.clone()), fx.key("2026-12-02"), 1)
        .await
        .unwrap();
    assert_ne!(JobId::from(other), ids[0], "another day is another key");
}

/// A job's own `#[job(timeout)]` beats the server's default.
async fn a_jobs_own_timeout_beats_the_servers(fx: &Fixture) {
    let key = fx.key("own-timeout");
    let client = Client::new(fx.storage.clone());
    let id = quick_or_nothing::enqueue(&client, key.clone())
        .await
        .unwrap();
    let server = fast_server(&fx.storage)
        .job_timeout(Duration::from_secs(3600))
        .cancel_grace(Duration::ZERO)
        .start()
        .unwrap();
    let failed = wait_for_state(&fx.storage, id, State::Failed).await;
    assert_eq!(failed.reason.as_deref(), Some("timed out after 100ms"));
    server.shutdown().await;
}

/// A job that cancels the token its context gives it stops nothing: it
/// finishes and succeeds.
async fn a_job_cancelling_its_own_token_stops_nothing(fx: &Fixture) {
    let key = fx.key("own-token");
    let client = Client::new(fx.storage.clone());
    let id = cancels_its_own_token::enqueue(&client, key.clone())
        .await
        .unwrap();
    let server = fast_server(&fx.storage).start().unwrap();
    wait_for_state(&fx.storage, id, State::Succeeded).await;
    assert_eq!(seen(&key), ["finished"]);
    server.shutdown().await;
}

/// A job is cancelled and fails with "timed out after ..." once it runs
/// past the server's default timeout, whether it watches its token (sees
/// `TimedOut`, returns an error) or not (it is dropped after the grace);
/// the timeout follows the retry policy. One that sees its token and
/// returns `Ok` within the grace succeeded.
async fn a_job_past_its_timeout_fails_by_its_retry_policy(fx: &Fixture) {
    let client = Client::new(fx.storage.clone());
    let watching = fx.key("timeout-watching");
    let ignoring = fx.key("timeout-ignoring");
    let finishing = fx.key("timeout-finishing");
    let watches = waits_for_cancel::enqueue(&client, watching.clone(), true)
        .await
        .unwrap();
    let finishes = waits_for_cancel::enqueue(&client, finishing.clone(), false)
        .await
        .unwrap();
    let ignores = ignores_cancel::enqueue(&client, ignoring.clone())
        .await
        .unwrap();
    let server = fast_server(&fx.storage)
        .job_timeout(Duration::from_millis(300))
        .cancel_grace(Duration::from_millis(200))
        .start()
        .unwrap();
    let failed = wait_for_state(&fx.storage, watches, State::Failed).await;
    assert_eq!(failed.reason.as_deref(), Some("timed out after 300ms"));
    assert_eq!(failed.attempt, 2, "the timeout was retried once");
    assert_eq!(
        seen(&watching),
        ["started", "TimedOut", "started", "TimedOut"]
    );
    let dropped = wait_for_state(&fx.storage, ignores, State::Failed).await;
    assert_eq!(dropped.reason.as_deref(), Some("timed out after 300ms"));
    assert_eq!(seen(&ignoring), ["started"], "dropped, never finished");
    let finished = wait_for_state(&fx.storage, finishes, State::Succeeded).await;
    assert_eq!(finished.attempt, 1);
    assert_eq!(seen(&finishing), ["started", "TimedOut"]);
    server.shutdown().await;
}

/// A running job cancelled through another handle (as another process
/// would) sees its token fire with `Cancelled` and ends `Deleted` with
/// the reason; on PostgreSQL the server hears of it by `NOTIFY`, well
/// before its next lease renewal (a third of a 30 s lease). SQLite tells
/// servers of other handles at their lease renewal, so its server renews
/// every second here. What the job returns after the cancel is not
/// recorded.
async fn cancel_stops_a_running_job_on_another_handle(fx: &Fixture) {
    let key = fx.key("cancel-running");
    let lease = if fx.storage_kind() == "postgres" {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(3)
    };
    let server = fast_server(&fx.storage).lease(lease).start().unwrap();
    let client = Client::new(fx.storage.clone());
    let id = waits_for_cancel::enqueue(&client, key.clone(), false)
        .await
        .unwrap();
    wait_until("the job to start", || async {
        seen(&key).first().map(String::as_str) == Some("started")
    })
    .await;

    let other = Client::new(fx.reopen().await);
    let cancelled_at = Instant::now();
    assert!(other.cancel(id).await.unwrap(), "it was running");
    wait_until("the job to see its token fire", || async {
        seen(&key).len() == 2
    })
    .await;
    let took = cancelled_at.elapsed();
    eprintln!("{}: the token fired {took:?} after the cancel", fx.key(""));
    if fx.storage_kind() == "postgres" {
        assert!(
            took < Duration::from_secs(2),
            "NOTIFY, not the lease renewal, stopped it: {took:?}"
        );
    }
    assert_eq!(seen(&key)[1], format!("{:?}", CancelReason::Cancelled));
    let deleted = job(&fx.storage, id).await;
    assert_eq!(deleted.state, State::Deleted);
    assert_eq!(deleted.reason.as_deref(), Some("cancelled"));
    assert_eq!(
        history_states(&fx.storage, id).await,
        [State::Enqueued, State::Processing, State::Deleted]
    );
    assert!(!other.cancel(id).await.unwrap(), "it has finished");
    let unknown = other.cancel(JobId(i64::MAX)).await;
    assert!(matches!(unknown, Err(Error::JobNotFound(_))), "{unknown:?}");
    server.shutdown().await;
}

/// Cancelled through the server's own handle, a running job stops at once
/// on every storage: the handle tells the servers of its process.
async fn cancel_through_the_same_handle_stops_at_once(fx: &Fixture) {
    let key = fx.key("cancel-same-handle");
    let server = fast_server(&fx.storage)
        .lease(Duration::from_secs(30))
        .start()
        .unwrap();
    let client = Client::new(fx.storage.clone());
    let id = waits_for_cancel::enqueue(&client, key.clone(), true)
        .await
        .unwrap();
    wait_until("the job to start", || async { !seen(&key).is_empty() }).await;
    assert!(client.cancel(id).await.unwrap());
    wait_within(
        "the job to see its token fire before a lease renewal",
        Duration::from_secs(5),
        || async { seen(&key).len() == 2 },
    )
    .await;
    assert_eq!(job(&fx.storage, id).await.state, State::Deleted);
    server.shutdown().await;
}

/// A job not yet running is deleted by a cancel and never runs.
async fn cancel_deletes_a_waiting_job(fx: &Fixture) {
    let client = Client::new(fx.storage.clone());
    let key = fx.key("cancel-waiting");
    let later =
        waits_for_cancel::schedule_in(&client, Duration::from_secs(3600), key.clone(), false)
            .await
            .unwrap();
    assert!(client.cancel(later).await.unwrap());
    let record = job(&fx.storage, later).await;
    assert_eq!(record.state, State::Deleted);
    assert_eq!(record.reason.as_deref(), Some("cancelled"));
    assert_eq!(record.attempt, 0, "it never ran");
}

/// Graceful shutdown fires the running jobs' tokens with `Shutdown`: a job
/// that watches it stops at once (the shutdown does not wait out its
/// timeout), and its error requeues it without counting the attempt.
async fn graceful_shutdown_fires_the_token(fx: &Fixture) {
    let key = fx.key("shutdown");
    let server = fast_server(&fx.storage)
        .shutdown_timeout(Duration::from_secs(60))
        .start()
        .unwrap();
    let client = Client::new(fx.storage.clone());
    let id = waits_for_cancel::enqueue(&client, key.clone(), true)
        .await
        .unwrap();
    wait_until("the job to start", || async { !seen(&key).is_empty() }).await;
    let stopping = Instant::now();
    server.shutdown().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(30),
        "the job stopped on its token, not at the 60 s shutdown timeout"
    );
    assert_eq!(seen(&key), ["started", "Shutdown"]);
    let requeued = job(&fx.storage, id).await;
    assert_eq!(requeued.state, State::Enqueued);
    assert_eq!(requeued.attempt, 1);
    assert_eq!(requeued.max_attempts, 3, "the attempt was forgiven");
}

/// The outcomes a job chooses: a snooze runs it again later without
/// counting an attempt (even with no retries); a permanent failure skips
/// every retry; `retry_after` replaces the policy's backoff.
async fn a_job_chooses_its_outcome(fx: &Fixture) {
    let client = Client::new(fx.storage.clone());
    let (snoozing, failing, soon) = (fx.key("snooze"), fx.key("permanent"), fx.key("retry-after"));
    let snoozed = snoozes_once::enqueue(&client, snoozing.clone())
        .await
        .unwrap();
    let failed = fails_for_good::enqueue(&client, failing.clone())
        .await
        .unwrap();
    let retried = retries_soon::enqueue(&client, soon.clone()).await.unwrap();
    let server = fast_server(&fx.storage).start().unwrap();

    let done = wait_for_state(&fx.storage, snoozed, State::Succeeded).await;
    assert_eq!(seen(&snoozing), ["attempt 1", "attempt 2"]);
    assert_eq!((done.attempt, done.max_attempts), (2, 2), "not counted");
    let history = fx.storage.history(snoozed).await.unwrap();
    let snooze = history
        .iter()
        .find(|change| change.state == State::Scheduled)
        .expect("a move to Scheduled");
    assert_eq!(snooze.reason.as_deref(), Some("snoozed for 200ms"));

    let failed = wait_for_state(&fx.storage, failed, State::Failed).await;
    assert_eq!(failed.reason.as_deref(), Some("card declined"));
    assert_eq!(failed.attempt, 1);
    assert_eq!(seen(&failing), ["ran"]);

    wait_within(
        "the retry after 100 ms (the policy's backoff is 15 s or more)",
        Duration::from_secs(10),
        || async { job(&fx.storage, retried).await.state == State::Succeeded },
    )
    .await;
    assert_eq!(seen(&soon), ["attempt 1", "attempt 2"]);
    server.shutdown().await;
}

/// Jobs of a paused queue wait while the server runs other work; once
/// resumed they run by priority (lower first), then enqueue order, with
/// per-call priorities overriding the job's.
async fn a_paused_queue_waits_then_runs_by_priority(fx: &Fixture) {
    let key = fx.key("priority");
    let queue = fx.key("prio-q");
    let storage = &fx.storage;
    assert!(storage.pause_queue(&queue).await.unwrap());
    assert!(!storage.pause_queue(&queue).await.unwrap());
    let paused = storage.paused().await.unwrap();
    assert_eq!(paused[0].target, PauseTarget::Queue(queue.clone()));

    let client = Client::new(storage.clone());
    let mut ids = Vec::new();
    for (name, priority) in [("p5", 5), ("p0-a", 0), ("n3", -3), ("p0-b", 0)] {
        let options = EnqueueOptions::new()
            .queue(queue.as_str())
            .priority(priority);
        ids.push(
            in_order::enqueue_with(&client, options, key.clone(), name.into())
                .await
                .unwrap(),
        );
    }
    assert_eq!(job(storage, ids[2]).await.priority, -3);
    let marker = in_order::enqueue(&client, fx.key("marker"), "ran".into())
        .await
        .unwrap();
    let server = fast_server(storage)
        .workers(1)
        .queues([queue.as_str(), "default"])
        .start()
        .unwrap();
    // The server fetched past the paused queue to reach the marker.
    wait_for_state(storage, marker, State::Succeeded).await;
    for id in &ids {
        assert_eq!(job(storage, *id).await.state, State::Enqueued);
    }
    assert!(storage.resume_queue(&queue).await.unwrap());
    for id in &ids {
        wait_for_state(storage, *id, State::Succeeded).await;
    }
    assert_eq!(seen(&key), ["n3", "p0-a", "p0-b", "p5"]);
    server.shutdown().await;
}

/// A paused job name waits in its queue while other jobs of the queue
/// run; resumed, it runs.
async fn a_paused_job_name_waits_until_resumed(fx: &Fixture) {
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    assert!(storage.pause_job("snoozes_once").await.unwrap());
    let paused = snoozes_once::enqueue(&client, fx.key("paused-name"))
        .await
        .unwrap();
    let other = in_order::enqueue(&client, fx.key("unpaused"), "ran".into())
        .await
        .unwrap();
    let server = fast_server(storage).workers(1).start().unwrap();
    wait_for_state(storage, other, State::Succeeded).await;
    assert_eq!(job(storage, paused).await.state, State::Enqueued);
    assert!(storage.resume_job("snoozes_once").await.unwrap());
    wait_for_state(storage, paused, State::Succeeded).await;
    server.shutdown().await;
}

on_every_storage!(
    a_job_past_its_timeout_fails_by_its_retry_policy,
    cancel_stops_a_running_job_on_another_handle,
    cancel_through_the_same_handle_stops_at_once,
    cancel_deletes_a_waiting_job,
    graceful_shutdown_fires_the_token,
    a_job_chooses_its_outcome,
    a_paused_queue_waits_then_runs_by_priority,
    a_paused_job_name_waits_until_resumed,
    a_concurrency_limit_holds_across_servers,
    racing_enqueuers_store_one_unique_job,
    a_jobs_own_timeout_beats_the_servers,
    a_job_cancelling_its_own_token_stops_nothing,
);
