//! Registers the server in the storage and heartbeats, so that operators
//! (and the dashboard) see which servers live; unregisters at shutdown.
//! A server pruned after a long silence registers again.

use std::time::Duration;

use jobs_core::{Result, ServerInfo};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::periodic::sleep_or_cancel;
use crate::Storage;

/// Registers, then heartbeats every `interval` until `cancel`, then
/// unregisters.
pub(crate) async fn run(
    storage: Storage,
    server: ServerInfo,
    interval: Duration,
    cancel: CancellationToken,
) {
    let mut registered = false;
    loop {
        match run_once(&storage, &server, registered).await {
            Ok(()) => registered = true,
            Err(error) => warn!(%error, "heartbeat failed"),
        }
        if sleep_or_cancel(interval, &cancel).await {
            break;
        }
    }
    if let Err(error) = storage.backend().unregister_server(&server.id).await {
        warn!(%error, "unregistering the server failed; it will be pruned");
    }
}

/// Heartbeats, registering first when not (or no longer) registered.
pub(crate) async fn run_once(
    storage: &Storage,
    server: &ServerInfo,
    registered: bool,
) -> Result<()> {
    if registered && storage.backend().heartbeat(&server.id).await? {
        return Ok(());
    }
    if registered {
        info!("this server's record was pruned; registering again");
    }
    storage.backend().register_server(server.clone()).await
}
