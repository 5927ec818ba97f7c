//! Takes jobs from the storage while the server has capacity and puts them
//! in the local queue, in fetch order, for the dispatcher. Each job holds a
//! capacity permit from its fetch until the completer has recorded its
//! outcome.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::{FetchParams, FetchedJob};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::completer::Report;
use super::dispatcher::Queued;
use super::{InFlight, Shared, sleep_or_cancel};

/// The longest wait after a failed fetch (the database went away); the wait
/// doubles from 50 ms up to this.
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    shared: &Arc<Shared>,
    local: mpsc::UnboundedSender<Queued>,
    outcomes: mpsc::UnboundedSender<Report>,
    stop: &CancellationToken,
) {
    let mut error_backoff = Duration::from_millis(50);
    loop {
        // Wait for capacity, then take what is free up to a batch. While
        // outcomes wait to be recorded the capacity stays taken, so a slow
        // database slows the fetching.
        let first = tokio::select! {
            permit = shared.capacity.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stop.cancelled() => return,
        };
        let mut permits = vec![first];
        while permits.len() < shared.config.fetch_batch {
            match shared.capacity.clone().try_acquire_owned() {
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
                // Permits beyond the jobs fetched drop here, freeing capacity.
                permits.truncate(fetched.len());
                hold_all(shared, &local, &outcomes, fetched, permits);
            }
            Err(error) => {
                drop(permits);
                warn!(%error, retry_in = ?error_backoff, "fetching jobs failed; waiting for the storage");
                if sleep_or_cancel(error_backoff, stop).await {
                    return;
                }
                error_backoff = (error_backoff * 2).min(MAX_ERROR_BACKOFF);
            }
        }
    }
}

/// Holds each fetched job and puts it in the local queue, in fetch order,
/// for the dispatcher.
fn hold_all(
    shared: &Shared,
    local: &mpsc::UnboundedSender<Queued>,
    outcomes: &mpsc::UnboundedSender<Report>,
    fetched: Vec<FetchedJob>,
    permits: Vec<OwnedSemaphorePermit>,
) {
    let cancels: Vec<_> = fetched.iter().map(|_| CancellationToken::new()).collect();
    {
        let mut in_flight = shared.in_flight.lock().expect("in-flight lock");
        for (job, cancel) in fetched.iter().zip(&cancels) {
            let held = InFlight {
                attempt: job.attempt,
                cancel: cancel.clone(),
                recording: false,
            };
            // Fetched again while an older attempt is still held here: that
            // attempt's lease is gone, so it stops.
            if let Some(older) = in_flight.insert(job.id, held) {
                older.cancel.cancel();
            }
        }
    }
    for ((job, capacity), cancel) in fetched.into_iter().zip(permits).zip(cancels) {
        let queued = Queued {
            job,
            cancel,
            capacity,
        };
        // The dispatcher stopped: the server is stopping, give it back.
        if let Err(mpsc::error::SendError(queued)) = local.send(queued) {
            queued.give_back(outcomes);
        }
    }
}
