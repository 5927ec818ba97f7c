//! Deletes finished jobs past their retention (Hangfire's expiration: a
//! succeeded job is kept a day by default). Leader-only: started and
//! stopped with the leadership (see `maintenance.rs`).

use std::time::Duration;

use jobs_core::{ExpireParams, Result};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::periodic::every;
use crate::Storage;

/// The most jobs deleted per storage call.
pub const EXPIRE_BATCH: usize = 1000;

/// Runs [`run_once`] every `interval` until `cancel`.
pub(crate) async fn run(
    storage: Storage,
    retention: Duration,
    interval: Duration,
    cancel: CancellationToken,
) {
    every(interval, &cancel, "expiring finished jobs", || {
        run_once(&storage, retention)
    })
    .await;
}

/// Deletes the finished jobs older than `retention`; returns how many went.
pub(crate) async fn run_once(storage: &Storage, retention: Duration) -> Result<u64> {
    let mut total = 0;
    loop {
        let deleted = storage
            .backend()
            .expire(ExpireParams {
                older_than: retention,
                limit: EXPIRE_BATCH,
            })
            .await?;
        total += deleted;
        if deleted < EXPIRE_BATCH as u64 {
            if total > 0 {
                debug!(jobs = total, "expired finished jobs");
            }
            return Ok(total);
        }
    }
}
