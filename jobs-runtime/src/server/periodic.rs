//! The loop every periodic service runs: do the work, log a failure, wait
//! the period or stop.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Runs `work` now and then every `period` until `cancel` fires; a failed
/// run is logged as `what` failed and the next run comes after the period.
pub(crate) async fn every<T, F, Fut>(
    period: Duration,
    cancel: &CancellationToken,
    what: &str,
    mut work: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = jobs_core::Result<T>>,
{
    loop {
        tokio::select! {
            result = work() => if let Err(error) = result {
                warn!(%error, "{what} failed");
            },
            _ = cancel.cancelled() => return,
        }
        if sleep_or_cancel(period, cancel).await {
            return;
        }
    }
}

/// Sleeps `duration` unless `cancel` fires first; returns whether it fired.
pub(crate) async fn sleep_or_cancel(duration: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => false,
        _ = cancel.cancelled() => true,
    }
}
