//! Runs one attempt of a job: find its code, decode its arguments, run it
//! inside its own tracing span, and turn a panic into that job's failure
//! (River's `jobexecutor`).

use std::any::Any;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use jobs_core::{Completion, FetchedJob, JobContext};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span};

use super::Shared;
use super::completer::{Finished, Outcome};

pub(crate) async fn execute(
    shared: &Shared,
    job: FetchedJob,
    interrupt: &CancellationToken,
) -> Finished {
    let registration = shared.registry.get(&job.name);
    let outcome = match registration {
        None => Outcome::Failed {
            error: format!(
                "no job named `{}` is registered on server {}; is it defined with #[job] in this binary?",
                job.name, shared.id
            ),
            retryable: false,
        },
        Some(registration) => {
            let ctx = JobContext::new(
                job.id,
                registration.name,
                job.queue.clone(),
                job.attempt,
                job.max_attempts,
                job.enqueued_at,
            );
            match (registration.decode)(ctx, &job.args) {
                Err(error) => Outcome::Failed {
                    error: format!(
                        "the stored arguments of job `{}` no longer decode: {error}",
                        job.name
                    ),
                    retryable: false,
                },
                Ok(attempt) => {
                    let span = info_span!("job", job.id = %job.id, job.name = %job.name, attempt = job.attempt);
                    let attempt = AssertUnwindSafe(attempt).catch_unwind().instrument(span);
                    tokio::select! {
                        result = attempt => match result {
                            Ok(Ok(())) => Outcome::Succeeded,
                            Ok(Err(error)) => Outcome::Failed { error: error.to_string(), retryable: true },
                            Err(panic) => Outcome::Failed {
                                error: format!("the job panicked: {}", panic_message(&*panic)),
                                retryable: true,
                            },
                        },
                        _ = interrupt.cancelled() => Outcome::Interrupted,
                    }
                }
            }
        }
    };
    Finished {
        job: Completion {
            id: job.id,
            attempt: job.attempt,
        },
        max_attempts: job.max_attempts,
        retry_policy: registration.map(|registration| registration.retry_policy),
        outcome,
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
