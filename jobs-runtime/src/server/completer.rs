//! Records the outcome of each attempt. The retry-or-fail decision is made
//! here from the job's retry policy; a batch of outcomes of every kind
//! (succeeded, failed, retried, given back) is then written by one storage
//! call.
//!
//! No outcome holds back another: while the storage is away (a transient
//! error) the batch waits with a doubling backoff and says so in the log;
//! a batch the storage refuses (an error that would repeat) is written job
//! by job, and a job whose outcome is still refused is recorded with a
//! fallback reason naming the storage's error. Only when even that is
//! refused is the job left to be rescued when its lease expires.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use jobs_core::{
    Attempt, Error, FetchedJob, FinishParams, JobError, JobId, JobOutcome, Outcome, Result,
    RetryPolicy, ServerRecord, decide,
};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tracing::{error, warn};

use super::Shared;
use crate::filters::StateTeller;
use crate::metrics;

/// The most outcomes recorded in one batch.
const MAX_BATCH: usize = 1000;
/// How long the completer gathers outcomes, when it has fewer than
/// [`GATHER_UP_TO`], before it writes them (graphile_worker's completion
/// batching does the same): one statement for many short jobs instead of
/// one for each few, which leaves the database more time for fetching. It
/// delays the record, never a job's start. Measured with 32 workers on
/// PostgreSQL, 100,000 no-op jobs: gathering up to 32 outcomes for 1 ms
/// cost the database 590 CPU ticks and drained 22,700 jobs/s; up to 256
/// for 2 ms, 430-450 ticks and 25,800-27,400 jobs/s.
const GATHER: Duration = Duration::from_millis(2);
/// Outcomes at which the completer stops gathering and writes.
const GATHER_UP_TO: usize = 256;
/// Batches written at once, each on its own connection: while one is in
/// the database the next one gathers and goes, so a slow round trip does
/// not hold every outcome behind it.
const WRITERS: usize = 2;
/// How long a job waits when this server does not know its name but
/// another live server does (a rolling deploy); the wait is forgiven.
pub const UNKNOWN_JOB_DELAY: Duration = Duration::from_secs(5);
/// The first wait after a transient storage error; it doubles up to
/// [`MAX_WRITE_BACKOFF`].
const FIRST_WRITE_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between tries of a write the storage could not take
/// (the database is away). The jobs stay held and their leases renewed
/// meanwhile; at shutdown the shutdown timeout bounds the wait.
const MAX_WRITE_BACKOFF: Duration = Duration::from_secs(5);

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum AttemptEnd {
    /// With the job's result, JSON.
    Succeeded { result: Option<String> },
    /// With the job's error, which says what follows: a retry, a
    /// permanent failure (arguments that do not decode), a snooze.
    Failed(JobError),
    /// No job of this name is registered on this server.
    Unknown { name: String },
    /// Stopped by the server at shutdown; requeued without counting.
    Interrupted,
    /// Fetched ahead of a free worker and never started before the server
    /// stopped; given back without counting.
    NotStarted,
    /// Stopped because its lease was lost: another server holds the job
    /// now, so nothing is recorded.
    LeaseLost,
}

impl AttemptEnd {
    /// How the attempt ended, for its span and metrics: `succeeded`,
    /// `failed` (whatever follows: a retry, a snooze, `Failed`),
    /// `unknown` (no job of its name here), or `stopped` (it did not run
    /// to its end: interrupted at shutdown, its lease lost, cancelled; a
    /// job never started has no attempt, and is not measured).
    pub fn outcome(&self) -> &'static str {
        match self {
            AttemptEnd::Succeeded { .. } => "succeeded",
            AttemptEnd::Failed(_) => "failed",
            AttemptEnd::Unknown { .. } => "unknown",
            AttemptEnd::Interrupted | AttemptEnd::NotStarted | AttemptEnd::LeaseLost => "stopped",
        }
    }
}

