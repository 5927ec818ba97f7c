//! Enqueues `Scheduled` jobs whose time has come (delayed jobs and retries),
//! like Hangfire's `DelayedJobScheduler`. Runs on the leader only.

use std::sync::Arc;

use jobs_core::{PromoteParams, Result};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Shared, sleep_or_cancel};

/// The most jobs moved per storage call; a larger backlog takes several.
pub const PROMOTE_BATCH: usize = 1000;

/// Runs [`run_once`] every `schedule_interval` while leading, until `cancel`.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        if shared.is_leader()
            && let Err(error) = run_once(&shared).await
        {
            warn!(%error, "promoting scheduled jobs failed");
        }
        if sleep_or_cancel(shared.config.schedule_interval, &cancel).await {
            return;
        }
    }
}

/// Enqueues every due job; returns how many moved.
pub(crate) async fn run_once(shared: &Shared) -> Result<u64> {
    let mut total = 0;
    loop {
        let moved = shared
            .storage
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
