//! Registers the server in the storage and heartbeats, so that operators
//! (and the dashboard) see which servers live; unregisters at shutdown.
//! A server pruned after a long silence registers again.

use std::sync::Arc;

use jobs_core::{Result, ServerInfo};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Shared, sleep_or_cancel};

/// Registers, then heartbeats every `heartbeat_interval` until `cancel`,
/// then unregisters.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut registered = false;
    loop {
        match run_once(&shared, registered).await {
            Ok(()) => registered = true,
            Err(error) => warn!(%error, "heartbeat failed"),
        }
        if sleep_or_cancel(shared.config.heartbeat_interval, &cancel).await {
            break;
        }
    }
    if let Err(error) = shared.storage.backend().unregister_server(&shared.id).await {
        warn!(%error, "unregistering the server failed; it will be pruned");
    }
}

/// Heartbeats, registering first when not (or no longer) registered.
pub(crate) async fn run_once(shared: &Shared, registered: bool) -> Result<()> {
    if registered && shared.storage.backend().heartbeat(&shared.id).await? {
        return Ok(());
    }
    if registered {
        info!("this server's record was pruned; registering again");
    }
    shared.storage.backend().register_server(ServerInfo {
            id: shared.id.clone(),
            workers: u32::try_from(shared.config.workers).unwrap_or(u32::MAX),
            queues: shared.config.queues.clone(),
            jobs: shared
                .registry
                .iter()
                .map(|job| job.name.to_owned())
                .collect(),
        })
        .await
}
