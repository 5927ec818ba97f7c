//! Stores this binary's `#[recurring]` jobs when the server starts, and
//! marks the stored ones it lacks as missing from code, unless their job
//! is another binary's that a live server runs.

use std::time::Duration;

use jobs_core::recurring::RecurringRegistration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::periodic::sleep_or_cancel;
use crate::Storage;

/// Syncs once, trying again with a growing wait (1 s to 30 s) while the
/// storage fails, until it succeeds or `cancel` fires.
pub(crate) async fn run(
    storage: Storage,
    job_names: Vec<&'static str>,
    server_timeout: Duration,
    cancel: CancellationToken,
) {
    let jobs = RecurringRegistration::all();
    let mut wait = Duration::from_secs(1);
    loop {
        match storage
            .sync_recurring(&jobs, &job_names, server_timeout)
            .await
        {
            Ok(missing) => {
                info!(
                    recurring = jobs.len(),
                    missing_from_code = missing,
                    "recurring jobs synced"
                );
                return;
            }
            Err(error) => {
                warn!(%error, retry_in = ?wait, "syncing the recurring jobs failed; trying again");
                if sleep_or_cancel(wait, &cancel).await {
                    return;
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}
