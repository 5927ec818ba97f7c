//! Takes jobs from the storage while the server has capacity and puts them
//! in the local queue, in fetch order, for the dispatcher. Each job holds a
//! capacity permit from its fetch until the completer has recorded its
//! outcome.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::{FetchParams, FetchedJob, State};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::Shared;
use super::completer::Report;
use super::dispatcher::Queued;
use super::periodic::sleep_or_cancel;
use crate::filters::StateTransition;

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
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            first = shared.capacity.clone().acquire_owned() => first.expect("the semaphore is never closed"),
        };
        // As far ahead of the free workers as they will soon start (see
        // `local_queue`); when that is nothing, wait until a job leaves the
        // local queue or a worker frees up.
        let mut changed = pin!(shared.local.changed().notified());
        changed.as_mut().enable();
        let room = shared.local.room(
            shared.config.workers,
            shared.workers.available_permits(),
            shared.config.prefetch,
        );
        if room == 0 {
            drop(first);
            tokio::select! {
                () = changed => continue,
                () = stop.cancelled() => break,
            }
        }
        // Take what is free up to a batch. While outcomes wait to be
        // recorded the capacity stays taken, so a slow database slows the
        // fetching.
        let mut permits = vec![first];
        while permits.len() < shared.config.fetch_batch.min(room) {
            match shared.capacity.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        // Listen before fetching, so that an enqueue during the fetch is
        // not missed when it comes back empty.
        let mut woken = pin!(shared.storage.wakeup().notified());
        woken.as_mut().enable();
        // One fetch in the database at a time (two at once were measured
        // slower: the second skips the rows the first locked). A fetch that
        // the server's stop finds in the database gets the shutdown timeout
        // to come back, and what it took is held (the dispatcher gives it
        // back); one that hangs longer (a half-open connection) is dropped
        // and its jobs are rescued after their lease.
        let (result, mut permits) = tokio::select! {
            fetched = fetch(shared, permits) => fetched,
            () = async {
                stop.cancelled().await;
                tokio::time::sleep(shared.config.shutdown_timeout).await;
            } => {
                warn!("a fetch did not come back within the shutdown timeout; its jobs will be rescued after their lease");
                break;
            }
        };
        match result {
            Ok(fetched) if fetched.is_empty() => {
                error_backoff = Duration::from_millis(50);
                drop(permits);
                tokio::select! {
                    () = woken => {}
                    () = tokio::time::sleep(shared.config.poll_interval) => {}
                    () = stop.cancelled() => break,
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
                    break;
                }
                error_backoff = (error_backoff * 2).min(MAX_ERROR_BACKOFF);
            }
        }
    }
}

/// One fetch of as many jobs as `permits`; gives the permits back with
/// the answer.
async fn fetch(
    shared: &Shared,
    permits: Vec<OwnedSemaphorePermit>,
) -> (
    jobs_core::Result<Vec<FetchedJob>>,
    Vec<OwnedSemaphorePermit>,
) {
    let params = FetchParams {
        queues: shared.config.queues.clone(),
        limit: permits.len(),
        server: shared.id.clone(),
        lease: shared.config.lease,
    };
    (shared.storage.backend().fetch(params).await, permits)
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
    let cancels = shared.held.hold(&fetched);
    if shared.states.listens() {
        shared.states.send(
            fetched
                .iter()
                .map(|job| StateTransition {
                    job: job.id,
                    name: job.name.clone(),
                    from: Some(State::Enqueued),
                    to: State::Processing,
                    reason: None,
                })
                .collect(),
        );
    }
    for ((job, capacity), cancel) in fetched.into_iter().zip(permits).zip(cancels) {
        let queued = Queued {
            job,
            cancel,
            capacity,
        };
        shared.local.put(1);
        // The dispatcher stopped: the server is stopping, give it back.
        if let Err(mpsc::error::SendError(queued)) = local.send(queued) {
            shared.local.take();
            queued.give_back(outcomes);
        }
    }
}
