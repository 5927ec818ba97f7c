//! Runs one attempt of a job in its tracing span (`job`): find its code,
//! decode its arguments, run it inside the server filters, record its
//! metrics, and turn a panic anywhere in that (a `Deserialize` impl, a filter too)
//! into that job's failure (River's `jobexecutor`).
//!
//! An attempt asked to stop sees its `JobContext` cancellation token fire
//! and gets a grace to return: the server's cancel grace after a cancel, a
//! lost lease or its timeout; the rest of the shutdown timeout at
//! shutdown. Then its future is dropped.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use jobs_core::{
    CancelReason, Cancellation, FetchedJob, JobContext, JobError, JobRegistration, JobResult,
    duration_text,
};
use tokio_util::sync::CancellationToken;
use tracing::field::Empty;
use tracing::{Instrument, Span, error, info_span, warn};

use super::Shared;
use super::completer::{AttemptEnd, Finished};
use crate::{filters, metrics, trace_context};

/// Runs the attempt until it ends, or until `cancel` fires (a cancel, a
/// lost lease, a shutdown) or its timeout passes and it does not return
/// within its grace. `interrupt` fires when the shutdown timeout is over.
/// A panic of the server's own code here fails the attempt too, so that
/// it is still reported and its capacity released.
pub(crate) async fn execute(
    shared: &Shared,
    job: FetchedJob,
    cancel: &Cancellation,
    interrupt: &CancellationToken,
) -> Finished {
    let held = job.held();
    let registration = shared.registry.get(&job.name);
    let span = attempt_span(&job);
    let label: metrics::JobLabel = match registration {
        Some(registration) => registration.name.into(),
        None => job.name.clone().into(),
    };
    metrics::started(&label, &job.queue);
    let busy = metrics::BusyWorker::start();
    let started = Instant::now();
    let end = match registration {
        None => AttemptEnd::Unknown {
            name: job.name.clone(),
        },
        Some(registration) => {
            AssertUnwindSafe(attempt_end(shared, &job, registration, cancel, interrupt))
                .catch_unwind()
                .instrument(span.clone())
                .await
                .unwrap_or_else(|_| {
                    error!(job.id = %held.id, "running the job panicked in the server; failing it");
                    AttemptEnd::Failed(JobError::new("the server panicked running the job"))
                })
        }
    };
    let ran = started.elapsed();
    drop(busy);
    let outcome = end.outcome();
    metrics::attempt_ended(label, &job.queue, outcome, ran);
    span.record("job.outcome", outcome);
    span.record("job.duration_ms", ran.as_secs_f64() * 1000.0);
    if outcome != "succeeded" {
        span.record("otel.status_code", "ERROR");
    }
    Finished {
        job: held,
        name: job.name,
        queue: job.queue,
        max_attempts: job.max_attempts,
        retry_policy: registration.map(|registration| registration.retry_policy),
        end,
    }
}

/// The span of an attempt, named `job`: every event the job and the
/// server filters emit carries its fields. Its fields follow
/// OpenTelemetry's messaging conventions where they have a name
/// (`messaging.*`, `otel.name` "process {queue}", `otel.kind` consumer,
/// `otel.status_code` ERROR unless it succeeded, as
/// `tracing-opentelemetry` reads them), with the job's own:
/// `job.id`, `job.name`, `job.attempt`, `job.queue`, and once it ended
/// `job.outcome` (`succeeded`, `failed`, `stopped`, `unknown`, as
/// [`AttemptEnd::outcome`]) and `job.duration_ms`.
fn attempt_span(job: &FetchedJob) -> Span {
    let span = info_span!(
        "job",
        otel.name = format_args!("process {}", job.queue),
        otel.kind = "consumer",
        otel.status_code = Empty,
        messaging.system = "jobs",
        messaging.operation.type = "process",
        messaging.destination.name = %job.queue,
        messaging.message.id = %job.id,
        job.id = %job.id,
        job.name = %job.name,
        job.attempt = job.attempt,
        job.queue = %job.queue,
        job.outcome = Empty,
        job.duration_ms = Empty,
    );
    trace_context::link(&span, job.trace_context.as_deref());
    span
}