/// An attempt that ended, with what the completer needs to record it.
#[derive(Debug)]
pub(crate) struct Finished {
    pub job: Attempt,
    /// The job's name, for the state filters and the metrics.
    pub name: String,
    /// The job's queue, for the metrics.
    pub queue: String,
    pub max_attempts: u32,
    /// `None` when no job of that name is registered.
    pub retry_policy: Option<RetryPolicy>,
    pub end: AttemptEnd,
}

impl Finished {
    /// An attempt that ends before it ran.
    pub fn without_running(job: &FetchedJob, end: AttemptEnd) -> Self {
        Finished {
            job: job.held(),
            name: job.name.clone(),
            queue: job.queue.clone(),
            max_attempts: job.max_attempts,
            retry_policy: None,
            end,
        }
    }
}

/// What a job task sends: the attempt, and the capacity permit it held
/// since its fetch, released once the outcome is recorded.
pub(crate) type Report = (Finished, OwnedSemaphorePermit);

pub(crate) async fn run(shared: Arc<Shared>, mut reports: mpsc::UnboundedReceiver<Report>) {
    let mut writing = FuturesUnordered::new();
    loop {
        if writing.len() >= WRITERS {
            writing.next().await;
            continue;
        }
        let mut batch = Vec::new();
        let received = tokio::select! {
            received = reports.recv_many(&mut batch, MAX_BATCH) => received,
            Some(()) = writing.next() => continue,
        };
        if received == 0 {
            break;
        }
        // Few outcomes: wait a moment for more, still driving the writes.
        let gathering = tokio::time::sleep(GATHER);
        tokio::pin!(gathering);
        while batch.len() < GATHER_UP_TO {
            let room = MAX_BATCH - batch.len();
            tokio::select! {
                biased;
                received = reports.recv_many(&mut batch, room) => if received == 0 { break },
                Some(()) = writing.next() => {}
                () = &mut gathering => break,
            }
        }
        writing.push(record_batch(&shared, batch));
    }
    while writing.next().await.is_some() {}
}

/// Records a batch, then forgets its attempts and frees their capacity.
async fn record_batch(shared: &Shared, batch: Vec<Report>) {
    shared
        .held
        .mark_recording(batch.iter().map(|(finished, _)| finished.job));
    record(shared, &batch).await;
    for (finished, _) in &batch {
        shared.held.release(finished.job);
    }
    // Dropping the reports (here) frees their capacity.
}

/// Decides and records the outcomes of a batch.
async fn record(shared: &Shared, batch: &[Report]) {
    let servers = if batch
        .iter()
        .any(|(finished, _)| matches!(finished.end, AttemptEnd::Unknown { .. }))
    {
        Some(shared.storage.backend().servers().await)
    } else {
        None
    };
    let (outcomes, attempts): (Vec<JobOutcome>, Vec<&Finished>) = batch
        .iter()
        .filter_map(|(finished, _)| {
            let outcome = decide(shared, finished, servers.as_ref())?;
            let outcome = JobOutcome {
                job: finished.job,
                outcome,
            };
            Some((outcome, finished))
        })
        .unzip();
    if outcomes.is_empty() {
        return;
    }
    let refused = match write(shared, &outcomes).await {
        Ok(moved) => {
            tell(shared, &outcomes, &attempts, &moved);
            return;
        }
        Err(refused) => refused,
    };
    if outcomes.len() > 1 {
        warn!(
            error = %refused,
            jobs = outcomes.len(),
            "the storage refused a batch of outcomes; recording them one by one"
        );
    }
    for (outcome, finished) in outcomes.into_iter().zip(attempts) {
        record_alone(shared, outcome, finished).await;
    }
}

/// Tells the state filters and the metrics of the outcomes that moved
/// their job.
fn tell(shared: &Shared, outcomes: &[JobOutcome], attempts: &[&Finished], moved: &[JobId]) {
    let jobs: Vec<(&str, &str)> = attempts
        .iter()
        .map(|finished| (finished.name.as_str(), finished.queue.as_str()))
        .collect();
    outcomes_moved(&shared.states, outcomes, &jobs, moved);
}

