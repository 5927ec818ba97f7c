//! Filters and the job's context end to end, on every storage: client
//! filters that add parameters and reject jobs, server filters around
//! each attempt (in order, skipping the job, panicking), state filters
//! told of each move, and a job's log, progress and parameters.

#[macro_use]
mod common;

use std::sync::{Arc, Mutex};

use common::*;
use jobs::filters::{ClientFilter, Next, ServerFilter, StateFilter, StateTransition};
use jobs::prelude::*;
use jobs::{Error, JobLogQuery, JobResult, MAX_LOG_LINES_PER_ATTEMPT, NewJob};

/// Reads the tenant a client filter set, and leaves a parameter of its own.
#[job]
async fn reads_tenant(ctx: JobContext, key: String) -> Result<(), JobError> {
    let tenant: Option<String> = ctx.parameter("tenant").await?;
    let priority: Option<u32> = ctx.parameter("urgency").await?;
    see(&key, format!("{tenant:?} {priority:?}"));
    ctx.set_parameter("handled_by_attempt", &ctx.attempt())
        .await?;
    Ok(())
}

/// Records that it ran; then succeeds, fails (`"fail"`) or panics
/// (`"panic"`).
#[job(retries = 0)]
async fn records(key: String, ending: String) -> Result<(), JobError> {
    see(&key, "job");
    match ending.as_str() {
        "fail" => Err(JobError::permanent("card declined")),
        "panic" => panic!("the job broke"),
        _ => Ok(()),
    }
}

/// Fails once asking for a quick retry, then succeeds.
#[job(retries = 1)]
async fn retries_once(ctx: JobContext) -> Result<(), JobError> {
    if ctx.attempt() == 1 {
        return Err(JobError::new("busy").retry_after(Duration::from_millis(50)));
    }
    Ok(())
}

/// Logs its steps and reports its progress; then `extra` more lines.
#[job]
async fn logs_its_work(ctx: JobContext, steps: u32, extra: u32) {
    for step in 1..=steps {
        ctx.log(format!("step {step} of {steps}"));
        ctx.progress(f64::from(step) / f64::from(steps));
    }
    ctx.log("a NUL \0 in a line");
    for line in 0..extra {
        ctx.log(format!("extra {line}"));
    }
}

/// Waits for its cancellation token, then logs and succeeds.
#[job]
async fn logs_at_shutdown(ctx: JobContext, key: String) {
    see(&key, "started");
    ctx.cancelled().await;
    ctx.log("stopping cleanly");
    ctx.progress(1.0);
}

/// Tags each job with a tenant; rejects the jobs of queue `closed`.
struct Tenant;

