//! Gives back jobs whose server stopped renewing their lease (it crashed or
//! lost the database): `Enqueued` again, or `Failed` when no attempt is left.
//! River's `job_rescuer`. Runs on the leader only.

use std::sync::Arc;

use jobs_core::{RescueParams, Result};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Shared, sleep_or_cancel};

/// The most jobs moved per storage call.
pub const RESCUE_BATCH: usize = 1000;

/// Runs [`run_once`] every `rescue_interval` while leading, until `cancel`.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        if shared.is_leader()
            && let Err(error) = run_once(&shared).await
        {
            warn!(%error, "rescuing jobs failed");
        }
        if sleep_or_cancel(shared.config.rescue_interval, &cancel).await {
            return;
        }
    }
}

/// Rescues every job whose lease expired; returns how many moved.
pub(crate) async fn run_once(shared: &Shared) -> Result<u64> {
    let mut total = 0;
    loop {
        let moved = shared
            .storage
            .rescue(RescueParams {
                limit: RESCUE_BATCH,
            })
            .await?;
        total += moved;
        if moved < RESCUE_BATCH as u64 {
            if total > 0 {
                info!(jobs = total, "rescued jobs whose lease expired");
                shared.storage.wake_servers();
            }
            return Ok(total);
        }
    }
}