/// The end of a registered job's attempt: its filters and the job, a
/// panic in them its failure.
async fn attempt_end(
    shared: &Shared,
    job: &FetchedJob,
    registration: &JobRegistration,
    cancel: &Cancellation,
    interrupt: &CancellationToken,
) -> AttemptEnd {
    let timeout = registration.timeout.or(shared.config.job_timeout);
    let ctx = JobContext::new(
        job.id,
        registration.name,
        job.queue.clone(),
        job.attempt,
        job.max_attempts,
        job.enqueued_at,
    )
    .with_parent_result(job.parent_result.clone())
    .with_cancellation(cancel.clone())
    .with_sink(shared.log_sink.clone());
    // The job's panic is its failure, inside the filters: they see it
    // end. A filter's own panic fails the attempt too.
    let run_job = AssertUnwindSafe(attempt(ctx.clone(), &job.name, &job.args, registration))
        .catch_unwind()
        .map(|run| run.unwrap_or_else(|panic| Err(panicked("the job", &*panic))));
    let attempt = AssertUnwindSafe(filters::around(&shared.filters, &ctx, Box::pin(run_job)))
        .catch_unwind()
        .map(|run| run.unwrap_or_else(|panic| Err(panicked("a server filter", &*panic))));
    run(shared, attempt, cancel, interrupt, timeout).await
}

/// Drives a registered job's attempt to its end.
async fn run(
    shared: &Shared,
    attempt: impl Future<Output = JobResult>,
    cancel: &Cancellation,
    interrupt: &CancellationToken,
    timeout: Option<Duration>,
) -> AttemptEnd {
    tokio::pin!(attempt);
    let timed_out = async {
        match timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    // An attempt that is ready is taken before a signal that fired in the
    // same poll.
    let early = tokio::select! {
        biased;
        result = &mut attempt => Some(result),
        () = cancel.cancelled() => None,
        () = timed_out => {
            cancel.cancel(CancelReason::TimedOut);
            None
        }
    };
    if cancel.reason().is_none() {
        // The job returned, and nothing asked it to stop.
        return match early {
            Some(result) => ended(result),
            None => AttemptEnd::LeaseLost,
        };
    }
    let returned = match early {
        Some(result) => Some(result),
        // The token fired: the job may see it and return within its grace
        // (the rest of the shutdown timeout at shutdown); a cancel that
        // comes meanwhile ends the wait.
        None => {
            let grace = async {
                if cancel.reason() == Some(CancelReason::Shutdown) {
                    interrupt.cancelled().await;
                } else {
                    tokio::time::sleep(shared.config.cancel_grace).await;
                }
            };
            tokio::select! {
                biased;
                result = &mut attempt => Some(result),
                () = grace => None,
                () = cancel.revoked(), if cancel.reason() != Some(CancelReason::Cancelled) => None,
            }
        }
    };
    let reason = cancel.reason().unwrap_or(CancelReason::Cancelled);
    if returned.is_none() {
        warn!(%reason, "the job did not return within its grace after its cancellation token fired; dropping it");
    }
    let timed_out = || {
        JobError::new(format!(
            "timed out after {}",
            duration_text(timeout.unwrap_or_default())
        ))
    };
    match (reason, returned) {
        // Another server holds the job now, or an operator moved it: what
        // it returned is not recorded.
        (CancelReason::Cancelled, _) => AttemptEnd::LeaseLost,
        // It returned: a success stands, and so does an outcome the job
        // chose (a permanent failure, a snooze, its own retry delay).
        (_, Some(Ok(result))) => AttemptEnd::Succeeded { result },
        (_, Some(Err(error))) if chose_its_outcome(&error) => AttemptEnd::Failed(error),
        // A plain error is most likely the stop's doing.
        (CancelReason::TimedOut, _) => AttemptEnd::Failed(timed_out()),
        (CancelReason::Shutdown, _) => AttemptEnd::Interrupted,
    }
}

/// Whether the job chose what follows its error: no retry, a snooze, or a
/// retry delay of its own.
fn chose_its_outcome(error: &JobError) -> bool {
    !error.is_retryable() || error.snoozed_for().is_some() || error.retry_delay().is_some()
}

fn ended(result: JobResult) -> AttemptEnd {
    match result {
        Ok(result) => AttemptEnd::Succeeded { result },
        Err(error) => AttemptEnd::Failed(error),
    }
}

/// The job's own run: decode its arguments, then run it with `ctx`.
async fn attempt(
    ctx: JobContext,
    name: &str,
    args: &str,
    registration: &JobRegistration,
) -> JobResult {
    match (registration.decode)(ctx, args) {
        Err(error) => Err(JobError::permanent(format!(
            "the stored arguments of job `{name}` no longer decode: {error}"
        ))),
        Ok(run) => run.await,
    }
}

/// The error of an attempt that `who` ("the job") panicked in: the panic's
/// message, then where it happened and the backtrace when the panic hook
/// recorded them (see `panic_trace.rs`).
fn panicked(who: &str, panic: &(dyn Any + Send)) -> JobError {
    let message = panic_message(panic);
    match super::panic_trace::take(message) {
        Some(trace) => JobError::new(format!("{who} panicked: {message}\n{trace}")),
        None => JobError::new(format!("{who} panicked: {message}")),
    }
}

pub(super) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(a panic payload that is not a string)"
    }
}