#[jobs::async_trait]
impl ClientFilter for Tenant {
    async fn on_enqueue(&self, job: &mut NewJob) -> jobs::Result<()> {
        if job.queue == "closed" {
            return Err(Error::rejected(&job.name, "queue `closed` takes no jobs"));
        }
        job.parameters.insert("tenant".into(), r#""acme""#.into());
        Ok(())
    }
}

/// Client filters set parameters the job reads (with those of the
/// options); a rejected job is not stored, nor any job of its call.
async fn client_filters_add_parameters_and_reject(fx: &Fixture) {
    let key = fx.key("tenant");
    let storage = &fx.storage;
    let client = Client::builder(storage.clone()).filter(Tenant).build();
    let options = EnqueueOptions::new().parameter("urgency", 3);
    let id = reads_tenant::enqueue_with(&client, options, key.clone())
        .await
        .unwrap();
    let before = storage.counts().await.unwrap().total();
    let closed = EnqueueOptions::new().queue("closed");
    let rejected = reads_tenant::enqueue_with(&client, closed, key.clone()).await;
    assert!(
        matches!(&rejected, Err(Error::Rejected { name, reason }) if name == "reads_tenant" && reason.contains("closed")),
        "{rejected:?}"
    );
    let mut batch = Batch::new();
    batch.push(ReadsTenant { key: key.clone() }).unwrap();
    batch
        .push_with(
            ReadsTenant { key: key.clone() },
            EnqueueOptions::new().queue("closed"),
        )
        .unwrap();
    let rejected = client.enqueue_batch(batch).await;
    assert!(
        matches!(rejected, Err(Error::Rejected { .. })),
        "{rejected:?}"
    );
    assert_eq!(
        storage.counts().await.unwrap().total(),
        before,
        "nothing of a rejected call is stored"
    );

    let server = fast_server(storage).start().unwrap();
    wait_for_state(storage, id, State::Succeeded).await;
    server.shutdown().await;
    assert_eq!(seen(&key), [r#"Some("acme") Some(3)"#]);
    let parameters = storage.job_parameters(id).await.unwrap();
    assert_eq!(
        parameters.get("tenant").map(String::as_str),
        Some(r#""acme""#)
    );
    assert_eq!(
        parameters.get("handled_by_attempt").map(String::as_str),
        Some("1")
    );
    storage
        .set_job_parameter(id, "note", "checked")
        .await
        .unwrap();
    assert_eq!(
        storage
            .job_parameters(id)
            .await
            .unwrap()
            .get("note")
            .map(String::as_str),
        Some(r#""checked""#)
    );
}

/// Records the order of attempts through it: `name>` before, `<name ok`
/// or `<name err` after. The inner one does not run jobs whose key ends
/// in `skip` (it fails the attempt), and panics for `filter-panic`.
struct Around {
    name: &'static str,
    key: String,
}

#[jobs::async_trait]
impl ServerFilter for Around {
    async fn around(&self, ctx: &JobContext, next: Next<'_>) -> JobResult {
        if ctx.name() != "records" {
            return next.await;
        }
        let key = ctx.parameter::<String>("key").await?.unwrap_or_default();
        if !key.starts_with(&self.key) {
            return next.await;
        }
        see(&key, format!("{}>", self.name));
        if key.ends_with("skip") && self.name == "inner" {
            return Err(JobError::permanent("skipped by the filter"));
        }
        if key.ends_with("filter-panic") && self.name == "inner" {
            panic!("the filter broke");
        }
        let result = next.await;
        let ok = if result.is_ok() { "ok" } else { "err" };
        see(&key, format!("<{} {ok}", self.name));
        result
    }
}

/// Server filters run around each attempt, the first registered
/// outermost, inside the tracing filter, and see the job's failure and
/// panic; one that returns without running the job fails the attempt,
/// and so does one that panics.
async fn server_filters_wrap_each_attempt_in_order(fx: &Fixture) {
    let base = fx.key("around");
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    let enqueue = |suffix: &str, ending: &str| {
        let ending = ending.to_owned();
        let key = format!("{base}-{suffix}");
        let options = EnqueueOptions::new().parameter("key", key.clone());
        let client = client.clone();
        async move {
            let id = records::enqueue_with(&client, options, key.clone(), ending)
                .await
                .unwrap();
            (key, id)
        }
    };
    let (ok, ok_id) = enqueue("ok", "ok").await;
    let (failing, failing_id) = enqueue("fail", "fail").await;
    let (job_panic, job_panic_id) = enqueue("job-panic", "panic").await;
    let (skipped, skipped_id) = enqueue("skip", "ok").await;
    let (panicking, panicking_id) = enqueue("filter-panic", "ok").await;
    let server = fast_server(storage)
        .filter(Around {
            name: "outer",
            key: base.clone(),
        })
        .filter(Around {
            name: "inner",
            key: base.clone(),
        })
        .start()
        .unwrap();
    wait_for_state(storage, ok_id, State::Succeeded).await;
    let failed = wait_for_state(storage, failing_id, State::Failed).await;
    assert_eq!(failed.reason.as_deref(), Some("card declined"));
    let skipped_job = wait_for_state(storage, skipped_id, State::Failed).await;
    assert_eq!(skipped_job.reason.as_deref(), Some("skipped by the filter"));
    let panicked = wait_for_state(storage, panicking_id, State::Failed).await;
    let job_panicked = wait_for_state(storage, job_panic_id, State::Failed).await;
    server.shutdown().await;
    let reason = panicked.reason.unwrap();
    assert!(
        reason.starts_with("a server filter panicked: the filter broke\nat tests/filters.rs:"),
        "{reason}"
    );
    let reason = job_panicked.reason.unwrap();
    assert!(
        reason.starts_with("the job panicked: the job broke\nat tests/filters.rs:"),
        "{reason}"
    );
    assert_eq!(
        seen(&job_panic),
        ["outer>", "inner>", "job", "<inner err", "<outer err"],
        "the filters see the job's panic as its failure"
    );
    assert_eq!(
        seen(&ok),
        ["outer>", "inner>", "job", "<inner ok", "<outer ok"]
    );
    assert_eq!(
        seen(&failing),
        ["outer>", "inner>", "job", "<inner err", "<outer err"]
    );
    assert_eq!(seen(&skipped), ["outer>", "inner>", "<outer err"]);
    assert_eq!(seen(&panicking), ["outer>", "inner>"]);
}

/// Records each change it is told of.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<StateTransition>>>);

#[jobs::async_trait]
impl StateFilter for Recorder {
    async fn on_state_changed(&self, change: &StateTransition) {
        self.0.lock().unwrap().push(change.clone());
    }
}

impl Recorder {
    fn of(&self, id: impl Into<JobId>) -> Vec<(Option<State>, State, Option<String>)> {
        let id = id.into();
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|change| change.job == id)
            .map(|change| (change.from, change.to, change.reason.clone()))
            .collect()
    }
}

/// Panics on every change: the next filter is told anyway.
struct Panics;

#[jobs::async_trait]
impl StateFilter for Panics {
    async fn on_state_changed(&self, _: &StateTransition) {
        panic!("a broken state filter");
    }
}

/// State filters are told of each move the server makes, in order, with
/// the job's name and the move's reason; a panicking filter holds back
/// neither the next one nor the job.
async fn state_filters_are_told_of_each_move(fx: &Fixture) {
    let key = fx.key("states");
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    let ok = records::enqueue(&client, key.clone(), "ok".into())
        .await
        .unwrap();
    let failed = records::enqueue(&client, key.clone(), "fail".into())
        .await
        .unwrap();
    let retried = retries_once::enqueue(&client).await.unwrap();
    let recorder = Recorder::default();
    let server = fast_server(storage)
        .state_filter(Panics)
        .state_filter(recorder.clone())
        .start()
        .unwrap();
    wait_for_state(storage, ok, State::Succeeded).await;
    wait_for_state(storage, failed, State::Failed).await;
    wait_for_state(storage, retried, State::Succeeded).await;
    server.shutdown().await;
    use State::*;
    assert_eq!(
        recorder.of(ok),
        [
            (Some(Enqueued), Processing, None),
            (Some(Processing), Succeeded, None)
        ]
    );
    assert_eq!(
        recorder.of(failed),
        [
            (Some(Enqueued), Processing, None),
            (Some(Processing), Failed, Some("card declined".into()))
        ]
    );
    let retried_moves = recorder.of(retried);
    let states: Vec<State> = retried_moves.iter().map(|(_, to, _)| *to).collect();
    assert_eq!(states, [Processing, Scheduled, Processing, Succeeded]);
    assert!(
        retried_moves[1]
            .2
            .as_deref()
            .is_some_and(|reason| reason.contains("retry attempt 1")),
        "{retried_moves:?}"
    );
    let names: Vec<String> = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|change| change.job == JobId::from(ok))
        .map(|change| change.name.clone())
        .collect();
    assert_eq!(names, ["records", "records"]);
}

/// A job's log lines and progress reach the storage while it runs and
/// after: in order, made storable, at most MAX_LOG_LINES_PER_ATTEMPT per
/// attempt and a line saying the rest were dropped.
async fn a_jobs_log_and_progress_are_stored(fx: &Fixture) {
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    let short = logs_its_work::enqueue(&client, 4, 0).await.unwrap();
    let long = logs_its_work::enqueue(&client, 1, MAX_LOG_LINES_PER_ATTEMPT + 50)
        .await
        .unwrap();
    let server = fast_server(storage).start().unwrap();
    wait_for_state(storage, short, State::Succeeded).await;
    wait_until("the short job's five lines", || async {
        storage
            .job_log(JobLogQuery::new(short))
            .await
            .unwrap()
            .len()
            == 5
    })
    .await;
    let log = storage.job_log(JobLogQuery::new(short)).await.unwrap();
    let texts: Vec<&str> = log.iter().map(|line| line.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "step 1 of 4",
            "step 2 of 4",
            "step 3 of 4",
            "step 4 of 4",
            "a NUL \u{2400} in a line"
        ]
    );
    assert!(log.iter().all(|line| line.attempt == 1));
    assert!(log.windows(2).all(|pair| pair[0].at <= pair[1].at));
    assert_eq!(job(storage, short).await.progress, Some(1.0));

    wait_for_state(storage, long, State::Succeeded).await;
    let kept = MAX_LOG_LINES_PER_ATTEMPT as usize + 1;
    wait_until("the long job's lines", || async {
        storage
            .job_log(JobLogQuery::new(long).limit(2000))
            .await
            .unwrap()
            .len()
            >= kept
    })
    .await;
    server.shutdown().await;
    let log = storage
        .job_log(JobLogQuery::new(long).limit(2000))
        .await
        .unwrap();
    assert_eq!(log.len(), kept, "the first lines, then one that says so");
    assert_eq!(log[1].text, "a NUL \u{2400} in a line");
    assert!(
        log[kept - 1].text.contains("later lines are dropped"),
        "{}",
        log[kept - 1].text
    );
}

/// At shutdown, what the last attempts logged is written and their moves
/// are told before `shutdown` returns.
async fn shutdown_writes_the_last_lines_and_tells_the_last_moves(fx: &Fixture) {
    let key = fx.key("shutdown-log");
    let storage = &fx.storage;
    let client = Client::new(storage.clone());
    let id = logs_at_shutdown::enqueue(&client, key.clone())
        .await
        .unwrap();
    let recorder = Recorder::default();
    let server = fast_server(storage)
        .state_filter(recorder.clone())
        .start()
        .unwrap();
    wait_until("the job to start", || async { seen(&key) == ["started"] }).await;
    server.shutdown().await;
    assert_eq!(job(storage, id).await.state, State::Succeeded);
    let log = storage.job_log(JobLogQuery::new(id)).await.unwrap();
    let texts: Vec<&str> = log.iter().map(|line| line.text.as_str()).collect();
    assert_eq!(texts, ["stopping cleanly"]);
    assert_eq!(job(storage, id).await.progress, Some(1.0));
    let moves: Vec<State> = recorder.of(id).iter().map(|(_, to, _)| *to).collect();
    assert_eq!(moves, [State::Processing, State::Succeeded]);
}

on_every_storage!(
    shutdown_writes_the_last_lines_and_tells_the_last_moves,
    client_filters_add_parameters_and_reject,
    server_filters_wrap_each_attempt_in_order,
    state_filters_are_told_of_each_move,
    a_jobs_log_and_progress_are_stored,
);
