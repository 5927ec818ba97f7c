//! Enqueues `Scheduled` jobs whose time has come (delayed jobs and retries),
//! like Hangfire's `DelayedJobScheduler`. Leader-only: started and stopped
//! with the leadership (see `maintenance.rs`).

use std::time::Duration;

use jobs_core::{PromoteParams, Result};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::periodic::every;
use crate::Storage;

/// The most jobs moved per storage call; a larger backlog takes several.
pub const PROMOTE_BATCH: usize = 1000;

/// Runs [`run_once`] every `interval` until `cancel`.
pub(crate) async fn run(storage: Storage, interval: Duration, cancel: CancellationToken) {
    every(interval, &cancel, "promoting scheduled jobs", || {
        run_once(&storage)
    })
    .await;
}

/// Enqueues every due job; returns how many moved. The storage wakes this
/// process's servers when jobs moved.
pub(crate) async fn run_once(storage: &Storage) -> Result<u64> {
    let mut total = 0;
    loop {
        let moved = storage
            .promote_scheduled(PromoteParams {
                limit: PROMOTE_BATCH,
            })
            .await?;
        total += moved;
        if moved < PROMOTE_BATCH as u64 {
            if total > 0 {
                debug!(jobs = total, "enqueued due scheduled jobs");
            }
            return Ok(total);
        }
    }
}
