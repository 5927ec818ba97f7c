//! Takes jobs from the storage when workers are free and spawns one task per
//! job. Each task holds a worker permit until its attempt ends.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::FetchParams;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use super::completer::Finished;
use super::{InFlight, Shared, executor, sleep_or_cancel};

/// The longest wait after a failed fetch (the database went away); the wait
/// doubles from 50 ms up to this.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    shared: &Arc<Shared>,
    jobs: &TaskTracker,
    outcomes: mpsc::UnboundedSender<Finished>,
    interrupt: &CancellationToken,
    stop: &CancellationToken,
) {
    let workers = Arc::new(Semaphore::new(shared.config.workers));
    let mut error_backoff = Duration::from_millis(50);
    loop {
        // Wait for a free worker, then take every free one up to a batch.
        let first = tokio::select! {
            permit = workers.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stop.cancelled() => return,
        };
        let mut permits = vec![first];
        while permits.len() < shared.config.fetch_batch {
            match workers.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        // Listen before fetching, so that an enqueue during the fetch is not missed.
        let mut woken = pin!(shared.storage.wakeup().notified());
        woken.as_mut().enable();
        if stop.is_cancelled() {
            return;
        }
        let params = FetchParams {
            queues: shared.config.queues.clone(),
            limit: permits.len(),
            server: shared.id.clone(),
            lease: shared.config.lease,
        };
        // A fetch that hangs (a half-open connection) must not hold up the
        // shutdown for ever: what it took is rescued after its lease.
        let fetch = tokio::select! {
            fetch = shared.storage.fetch(params) => fetch,
            _ = async {
                stop.cancelled().await;
                tokio::time::sleep(shared.config.shutdown_timeout).await;
            } => return,
        };
        match fetch {
            Ok(fetched) if fetched.is_empty() => {
                error_backoff = Duration::from_millis(50);
                drop(permits);
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep(shared.config.poll_interval) => {}
                    _ = stop.cancelled() => return,
                }
            }
            Ok(fetched) => {
                error_backoff = Duration::from_millis(50);
                let cancels: Vec<_> = fetched.iter().map(|_| CancellationToken::new()).collect();
                {
                    let mut in_flight = shared.in_flight.lock().expect("in-flight lock");
                    for (job, cancel) in fetched.iter().zip(&cancels) {
                        let held = InFlight {
                            attempt: job.attempt,
                            cancel: cancel.clone(),
                        };
                        // Fetched again while an older attempt still runs
                        // here: that attempt's lease is gone, so it stops.
                        if let Some(older) = in_flight.insert(job.id, held) {
                            older.cancel.cancel();
                        }
                    }
                }
                // Permits beyond the jobs fetched drop here, freeing their workers.
                for ((job, permit), cancel) in fetched.into_iter().zip(permits).zip(cancels) {
                    let shared = shared.clone();
                    let outcomes = outcomes.clone();
                    let interrupt = interrupt.clone();
                    jobs.spawn(async move {
                        let finished = executor::execute(&shared, job, &cancel, &interrupt).await;
                        drop(permit);
                        // The completer outlives every job task.
                        let _ = outcomes.send(finished);
                    });
                }
            }
            Err(error) => {
                drop(permits);
                warn!(%error, retry_in = ?error_backoff, "fetching jobs failed");
                if sleep_or_cancel(error_backoff, stop).await {
                    return;
                }
                error_backoff = (error_backoff * 2).min(MAX_ERROR_BACKOFF);
            }
        }
    }
}
