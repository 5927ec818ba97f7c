//! Deletes finished jobs past their retention (Hangfire's expiration: a
//! succeeded job is kept a day by default) and forgets servers that stopped
//! heartbeating. Runs on the leader only.

use std::sync::Arc;

use jobs_core::{ExpireParams, PruneServersParams, Result};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Shared, sleep_or_cancel};

/// The most jobs deleted per storage call.
pub const EXPIRE_BATCH: usize = 1000;

/// Runs [`run_once`] every `cleanup_interval` while leading, until `cancel`.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        if sleep_or_cancel(shared.config.cleanup_interval, &cancel).await {
            return;
        }
        if shared.is_leader()
            && let Err(error) = run_once(&shared).await
        {
            warn!(%error, "cleaning up failed");
        }
    }
}

/// Deletes expired jobs and silent servers; returns how many jobs went.
pub(crate) async fn run_once(shared: &Shared) -> Result<u64> {
    let mut total = 0;
    loop {
        let deleted = shared.storage.backend().expire(ExpireParams {
                older_than: shared.config.retention,
                limit: EXPIRE_BATCH,
            })
            .await?;
        total += deleted;
        if deleted < EXPIRE_BATCH as u64 {
            break;
        }
    }
    let pruned = shared.storage.backend().prune_servers(PruneServersParams {
            silent_for: shared.config.server_timeout,
        })
        .await?;
    if total > 0 || pruned > 0 {
        debug!(
            jobs = total,
            servers = pruned,
            "expired finished jobs and silent servers"
        );
    }
    Ok(total)
}
