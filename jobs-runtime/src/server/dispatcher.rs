//! Hands the jobs of the local queue to free workers, in fetch order, one
//! task per job. Queue priority holds within a fetch; a job of a
//! higher-priority queue enqueued later waits behind the jobs already
//! fetched ahead, which the fetcher keeps to what the workers start within
//! [`PREFETCH_HORIZON`](super::PREFETCH_HORIZON). When the server stops,
//! the jobs still waiting for a worker are given back.

use std::sync::Arc;

use jobs_core::{CancelReason, Cancellation, FetchedJob};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::completer::{AttemptEnd, Finished, Report};
use super::{Shared, executor};

/// A job fetched and held, waiting for a worker.
pub(crate) struct Queued {
    pub job: FetchedJob,
    /// Fires when the job's lease was lost, or at shutdown.
    pub cancel: Cancellation,
    /// Held from the fetch until the outcome is recorded.
    pub capacity: OwnedSemaphorePermit,
}

impl Queued {
    /// Reports the job as given back unstarted (the server is stopping).
    pub fn give_back(self, outcomes: &mpsc::UnboundedSender<Report>) {
        self.report(AttemptEnd::NotStarted, outcomes);
    }

    fn report(self, end: AttemptEnd, outcomes: &mpsc::UnboundedSender<Report>) {
        let finished = Finished::without_running(&self.job, end);
        send(outcomes, (finished, self.capacity));
    }
}

/// Runs jobs of `local` as workers free up, until `stop`; then gives back
/// what is left in `local`.
pub(crate) async fn run(
    shared: &Arc<Shared>,
    jobs: &TaskTracker,
    mut local: mpsc::UnboundedReceiver<Queued>,
    outcomes: mpsc::UnboundedSender<Report>,
    interrupt: &CancellationToken,
    stop: &CancellationToken,
) {
    loop {
        let worker = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            worker = shared.workers.clone().acquire_owned() => worker.expect("the semaphore is never closed"),
        };
        let queued = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            queued = local.recv() => match queued {
                Some(queued) => queued,
                None => break,
            },
        };
        shared.local.take();
        match queued.cancel.reason() {
            None => {}
            Some(CancelReason::Cancelled) => {
                queued.report(AttemptEnd::LeaseLost, &outcomes);
                continue;
            }
            Some(CancelReason::Shutdown | CancelReason::TimedOut) => {
                queued.give_back(&outcomes);
                continue;
            }
        }
        let shared = shared.clone();
        let outcomes = outcomes.clone();
        let interrupt = interrupt.clone();
        jobs.spawn(async move {
            let Queued {
                job,
                cancel,
                capacity,
            } = queued;
            let started = std::time::Instant::now();
            // The job's panics and the server's own are caught in the
            // executor: the attempt is always reported and released.
            let finished = executor::execute(&shared, job, &cancel, &interrupt).await;
            shared.local.record_attempt(started.elapsed());
            drop(worker);
            shared.local.worker_freed();
            send(&outcomes, (finished, capacity));
        });
    }
    local.close();
    while let Some(queued) = local.recv().await {
        shared.local.take();
        queued.give_back(&outcomes);
    }
}

fn send(outcomes: &mpsc::UnboundedSender<Report>, report: Report) {
    // The completer outlives every job task.
    if outcomes.send(report).is_err() {
        debug!("the completer is gone; the job will be rescued after its lease");
    }
}
