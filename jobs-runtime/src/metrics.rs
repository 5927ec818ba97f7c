//! The metrics every client and server records, through the [`metrics`]
//! crate's facade: nothing is exported until the application installs a
//! recorder (`metrics-exporter-prometheus`, `metrics-exporter-statsd`, ...).
//! The `metrics` macros build each metric's key (its labels) before they
//! look for a recorder, so recording costs a few small allocations per
//! attempt and per storage call even without one (measured on the hot path:
//! within the benchmark's spread). The example `prometheus` serves them at
//! `/metrics`.
//!
//! | name | kind | unit | labels | what |
//! | --- | --- | --- | --- | --- |
//! | [`ENQUEUED`] `jobs_enqueued_total` | counter | jobs | `job`, `queue` | jobs handed to the storage to store (enqueued, scheduled or awaiting a parent), recurring ticks included; a unique job whose key another job held counts too, and so does one enqueued in a transaction that later rolled back |
//! | [`STARTED`] `jobs_started_total` | counter | attempts | `job`, `queue` | attempts started by a worker |
//! | [`SUCCEEDED`] `jobs_succeeded_total` | counter | jobs | `job`, `queue` | attempts recorded as `Succeeded` |
//! | [`FAILED`] `jobs_failed_total` | counter | jobs | `job`, `queue` | jobs moved to `Failed`: no attempt left, a permanent error, or rescued with none left |
//! | [`RETRIED`] `jobs_retried_total` | counter | attempts | `job`, `queue` | failed attempts scheduled to run again (a snooze and a wait for a server that knows the job are not counted) |
//! | [`RESCUED`] `jobs_rescued_total` | counter | jobs | `job`, `queue` | jobs whose lease expired (their server died) given back, or failed when no attempt was left |
//! | [`ATTEMPT_DURATION`] `jobs_attempt_duration_seconds` | histogram | seconds | `job`, `queue`, `outcome` | how long an attempt ran, from its start on a worker to its end; `outcome` is `succeeded`, `failed` (a timeout too), `unknown` (no job of that name on the server) or `stopped` (cancelled, its lease lost, or interrupted at shutdown) |
//! | [`WORKERS_BUSY`] `jobs_workers_busy` | gauge | workers | none | workers running an attempt now, in this process (summed over its servers) |
//! | [`QUEUE_LENGTH`] `jobs_queue_length` | gauge | jobs | `queue` | jobs `Enqueued` in the queue |
//! | [`QUEUE_LATENCY`] `jobs_queue_latency_seconds` | gauge | seconds | `queue` | how long the job at the queue's head has waited (see [`QueueCounts::oldest_enqueued_at`](jobs_core::QueueCounts::oldest_enqueued_at)); 0 when none waits |
//! | [`STORAGE_CALL_DURATION`] `jobs_storage_call_duration_seconds` | histogram | seconds | `call`, `outcome` | each storage call through a [`Storage`](crate::Storage) handle, named as its tracing span without `storage.` (`fetch`, `finish`, `enqueue`, ...); `outcome` is `ok` or `error` |
//!
//! The counters of outcomes count what a storage recorded, once per job
//! moved: an outcome the storage did not apply (the attempt was no longer
//! the job's current one) is not counted. The queue gauges are read by the
//! server that leads maintenance, every
//! [`ServerConfig::queue_metrics_interval`](crate::server::ServerConfig::queue_metrics_interval)
//! (10 s by default), from the same counts as the dashboard; the other
//! servers do not set them, so aggregate them across processes with `max`,
//! not `sum`. A queue whose jobs all finished reads 0 at the next
//! reading. A server that stops leading sets its gauges to 0, so that
//! only the leader's readings count under `max`.

use std::collections::HashSet;
use std::time::Duration;

use ::metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use jobs_core::{JobId, JobOutcome, NewJob, Outcome, QueueCounts, State};

/// Jobs stored by a client: counter, labels `job`, `queue`.
pub const ENQUEUED: &str = "jobs_enqueued_total";
/// Attempts started by a worker: counter, labels `job`, `queue`.
pub const STARTED: &str = "jobs_started_total";
/// Attempts recorded as `Succeeded`: counter, labels `job`, `queue`.
pub const SUCCEEDED: &str = "jobs_succeeded_total";
/// Jobs moved to `Failed`: counter, labels `job`, `queue`.
pub const FAILED: &str = "jobs_failed_total";
/// Failed attempts scheduled to run again: counter, labels `job`, `queue`.
pub const RETRIED: &str = "jobs_retried_total";
/// Jobs rescued after their lease expired: counter, labels `job`, `queue`.
pub const RESCUED: &str = "jobs_rescued_total";
/// How long attempts ran: histogram in seconds, labels `job`, `queue`,
/// `outcome` (`succeeded`, `failed`, `unknown`, `stopped`).
pub const ATTEMPT_DURATION: &str = "jobs_attempt_duration_seconds";
/// Workers running an attempt in this process: gauge.
pub const WORKERS_BUSY: &str = "jobs_workers_busy";
/// Jobs `Enqueued` per queue: gauge, label `queue`.
pub const QUEUE_LENGTH: &str = "jobs_queue_length";
/// How long the job at a queue's head has waited: gauge in seconds, label
/// `queue`.
pub const QUEUE_LATENCY: &str = "jobs_queue_latency_seconds";
/// How long storage calls took: histogram in seconds, labels `call`,
/// `outcome` (`ok`, `error`).
pub const STORAGE_CALL_DURATION: &str = "jobs_storage_call_duration_seconds";

