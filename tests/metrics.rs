//! The metrics after a known run, through a test recorder installed for
//! the whole binary, on every storage (each on queues of its own, so the
//! two runs' labels never meet).

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use common::*;
use jobs::metrics as names;
use jobs::prelude::*;
use metrics_util::CompositeKey;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// Succeeds, fails for good, or fails on its first attempt only.
#[job(retries = 1)]
async fn measured(ctx: JobContext, how: String) -> Result<(), JobError> {
    match how.as_str() {
        "fail" => Err(JobError::permanent("no luck")),
        "retry" if ctx.attempt() == 1 => {
            Err(JobError::new("busy").retry_after(Duration::from_millis(50)))
        }
        _ => Ok(()),
    }
}

static SNAPSHOTTER: LazyLock<Snapshotter> = LazyLock::new(|| {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("the only recorder");
    jobs::metrics::describe();
    snapshotter
});

/// What a metric recorded since the binary started: a snapshot drains the
/// recorder's counters, gauges and histograms, so every snapshot is added
/// here (the tests of this binary run at once, each reading them).
#[derive(Debug)]
enum Seen {
    Counter(u64),
    /// The largest value a gauge was seen at.
    Gauge(f64),
    /// How many values a histogram recorded.
    Histogram(usize),
}

static SEEN: LazyLock<Mutex<HashMap<CompositeKey, Seen>>> = LazyLock::new(Default::default);

/// What the metric `name` whose labels include all of `labels` recorded.
fn value(name: &str, labels: &[(&str, &str)]) -> Option<Seen> {
    let mut seen = SEEN.lock().unwrap();
    for (key, _, _, value) in SNAPSHOTTER.snapshot().into_vec() {
        match (seen.entry(key).or_insert(Seen::Counter(0)), value) {
            (Seen::Counter(total), DebugValue::Counter(n)) => *total += n,
            (entry @ Seen::Counter(0), DebugValue::Gauge(value)) => {
                *entry = Seen::Gauge(value.into_inner());
            }
            (Seen::Gauge(largest), DebugValue::Gauge(value)) => {
                *largest = largest.max(value.into_inner());
            }
            (entry @ Seen::Counter(0), DebugValue::Histogram(values)) => {
                *entry = Seen::Histogram(values.len());
            }
            (Seen::Histogram(count), DebugValue::Histogram(values)) => *count += values.len(),
            (entry, value) => panic!("{entry:?} then {value:?}"),
        }
    }
    seen.iter()
        .find(|(key, _)| {
            let key = key.key();
            key.name() == name
                && labels.iter().all(|(label, wanted)| {
                    key.labels()
                        .any(|l| l.key() == *label && l.value() == *wanted)
                })
        })
        .map(|(_, value)| match value {
            Seen::Counter(n) => Seen::Counter(*n),
            Seen::Gauge(v) => Seen::Gauge(*v),
            Seen::Histogram(n) => Seen::Histogram(*n),
        })
}

fn counter(name: &str, labels: &[(&str, &str)]) -> u64 {
    match value(name, labels) {
        Some(Seen::Counter(n)) => n,
        None => 0,
        Some(other) => panic!("{name} is no counter: {other:?}"),
    }
}

/// The largest value the gauge was seen at.
fn gauge(name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    match value(name, labels)? {
        Seen::Gauge(value) => Some(value),
        other => panic!("{name} is no gauge: {other:?}"),
    }
}

/// How many values a histogram recorded.
fn observations(name: &str, labels: &[(&str, &str)]) -> usize {
    match value(name, labels) {
        Some(Seen::Histogram(n)) => n,
        None => 0,
        Some(other) => panic!("{name} is no histogram: {other:?}"),
    }
}

async fn counts_follow_a_known_run(fx: &Fixture) {
    LazyLock::force(&SNAPSHOTTER);
    let queue = format!("measured-{}", fx.storage_kind());
    let idle = format!("unserved-{}", fx.storage_kind());
    let labels = [("job", "measured"), ("queue", queue.as_str())];
    let client = Client::new(fx.storage.clone());
    let on = |queue: &str| EnqueueOptions::new().queue(queue);
    let mut ids = Vec::new();
    for how in ["ok", "ok", "ok", "fail", "retry"] {
        ids.push(
            measured::enqueue_with(&client, on(&queue), how.into())
                .await
                .unwrap(),
        );
    }
    // Two jobs wait on a queue no server serves: its length and latency.
    for _ in 0..2 {
        measured::enqueue_with(&client, on(&idle), "ok".into())
            .await
            .unwrap();
    }
    assert_eq!(counter(names::ENQUEUED, &labels), 5);
    assert_eq!(counter(names::ENQUEUED, &[("queue", idle.as_str())]), 2);

    let server = fast_server(&fx.storage)
        .queues([queue.as_str()])
        .queue_metrics_interval(Duration::from_millis(50))
        .start()
        .unwrap();
    for (id, state) in ids.iter().zip([
        State::Succeeded,
        State::Succeeded,
        State::Succeeded,
        State::Failed,
        State::Succeeded,
    ]) {
        wait_for_state(&fx.storage, *id, state).await;
    }
    // The counters follow the storage's record, written just before.
    wait_until("the outcomes to be counted", || {
        std::future::ready(counter(names::SUCCEEDED, &labels) == 4)
    })
    .await;
    assert_eq!(counter(names::STARTED, &labels), 6, "5 jobs, one twice");
    assert_eq!(counter(names::FAILED, &labels), 1);
    assert_eq!(counter(names::RETRIED, &labels), 1);
    assert_eq!(counter(names::RESCUED, &labels), 0);
    let ended = |outcome| {
        observations(
            names::ATTEMPT_DURATION,
            &[labels[0], labels[1], ("outcome", outcome)],
        )
    };
    assert_eq!((ended("succeeded"), ended("failed")), (4, 2));

    wait_until("the idle queue's gauges", || {
        let length = gauge(names::QUEUE_LENGTH, &[("queue", idle.as_str())]);
        let latency = gauge(names::QUEUE_LATENCY, &[("queue", idle.as_str())]);
        std::future::ready(length == Some(2.0) && latency.is_some_and(|s| s > 0.0))
    })
    .await;
    assert!(
        observations(
            names::STORAGE_CALL_DURATION,
            &[("call", "fetch"), ("outcome", "ok")]
        ) > 0
    );
    server.shutdown().await;
    // No attempt runs once the server stopped (the gauge is the
    // process's, and this binary's other test may run: it is not read).
}

on_every_storage!(counts_follow_a_known_run);
