//! Per-call options through `EnqueueOptions`: each option, given to
//! `Client::enqueue_with` or to a generated `enqueue_with` helper, is what
//! the storage holds when the job is read back; an option not given leaves
//! the job's own value. Each case runs on SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use jobs::prelude::*;
use jobs::{Error, JobRecord};

use common::{Fixture, job};

/// Sends a welcome mail.
#[job(queue = "mail", retries = 4)]
async fn send_welcome(user_id: i64, template: String) {
    let _ = (user_id, template);
}

/// No attribute key: the default queue and retries.
#[job]
async fn tick() {}

/// A whole second, so that every storage's time precision keeps it.
fn some_time_ahead() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() + 3600, 0).unwrap()
}

fn welcome() -> SendWelcome {
    SendWelcome {
        user_id: 42,
        template: "welcome".into(),
    }
}

fn assert_due_after(record: &JobRecord, delay: Duration) {
    assert_eq!(record.state, State::Scheduled);
    let run_at = record.run_at.expect("a Scheduled job has a due time");
    // Both times are the storage's clock at the same store.
    let after = run_at - record.created_at;
    let delay = TimeDelta::from_std(delay).unwrap();
    assert!(
        (after - delay).abs() < TimeDelta::seconds(1),
        "due {after} after its creation, expected {delay}"
    );
}

async fn no_option_leaves_the_jobs_own_values(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());

    let id = client
        .enqueue_with(welcome(), EnqueueOptions::new())
        .await
        .unwrap();
    let record = job(&storage, id).await;
    assert_eq!(record.name, "send_welcome");
    assert_eq!(record.queue, "mail");
    assert_eq!(
        record.max_attempts, 5,
        "retries = 4, plus the first attempt"
    );
    assert_eq!(record.state, State::Enqueued);
    assert_eq!(record.run_at, None);

    let id = tick::enqueue_with(&client, EnqueueOptions::default())
        .await
        .unwrap();
    let record = job(&storage, id).await;
    assert_eq!(record.queue, "default");
    assert_eq!(record.max_attempts, 11, "10 retries unless given");
}

async fn queue_replaces_the_jobs_queue(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());

    let options = EnqueueOptions::new().queue("critical");
    let id = client.enqueue_with(welcome(), options).await.unwrap();
    let record = job(&storage, id).await;
    assert_eq!(record.queue, "critical");
    assert_eq!(record.state, State::Enqueued);
    assert_eq!(record.max_attempts, 5);
}

async fn delay_is_due_that_long_after_it_is_stored(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());

    let delay = Duration::from_secs(90);
    let id = client
        .enqueue_with(welcome(), EnqueueOptions::new().delay(delay))
        .await
        .unwrap();
    let record = job(&storage, id).await;
    assert_due_after(&record, delay);
    assert_eq!(record.queue, "mail");

    // The shorthand is the same call.
    let id = send_welcome::schedule_in(&client, delay, 1, "nudge".into())
        .await
        .unwrap();
    assert_due_after(&job(&storage, id).await, delay);
}

async fn at_schedules_at_that_time(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());

    let at = some_time_ahead();
    let id = client
        .enqueue_with(welcome(), EnqueueOptions::new().at(at))
        .await
        .unwrap();
    let record = job(&storage, id).await;
    assert_eq!(record.state, State::Scheduled);
    assert_eq!(record.run_at, Some(at));

    // The last due time set wins, whichever kind it is.
    let delay = Duration::from_secs(60);
    let options = EnqueueOptions::new().at(at).delay(delay);
    let id = client.enqueue_with(welcome(), options).await.unwrap();
    assert_due_after(&job(&storage, id).await, delay);

    let id = send_welcome::schedule_at(&client, at, 1, "nudge".into())
        .await
        .unwrap();
    assert_eq!(job(&storage, id).await.run_at, Some(at));
}

async fn max_attempts_replaces_the_jobs_retries(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());

    let id = client
        .enqueue_with(welcome(), EnqueueOptions::new().max_attempts(2))
        .await
        .unwrap();
    assert_eq!(job(&storage, id).await.max_attempts, 2);

    // A job always gets its first attempt.
    let id = client
        .enqueue_with(welcome(), EnqueueOptions::new().max_attempts(0))
        .await
        .unwrap();
    assert_eq!(job(&storage, id).await.max_attempts, 1);
}

async fn the_generated_helper_takes_options_then_the_arguments(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());

    let at = some_time_ahead();
    let options = EnqueueOptions::new()
        .queue("critical")
        .at(at)
        .max_attempts(3);
    let id = send_welcome::enqueue_with(&client, options, 7, "hello".into())
        .await
        .unwrap();
    let record = job(&storage, id).await;
    assert_eq!(record.name, "send_welcome");
    assert_eq!(record.queue, "critical");
    assert_eq!(record.state, State::Scheduled);
    assert_eq!(record.run_at, Some(at));
    assert_eq!(record.max_attempts, 3);
    let args: serde_json::Value = serde_json::from_str(&record.args).unwrap();
    assert_eq!(
        args,
        serde_json::json!({ "user_id": 7, "template": "hello" })
    );
}

async fn an_empty_queue_name_is_a_config_error_and_stores_nothing(fx: &Fixture) {
    let storage = fx.storage.clone();
    let client = Client::new(storage.clone());

    for queue in ["", "   "] {
        let error = client
            .enqueue_with(welcome(), EnqueueOptions::new().queue(queue))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error}");
        assert!(error.to_string().contains("send_welcome"), "{error}");

        let error =
            send_welcome::enqueue_with(&client, EnqueueOptions::new().queue(queue), 1, "x".into())
                .await
                .unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error}");
    }
    assert_eq!(storage.counts().await.unwrap().total(), 0);
}

on_every_storage!(
    no_option_leaves_the_jobs_own_values,
    queue_replaces_the_jobs_queue,
    delay_is_due_that_long_after_it_is_stored,
    at_schedules_at_that_time,
    max_attempts_replaces_the_jobs_retries,
    the_generated_helper_takes_options_then_the_arguments,
    an_empty_queue_name_is_a_config_error_and_stores_nothing,
);