/// Describes every metric (unit and meaning) to the recorder installed
/// now: an exporter shows them as its `HELP` and unit. Call it once after
/// installing the recorder; recording works without it.
pub fn describe() {
    let jobs = Unit::Count;
    describe_counter!(
        ENQUEUED,
        jobs,
        "Jobs stored by a client (enqueued, scheduled or awaiting a parent)."
    );
    describe_counter!(STARTED, jobs, "Attempts started by a worker.");
    describe_counter!(SUCCEEDED, jobs, "Attempts recorded as Succeeded.");
    describe_counter!(FAILED, jobs, "Jobs moved to Failed.");
    describe_counter!(RETRIED, jobs, "Failed attempts scheduled to run again.");
    describe_counter!(
        RESCUED,
        jobs,
        "Jobs given back (or failed) after their lease expired."
    );
    describe_histogram!(
        ATTEMPT_DURATION,
        Unit::Seconds,
        "How long attempts ran, by outcome (succeeded, failed, unknown, stopped)."
    );
    describe_gauge!(
        WORKERS_BUSY,
        jobs,
        "Workers running an attempt in this process."
    );
    describe_gauge!(QUEUE_LENGTH, jobs, "Jobs Enqueued in the queue.");
    describe_gauge!(
        QUEUE_LATENCY,
        Unit::Seconds,
        "How long the job at the queue's head has waited."
    );
    describe_histogram!(
        STORAGE_CALL_DURATION,
        Unit::Seconds,
        "How long storage calls took, by call and outcome (ok, error)."
    );
}

/// The jobs of a storage call that stores `jobs`, to count once it
/// succeeded ([`Enqueueing::stored`]).
pub(crate) struct Enqueueing(Vec<(String, String, u64)>);

impl Enqueueing {
    /// The jobs' names and queues, a run of jobs of the same name and
    /// queue (a bulk enqueue) counted as one entry.
    pub(crate) fn of(jobs: &[NewJob]) -> Self {
        let mut runs: Vec<(String, String, u64)> = Vec::new();
        for job in jobs {
            match runs.last_mut() {
                Some((name, queue, n)) if *name == job.name && *queue == job.queue => *n += 1,
                _ => runs.push((job.name.clone(), job.queue.clone(), 1)),
            }
        }
        Enqueueing(runs)
    }

    /// Counts the jobs as stored ([`ENQUEUED`]).
    pub(crate) fn stored(self) {
        for (job, queue, n) in self.0 {
            counter!(ENQUEUED, "job" => job, "queue" => queue).increment(n);
        }
    }
}

/// The name of a job as a label: borrowed when the server knows the job
/// (its registered name lives as long as the program), copied otherwise.
pub(crate) type JobLabel = ::metrics::SharedString;

/// Counts an attempt of `job` on `queue` starting.
pub(crate) fn started(job: &JobLabel, queue: &str) {
    counter!(STARTED, "job" => job.clone(), "queue" => queue.to_owned()).increment(1);
}

/// Records how long an attempt of `job` on `queue` ran, and how it ended.
pub(crate) fn attempt_ended(job: JobLabel, queue: &str, outcome: &'static str, ran: Duration) {
    ::metrics::histogram!(
        ATTEMPT_DURATION,
        "job" => job,
        "queue" => queue.to_owned(),
        "outcome" => outcome
    )
    .record(ran.as_secs_f64());
}

/// Counts the outcomes of `outcomes` (each with its job's name and queue)
/// whose job the storage moved (`moved`).
pub(crate) fn outcomes_recorded<'a>(
    outcomes: impl ExactSizeIterator<Item = (&'a JobOutcome, (&'a str, &'a str))>,
    moved: &[JobId],
) {
    // Mostly every outcome moved its job (a storage moves each job once):
    // no set to build then.
    let all = outcomes.len() == moved.len();
    let moved: HashSet<JobId> = if all {
        HashSet::new()
    } else {
        moved.iter().copied().collect()
    };
    for (outcome, (job, queue)) in outcomes {
        if all || moved.contains(&outcome.job.id) {
            outcome_recorded(job, queue, &outcome.outcome);
        }
    }
}

