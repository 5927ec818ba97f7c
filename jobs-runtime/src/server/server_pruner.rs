//! Forgets servers that stopped heartbeating, so that the server list (and
//! the rolling-deploy check of unknown job names) shows live servers only.
//! Their jobs are rescued through their leases, independently of this.
//! Leader-only: started and stopped with the leadership (see
//! `maintenance.rs`).

use std::time::Duration;

use jobs_core::{PruneServersParams, Result};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::periodic::every;
use crate::Storage;

/// Runs [`run_once`] every `interval` until `cancel`.
pub(crate) async fn run(
    storage: Storage,
    server_timeout: Duration,
    interval: Duration,
    cancel: CancellationToken,
) {
    every(interval, &cancel, "pruning silent servers", || {
        run_once(&storage, server_timeout)
    })
    .await;
}

/// Removes the servers silent for longer than `server_timeout`; returns
/// how many went.
pub(crate) async fn run_once(storage: &Storage, server_timeout: Duration) -> Result<u64> {
    let pruned = storage
        .backend()
        .prune_servers(PruneServersParams {
            silent_for: server_timeout,
        })
        .await?;
    if pruned > 0 {
        debug!(servers = pruned, "forgot silent servers");
    }
    Ok(pruned)
}
