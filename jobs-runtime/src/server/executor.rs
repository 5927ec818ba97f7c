//! Runs one attempt of a job: find its code, decode its arguments, run it
//! inside its own tracing span, and turn a panic anywhere in that (a
//! `Deserialize` impl too) into that job's failure (River's `jobexecutor`).
//!
//! An attempt asked to stop sees its `JobContext` cancellation token fire
//! and gets a grace to return: the server's cancel grace after a cancel, a
//! lost lease or its timeout; the rest of the shutdown timeout at
//! shutdown. Then its future is dropped.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use jobs_core::{
    Attempt, CancelReason, Cancellation, FetchedJob, JobContext, JobError, JobRegistration,
    JobResult, duration_text,
};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use super::Shared;
use super::completer::{AttemptEnd, Finished};

/// Runs the attempt until it ends, or until `cancel` fires (a cancel, a
/// lost lease, a shutdown) or its timeout passes and it does not return
/// within its grace. `interrupt` fires when the shutdown timeout is over.
pub(crate) async fn execute(
    shared: &Shared,
    job: FetchedJob,
    cancel: &Cancellation,
    interrupt: &CancellationToken,
) -> Finished {
    let held = Attempt {
        id: job.id,
        attempt: job.attempt,
    };
    let Some(registration) = shared.registry.get(&job.name) else {
        return Finished {
            job: held,
            max_attempts: job.max_attempts,
            retry_policy: None,
            end: AttemptEnd::Unknown { name: job.name },
        };
    };
    let timeout = registration.timeout.or(shared.config.job_timeout);
    let span = info_span!("job", job.id = %job.id, job.name = %job.name, attempt = job.attempt);
    let attempt = AssertUnwindSafe(attempt(&job, registration, cancel))
        .catch_unwind()
        .map(|run| {
            run.unwrap_or_else(|panic| {
                Err(JobError::new(format!(
                    "the job panicked: {}",
                    panic_message(&*panic)
                )))
            })
        })
        .instrument(span);
    Finished {
        job: held,
        max_attempts: job.max_attempts,
        retry_policy: Some(registration.retry_policy),
        end: run(shared, attempt, cancel, interrupt, timeout).await,
    }
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
    let early = tokio::select! {
        result = &mut attempt => Some(result),
        () = cancel.cancelled() => None,
        () = timed_out => {
            cancel.cancel(CancelReason::TimedOut);
            None
        }
    };
    // An attempt that returned as its token fired (it saw the token)
    // ends as the token says, not as it returned.
    let Some(reason) = cancel.reason() else {
        return ended(early.expect("the attempt ended: its token has not fired"));
    };
    let returned = match early {
        Some(result) => Some(result),
        // The token fired: the job may see it and return within its grace.
        None => {
            let grace = async {
                match reason {
                    CancelReason::Shutdown => interrupt.cancelled().await,
                    _ => tokio::time::sleep(shared.config.cancel_grace).await,
                }
            };
            tokio::select! {
                biased;
                result = &mut attempt => Some(result),
                () = grace => None,
            }
        }
    };
    if returned.is_none() {
        warn!(%reason, "the job did not return within its grace after its cancellation token fired; dropping it");
    }
    match (reason, returned) {
        // Another server holds the job now, or an operator moved it.
        (CancelReason::Cancelled, _) => AttemptEnd::LeaseLost,
        (CancelReason::TimedOut, _) => AttemptEnd::Failed(JobError::new(format!(
            "timed out after {}",
            duration_text(timeout.unwrap_or_default())
        ))),
        // Done in spite of the shutdown: a success stands.
        (CancelReason::Shutdown, Some(Ok(result))) => AttemptEnd::Succeeded { result },
        // Most likely the shutdown's doing: requeued, uncounted.
        (CancelReason::Shutdown, _) => AttemptEnd::Interrupted,
    }
}

fn ended(result: JobResult) -> AttemptEnd {
    match result {
        Ok(result) => AttemptEnd::Succeeded { result },
        Err(error) => AttemptEnd::Failed(error),
    }
}

/// The attempt's future, with a context whose token is `cancel`.
async fn attempt(
    job: &FetchedJob,
    registration: &JobRegistration,
    cancel: &Cancellation,
) -> JobResult {
    let ctx = JobContext::new(
        job.id,
        registration.name,
        job.queue.clone(),
        job.attempt,
        job.max_attempts,
        job.enqueued_at,
    )
    .with_parent_result(job.parent_result.clone())
    .with_cancellation(cancel.clone());
    match (registration.decode)(ctx, &job.args) {
        Err(error) => Err(JobError::permanent(format!(
            "the stored arguments of job `{}` no longer decode: {error}",
            job.name
        ))),
        Ok(run) => run.await,
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "(a panic payload that is not a string)"
    }
}
