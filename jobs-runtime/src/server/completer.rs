//! Records the outcome of each attempt: successes in batches, failures as a
//! retry (`Scheduled`, with the policy's backoff) or as `Failed`, interrupted
//! attempts as `Enqueued` again.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::{
    CompleteParams, Completion, FailParams, RequeueParams, Result, RetryParams, RetryPolicy,
};
use tokio::sync::mpsc;
use tracing::{error, warn};

use super::Shared;

/// The most outcomes recorded in one batch.
const MAX_BATCH: usize = 1000;
/// How many times a failed write is tried before it is given up; a given-up
/// job stays `Processing` until its lease expires and it is rescued.
const WRITE_TRIES: u32 = 5;

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Succeeded,
    /// `retryable` is false when running it again cannot help (unknown job,
    /// arguments that do not decode).
    Failed {
        error: String,
        retryable: bool,
    },
    /// Stopped by the server at shutdown; requeued without counting.
    Interrupted,
}

/// An attempt that ended, with what the completer needs to record it.
#[derive(Debug)]
pub(crate) struct Finished {
    pub job: Completion,
    pub max_attempts: u32,
    /// `None` when no job of that name is registered.
    pub retry_policy: Option<RetryPolicy>,
    pub outcome: Outcome,
}

pub(crate) async fn run(shared: Arc<Shared>, mut outcomes: mpsc::UnboundedReceiver<Finished>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while outcomes.recv_many(&mut batch, MAX_BATCH).await > 0 {
        record(&shared, &batch).await;
        {
            let mut in_flight = shared.in_flight.lock().expect("in-flight lock");
            for finished in &batch {
                in_flight.remove(&finished.job.id);
            }
        }
        batch.clear();
    }
}

async fn record(shared: &Shared, batch: &[Finished]) {
    let storage = &shared.storage;
    let succeeded: Vec<Completion> = batch
        .iter()
        .filter(|finished| matches!(finished.outcome, Outcome::Succeeded))
        .map(|finished| finished.job)
        .collect();
    if !succeeded.is_empty() {
        let params = CompleteParams { jobs: succeeded };
        write("completing jobs", || storage.complete(params.clone())).await;
    }

    let interrupted: Vec<Completion> = batch
        .iter()
        .filter(|finished| matches!(finished.outcome, Outcome::Interrupted))
        .map(|finished| finished.job)
        .collect();
    if !interrupted.is_empty() {
        let params = RequeueParams {
            jobs: interrupted,
            reason: format!(
                "server {} stopped before the job finished (shutdown timeout)",
                shared.id
            ),
        };
        write("requeueing interrupted jobs", || {
            storage.requeue(params.clone())
        })
        .await;
    }

    for finished in batch {
        let Outcome::Failed { error, retryable } = &finished.outcome else {
            continue;
        };
        let job = finished.job;
        match finished.retry_policy {
            Some(policy) if *retryable && job.attempt < finished.max_attempts => {
                let params = RetryParams {
                    job,
                    delay: policy.delay(job.attempt),
                    reason: format!(
                        "retry attempt {} of {}",
                        job.attempt,
                        finished.max_attempts - 1
                    ),
                    error: error.clone(),
                };
                write("scheduling a retry", || storage.retry(params.clone())).await;
            }
            _ => {
                let params = FailParams {
                    job,
                    reason: error.clone(),
                };
                write("failing a job", || storage.fail(params.clone())).await;
            }
        }
    }
}

/// Runs a storage write, trying again on error with a doubling wait.
async fn write<T, F, Fut>(operation: &str, mut call: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=WRITE_TRIES {
        match call().await {
            Ok(_) => return,
            Err(e) if attempt < WRITE_TRIES => {
                warn!(%e, operation, retry_in = ?wait, "recording an outcome failed");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => error!(
                %e,
                operation,
                "recording an outcome failed for good; the job stays Processing until its lease expires and it is rescued"
            ),
        }
    }
}
