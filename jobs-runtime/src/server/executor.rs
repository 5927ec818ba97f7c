//! Runs one attempt of a job: find its code, decode its arguments, run it
//! inside its own tracing span, and turn a panic anywhere in that (a
//! `Deserialize` impl too) into that job's failure (River's `jobexecutor`).

use std::any::Any;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use jobs_core::{Attempt, FetchedJob, JobContext, JobRegistration};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use super::Shared;
use super::completer::{AttemptEnd, Finished};

/// Runs the attempt until it ends or `cancel` fires: at shutdown
/// (`interrupt` fired too) it is requeued, otherwise its lease was lost and
/// another server has the job now.
pub(crate) async fn execute(
    shared: &Shared,
    job: FetchedJob,
    cancel: &CancellationToken,
    interrupt: &CancellationToken,
) -> Finished {
    let registration = shared.registry.get(&job.name);
    let span = info_span!("job", job.id = %job.id, job.name = %job.name, attempt = job.attempt);
    let attempt = AssertUnwindSafe(attempt(&job, registration))
        .catch_unwind()
        .instrument(span);
    let outcome = tokio::select! {
        outcome = attempt => outcome.unwrap_or_else(|panic| AttemptEnd::Failed {
            error: format!("the job panicked: {}", panic_message(&*panic)),
            retryable: true,
        }),
        _ = cancel.cancelled() => if interrupt.is_cancelled() {
            AttemptEnd::Interrupted
        } else {
            AttemptEnd::LeaseLost
        },
    };
    Finished {
        job: Attempt {
            id: job.id,
            attempt: job.attempt,
        },
        max_attempts: job.max_attempts,
        retry_policy: registration.map(|registration| registration.retry_policy),
        end: outcome,
    }
}

async fn attempt(job: &FetchedJob, registration: Option<&JobRegistration>) -> AttemptEnd {
    let Some(registration) = registration else {
        return AttemptEnd::Unknown {
            name: job.name.clone(),
        };
    };
    let ctx = JobContext::new(
        job.id,
        registration.name,
        job.queue.clone(),
        job.attempt,
        job.max_attempts,
        job.enqueued_at,
    )
    .with_parent_result(job.parent_result.clone());
    match (registration.decode)(ctx, &job.args) {
        Err(error) => AttemptEnd::Failed {
            error: format!(
                "the stored arguments of job `{}` no longer decode: {error}",
                job.name
            ),
            retryable: false,
        },
        Ok(run) => match run.await {
            Ok(result) => AttemptEnd::Succeeded { result },
            Err(error) => AttemptEnd::Failed {
                error: error.to_string(),
                retryable: error.is_retryable(),
            },
        },
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
