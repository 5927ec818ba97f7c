//! Wakes the fetcher as soon as the storage says jobs arrived from another
//! process, and the lease keeper when an operator moved running jobs
//! (PostgreSQL `LISTEN`/`NOTIFY`). Polling and lease renewal go on beside
//! it, so a lost notification or a broken listener only delays a job or a
//! stop.

use std::time::Duration;

use jobs_core::Notification;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::periodic::sleep_or_cancel;
use crate::Storage;

/// The longest wait before listening again after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens until `cancel`, listening again after each failure.
pub(crate) async fn run(storage: Storage, cancel: CancellationToken) {
    let waker = storage.clone();
    let notify = move |notification: Notification| match notification {
        Notification::JobsAvailable => waker.wake_servers_if(true),
        Notification::LeasesRevoked => waker.revoke_leases(),
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = tokio::time::Instant::now();
        tokio::select! {
            result = storage.backend().listen(&notify) => {
                if let Err(error) = result {
                    warn!(%error, retry_in = ?backoff, "listening for notifications failed; polling meanwhile");
                }
            }
            _ = cancel.cancelled() => return,
        }
        if started.elapsed() > MAX_BACKOFF * 2 {
            // It listened for a good while: this is a new failure.
            backoff = Duration::from_millis(100);
        }
        if sleep_or_cancel(backoff, &cancel).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