/// Tells the state filters and the metrics of the outcomes that moved
/// their job (`moved`): what the completer and the rescuer do once the
/// storage recorded outcomes. `jobs` are the outcomes' jobs' names and
/// queues, in the same order.
pub(super) fn outcomes_moved(
    states: &StateTeller,
    outcomes: &[JobOutcome],
    jobs: &[(&str, &str)],
    moved: &[JobId],
) {
    states.tell_outcomes(outcomes.iter().zip(jobs.iter().map(|job| job.0)), moved);
    metrics::outcomes_recorded(outcomes.iter().zip(jobs.iter().copied()), moved);
}

/// The outcome to record for an attempt; `None` when nothing is recorded
/// (its lease was lost: another server holds the job).
fn decide(
    shared: &Shared,
    finished: &Finished,
    servers: Option<&Result<Vec<ServerRecord>>>,
) -> Option<Outcome> {
    let job = finished.job;
    let outcome = match &finished.end {
        AttemptEnd::Succeeded { result } => Outcome::Succeeded {
            result: result.clone(),
        },
        AttemptEnd::LeaseLost => return None,
        AttemptEnd::Interrupted => Outcome::Requeue {
            reason: format!(
                "server {} stopped before the job finished (it was shutting down)",
                shared.id
            ),
            forgive: true,
        },
        AttemptEnd::NotStarted => Outcome::Requeue {
            reason: format!(
                "server {} stopped before the job started (it was fetched ahead of a free worker)",
                shared.id
            ),
            forgive: true,
        },
        AttemptEnd::Failed(error) => decide::failed_attempt(
            finished.retry_policy,
            job.attempt,
            finished.max_attempts,
            error,
        ),
        AttemptEnd::Unknown { name } => unknown(shared, name, servers),
    };
    Some(outcome)
}

/// A job whose name this server does not know: when another live server
/// knows it (servers of two versions during a deploy), it waits
/// [`UNKNOWN_JOB_DELAY`] without losing an attempt; when no server knows
/// it, it fails (DESIGN.md: "whose job name no server knows"). When the
/// server list could not be read, it waits too: failing it then could be
/// wrong.
fn unknown(shared: &Shared, name: &str, servers: Option<&Result<Vec<ServerRecord>>>) -> Outcome {
    let delay = UNKNOWN_JOB_DELAY.as_secs();
    let missing = format!("no job named `{name}` on server {}", shared.id);
    let servers = match servers {
        Some(Ok(servers)) => servers,
        Some(Err(error)) => {
            return Outcome::Retry {
                delay: UNKNOWN_JOB_DELAY,
                reason: format!(
                    "{missing}; the server list could not be read ({error}): trying again in {delay} s"
                ),
                error: missing,
                forgive: true,
            };
        }
        None => &Vec::new(),
    };
    let knower = servers.iter().find(|server| {
        server.id != shared.id
            && server.silent_for < shared.config.server_timeout
            && server.jobs.iter().any(|job| job == name)
    });
    match knower {
        Some(knower) => Outcome::Retry {
            delay: UNKNOWN_JOB_DELAY,
            reason: format!(
                "{missing}; server {} knows it: trying again in {delay} s",
                knower.id
            ),
            error: missing,
            forgive: true,
        },
        None => Outcome::Failed {
            reason: format!(
                "no job named `{name}` is registered on any running server (this one is {}); is it defined with #[job] in the binary?",
                shared.id
            ),
        },
    }
}

/// Writes `outcomes` in one call, waiting out transient errors; returns
/// the jobs that moved, or the error when the storage refuses them for
/// good.
async fn write(shared: &Shared, outcomes: &[JobOutcome]) -> Result<Vec<JobId>, Error> {
    let moved = until_not_transient(outcomes.len(), || {
        shared.storage.finish(FinishParams {
            jobs: outcomes.to_vec(),
        })
    })
    .await?;
    report_stale(outcomes, &moved);
    Ok(moved)
}

