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
use tracing::warn;

use super::Shared;

/// The most outcomes recorded in one batch.
const MAX_BATCH: usize = 1000;
/// How long a job waits when this server does not know its name but
/// another live server does (a rolling deploy); the wait is forgiven.
pub const UNKNOWN_JOB_DELAY: Duration = Duration::from_secs(5);
/// The longest wait between tries of a write that failed. Writes are tried
/// until they succeed (the jobs stay held and their leases renewed
/// meanwhile), or until the shutdown timeout at shutdown.
const MAX_WRITE_BACKOFF: Duration = Duration::from_secs(5);

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Succeeded,
    /// `retryable` is false when running it again cannot help (arguments
    /// that do not decode).
    Failed {
        error: String,
        retryable: bool,
    },
    /// No job of this name is registered on this server.
    Unknown {
        name: String,
    },
    /// Stopped by the server at shutdown; requeued without counting.
    Interrupted,
    /// Stopped because its lease was lost: another server holds the job
    /// now, so nothing is recorded.
    LeaseLost,
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
        for finished in &batch {
            shared.release(finished.job);
        }
        batch.clear();
    }
}

async fn record(shared: &Shared, batch: &[Finished]) {
    let storage = &shared.storage;
    let mut succeeded: Vec<Completion> = batch
        .iter()
        .filter(|finished| matches!(finished.outcome, Outcome::Succeeded))
        .map(|finished| finished.job)
        .collect();
    // One lock order for every storage call: by id.
    succeeded.sort_unstable_by_key(|job| job.id);
    if !succeeded.is_empty() {
        let params = CompleteParams { jobs: succeeded };
        write("completing jobs", || storage.complete(params.clone())).await;
    }

    let mut interrupted: Vec<Completion> = batch
        .iter()
        .filter(|finished| matches!(finished.outcome, Outcome::Interrupted))
        .map(|finished| finished.job)
        .collect();
    interrupted.sort_unstable_by_key(|job| job.id);
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
        if let Outcome::Unknown { name } = &finished.outcome {
            record_unknown(shared, finished.job, name).await;
            continue;
        }
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
                    forgive: false,
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

/// A job whose name this server does not know: when another live server
/// knows it (servers of two versions during a deploy), it waits
/// [`UNKNOWN_JOB_DELAY`] without losing an attempt; when no server knows
/// it, it fails (DESIGN.md: "whose job name no server knows").
async fn record_unknown(shared: &Shared, job: Completion, name: &str) {
    let storage = &shared.storage;
    let servers = loop {
        match storage.servers().await {
            Ok(servers) => break servers,
            Err(e) => {
                warn!(%e, "reading servers failed; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let silent_for = |heartbeat: chrono::DateTime<chrono::Utc>| {
        (chrono::Utc::now() - heartbeat)
            .to_std()
            .unwrap_or_default()
    };
    let knower = servers.iter().find(|server| {
        server.id != shared.id
            && silent_for(server.heartbeat_at) < shared.config.server_timeout
            && server.jobs.iter().any(|job| job == name)
    });
    match knower {
        Some(knower) => {
            let params = RetryParams {
                job,
                delay: UNKNOWN_JOB_DELAY,
                reason: format!(
                    "no job named `{name}` on server {}; server {} knows it: trying again in {} s",
                    shared.id,
                    knower.id,
                    UNKNOWN_JOB_DELAY.as_secs()
                ),
                error: format!("no job named `{name}` on server {}", shared.id),
                forgive: true,
            };
            write("deferring an unknown job", || storage.retry(params.clone())).await;
        }
        None => {
            let params = FailParams {
                job,
                reason: format!(
                    "no job named `{name}` is registered on any running server (this one is {}); is it defined with #[job] in the binary?",
                    shared.id
                ),
            };
            write("failing an unknown job", || storage.fail(params.clone())).await;
        }
    }
}

/// Runs a storage write until it succeeds, with a doubling wait between
/// tries. Dropping an outcome would run its job again, so it never gives
/// up; the server's shutdown bounds it.
async fn write<T, F, Fut>(operation: &str, mut call: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut wait = Duration::from_millis(100);
    loop {
        match call().await {
            Ok(_) => return,
            Err(e) => {
                warn!(%e, operation, retry_in = ?wait, "recording an outcome failed; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_WRITE_BACKOFF);
            }
        }
    }
}
