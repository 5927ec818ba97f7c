//! Reads each queue's length and latency into the metrics' gauges
//! ([`metrics::QUEUE_LENGTH`], [`metrics::QUEUE_LATENCY`]), as Sidekiq's
//! `Queue#size` and `Queue#latency`. Leader-only, so that one server reads
//! them for all: started and stopped with the leadership (see
//! `maintenance.rs`).

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jobs_core::Result;
use tokio_util::sync::CancellationToken;

use super::periodic::every;
use crate::{Storage, metrics};

/// Runs [`run_once`] every `interval` until `cancel`.
pub(crate) async fn run(storage: Storage, interval: Duration, cancel: CancellationToken) {
    let listed = Mutex::new(BTreeSet::new());
    every(interval, &cancel, "reading the queue metrics", || {
        run_once(&storage, &listed)
    })
    .await;
    // No longer the leader: another server reads the queues now, and this
    // one's last readings would linger in its gauges.
    let listed = listed.into_inner().unwrap_or_else(PoisonError::into_inner);
    for queue in &listed {
        metrics::queue_emptied(queue);
    }
}

/// Reads the queues once (the counts the dashboard reads) and sets their
/// gauges; a queue `listed` before that is no longer listed (none of its
/// jobs is unfinished or failed) reads 0. Returns how many queues it read.
pub(crate) async fn run_once(storage: &Storage, listed: &Mutex<BTreeSet<String>>) -> Result<usize> {
    let queues = storage.queue_counts().await?;
    let now = storage.backend().clock().await?;
    let read: BTreeSet<String> = queues.iter().map(|counts| counts.queue.clone()).collect();
    let mut listed = listed.lock().unwrap_or_else(PoisonError::into_inner);
    for gone in listed.difference(&read) {
        metrics::queue_emptied(gone);
    }
    metrics::queues_read(&queues, now);
    *listed = read;
    Ok(queues.len())
}