/// Records one job's outcome; if the storage refuses it for good, records
/// the same move with its texts replaced by a fallback reason naming the
/// storage's error; if that is refused too, leaves the job to be rescued.
async fn record_alone(shared: &Shared, outcome: JobOutcome, finished: &Finished) {
    let refused = match write(shared, std::slice::from_ref(&outcome)).await {
        Ok(moved) => {
            tell(shared, std::slice::from_ref(&outcome), &[finished], &moved);
            return;
        }
        Err(refused) => refused,
    };
    let fallback = JobOutcome {
        job: outcome.job,
        outcome: fallback(&outcome.outcome, &refused),
    };
    warn!(
        job.id = %outcome.job.id,
        attempt = outcome.job.attempt,
        error = %refused,
        "the storage refused this job's outcome; recording it with a fallback reason"
    );
    match write(shared, std::slice::from_ref(&fallback)).await {
        Ok(moved) => tell(shared, std::slice::from_ref(&fallback), &[finished], &moved),
        Err(error) => error!(
            job.id = %outcome.job.id,
            attempt = outcome.job.attempt,
            %error,
            "the storage refused this job's outcome even with a fallback reason; the job will be rescued when its lease expires"
        ),
    }
}

/// The same move as `outcome`, with every text replaced by one that says
/// why the original could not be stored.
fn fallback(outcome: &Outcome, refused: &Error) -> Outcome {
    // Made storable like every text (`Outcome::stored`), the error too.
    let note = |what: &str| format!("{what} (the original text could not be stored: {refused})");
    match outcome {
        // A success without a result has no text to replace.
        Outcome::Succeeded { result: None } => Outcome::Succeeded { result: None },
        // A result the storage refuses is not dropped silently: its
        // continuations would run without it.
        Outcome::Succeeded { result: Some(_) } => Outcome::Failed {
            reason: note("the job succeeded, but its result could not be stored"),
        },
        Outcome::Failed { .. } => Outcome::Failed {
            reason: note("the job failed"),
        },
        Outcome::Retry {
            delay,
            reason,
            forgive,
            ..
        } => Outcome::Retry {
            delay: *delay,
            reason: note(&reason.chars().take(200).collect::<String>()),
            error: note("the attempt failed"),
            forgive: *forgive,
        },
        Outcome::Requeue { forgive, .. } => Outcome::Requeue {
            reason: note("given back unfinished"),
            forgive: *forgive,
        },
        Outcome::Rescued {
            attempt,
            attempts_left,
            ..
        } => Outcome::Rescued {
            reason: note("rescued after its lease expired"),
            server: None,
            attempt: *attempt,
            attempts_left: *attempts_left,
        },
    }
}

/// Logs the outcomes the storage did not apply: their attempt was no longer
/// current (the lease expired and the job was rescued, and perhaps run
/// again elsewhere).
fn report_stale(outcomes: &[JobOutcome], moved: &[JobId]) {
    if moved.len() == outcomes.len() {
        return;
    }
    let moved: HashSet<JobId> = moved.iter().copied().collect();
    for outcome in outcomes.iter().filter(|o| !moved.contains(&o.job.id)) {
        warn!(
            job.id = %outcome.job.id,
            attempt = outcome.job.attempt,
            "the outcome was not recorded: this attempt is no longer the job's current one (its lease expired and it was rescued)"
        );
    }
}

/// Runs a storage write until it succeeds or fails with an error that
/// would repeat, waiting with a doubling backoff after transient errors
/// and saying in the log what it waits for.
async fn until_not_transient<T, F, Fut>(jobs: usize, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut wait = FIRST_WRITE_BACKOFF;
    loop {
        match call().await {
            Err(error) if error.is_transient() => {
                warn!(%error, jobs, retry_in = ?wait, "waiting for the storage to record outcomes");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_WRITE_BACKOFF);
            }
            result => return result,
        }
    }
}