/// Counts an outcome the storage applied to a job of `job` on `queue`.
fn outcome_recorded(job: &str, queue: &str, outcome: &Outcome) {
    let name = match outcome {
        Outcome::Succeeded { .. } => SUCCEEDED,
        Outcome::Failed { .. } => FAILED,
        Outcome::Retry { forgive: false, .. } => RETRIED,
        // A snooze, a wait for a server that knows the job, a job given
        // back at shutdown: no attempt was lost.
        Outcome::Retry { forgive: true, .. } | Outcome::Requeue { .. } => return,
        Outcome::Rescued { attempts_left, .. } => {
            counter!(RESCUED, "job" => job.to_owned(), "queue" => queue.to_owned()).increment(1);
            if *attempts_left {
                return;
            }
            FAILED
        }
    };
    counter!(name, "job" => job.to_owned(), "queue" => queue.to_owned()).increment(1);
}

/// One worker busy while this lives.
pub(crate) struct BusyWorker(());

impl BusyWorker {
    pub(crate) fn start() -> Self {
        gauge!(WORKERS_BUSY).increment(1.0);
        BusyWorker(())
    }
}

impl Drop for BusyWorker {
    fn drop(&mut self) {
        gauge!(WORKERS_BUSY).decrement(1.0);
    }
}

/// Sets the queue gauges from `queues`, read at `now`.
pub(crate) fn queues_read(queues: &[QueueCounts], now: chrono::DateTime<chrono::Utc>) {
    for counts in queues {
        let queue = counts.queue.clone();
        gauge!(QUEUE_LENGTH, "queue" => queue.clone())
            .set(counts.counts.get(State::Enqueued) as f64);
        let waited = counts
            .oldest_enqueued_at
            .map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
        gauge!(QUEUE_LATENCY, "queue" => queue).set(waited);
    }
}

/// Sets the queue gauges of `queue` to 0: none of its jobs waits.
pub(crate) fn queue_emptied(queue: &str) {
    gauge!(QUEUE_LENGTH, "queue" => queue.to_owned()).set(0.0);
    gauge!(QUEUE_LATENCY, "queue" => queue.to_owned()).set(0.0);
}

/// Records how long the storage call `call` took.
pub(crate) fn storage_call(call: &'static str, ok: bool, took: Duration) {
    let outcome = if ok { "ok" } else { "error" };
    ::metrics::histogram!(STORAGE_CALL_DURATION, "call" => call, "outcome" => outcome)
        .record(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use jobs_core::Attempt;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::*;

    fn outcome(id: i64, outcome: Outcome) -> JobOutcome {
        JobOutcome {
            job: Attempt {
                id: JobId(id),
                attempt: 1,
            },
            outcome,
        }
    }

    fn rescued(attempts_left: bool) -> Outcome {
        Outcome::Rescued {
            reason: "lease expired".into(),
            server: None,
            attempt: 1,
            attempts_left,
        }
    }

    /// Each outcome the storage applied counts once, under its name; a
    /// rescue with no attempt left is a failure too; an outcome that did
    /// not move its job, a snooze and a requeue count nothing.
    #[test]
    fn outcomes_count_what_the_storage_moved() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let outcomes = [
            outcome(1, Outcome::Succeeded { result: None }),
            outcome(
                2,
                Outcome::Failed {
                    reason: "no".into(),
                },
            ),
            outcome(
                3,
                Outcome::Retry {
                    delay: Duration::from_secs(1),
                    reason: "busy".into(),
                    error: "busy".into(),
                    forgive: false,
                },
            ),
            outcome(
                4,
                Outcome::Retry {
                    delay: Duration::from_secs(1),
                    reason: "snoozed".into(),
                    error: "snoozed".into(),
                    forgive: true,
                },
            ),
            outcome(5, rescued(true)),
            outcome(6, rescued(false)),
            outcome(7, Outcome::Succeeded { result: None }),
            outcome(
                8,
                Outcome::Requeue {
                    reason: "stopping".into(),
                    forgive: true,
                },
            ),
        ];
        // Job 7's attempt was no longer current: not moved.
        let moved: Vec<JobId> = [1, 2, 3, 4, 5, 6, 8].map(JobId).to_vec();
        ::metrics::with_local_recorder(&recorder, || {
            outcomes_recorded(outcomes.iter().map(|o| (o, ("mail", "default"))), &moved);
        });
        let mut counts: Vec<(String, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| match value {
                DebugValue::Counter(n) => (key.key().name().to_owned(), n),
                other => panic!("{other:?}"),
            })
            .collect();
        counts.sort();
        let expected = [(FAILED, 2), (RESCUED, 2), (RETRIED, 1), (SUCCEEDED, 1)];
        let expected: Vec<(String, u64)> = expected
            .iter()
            .map(|(name, n)| ((*name).to_owned(), *n))
            .collect();
        assert_eq!(counts, expected);
    }
}
