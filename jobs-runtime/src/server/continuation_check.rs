//! Decides what waits on finished parents: finishes batches whose members
//! all finished, and moves their continuations, and any continuation the
//! finishing statement did not decide, to `Enqueued` or `Deleted`.
//! Leader-only (see `maintenance.rs`); a batch created or cancelled
//! through this server's `Storage` handle wakes it at once.

use std::time::Duration;

use jobs_core::{ResolveAwaitingParams, Result};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::Storage;

/// The most batches and continuations decided per storage call.
pub const RESOLVE_BATCH: usize = 1000;

/// Runs [`run_once`] every `interval`, and when woken, until `cancel`; a
/// failed run is logged and tried again after the interval.
pub(crate) async fn run(storage: Storage, interval: Duration, cancel: CancellationToken) {
    loop {
        tokio::select! {
            result = run_once(&storage) => if let Err(error) = result {
                warn!(%error, "deciding continuations failed");
            },
            _ = cancel.cancelled() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = storage.awaiting_changed().notified() => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// Decides everything due; returns how many batches and continuations.
pub(crate) async fn run_once(storage: &Storage) -> Result<u64> {
    let mut total = 0;
    loop {
        let decided = storage
            .backend()
            .resolve_awaiting(ResolveAwaitingParams {
                limit: RESOLVE_BATCH,
            })
            .await?;
        total += decided;
        if decided < RESOLVE_BATCH as u64 {
            if total > 0 {
                debug!(decided = total, "decided batches and continuations");
            }
            return Ok(total);
        }
    }
}
