//! Wakes the fetcher as soon as the storage says jobs arrived from another
//! process (PostgreSQL `LISTEN`/`NOTIFY`). Polling goes on beside it, so a
//! lost notification or a broken listener only delays a job.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::periodic::sleep_or_cancel;
use crate::Storage;

/// The longest wait before listening again after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Listens until `cancel`, listening again after each failure.
pub(crate) async fn run(storage: Storage, cancel: CancellationToken) {
    let waker = storage.clone();
    let wake = move || waker.wake_servers_if(true);
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = tokio::time::Instant::now();
        tokio::select! {
            result = storage.backend().watch_for_jobs(&wake) => {
                if let Err(error) = result {
                    warn!(%error, retry_in = ?backoff, "listening for enqueued jobs failed; polling meanwhile");
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
