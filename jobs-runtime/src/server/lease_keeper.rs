//! Renews the lease of every job this server runs, every third of the lease,
//! so that a job running for hours is never rescued while its server lives.
//! An attempt whose lease was lost anyway (the storage was away longer than
//! the lease, and the job was rescued) is stopped: another server has it.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{ExtendLeasesParams, Result};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Shared, sleep_or_cancel};

/// The wait before trying again after a failed renewal.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Runs [`run_once`] every third of the lease until `cancel`; sooner again
/// after a failure.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let period = shared.config.lease / 3;
    let mut wait = period;
    loop {
        if sleep_or_cancel(wait, &cancel).await {
            return;
        }
        wait = match run_once(&shared).await {
            Ok(_) => period,
            Err(error) => {
                warn!(%error, "renewing leases failed; trying again soon");
                RETRY_AFTER.min(period)
            }
        };
    }
}

/// Renews the leases of the jobs held now and stops the attempts whose
/// lease was lost; returns how many are still held. A job missing from the
/// answer because the completer just recorded its outcome is not a lost
/// lease (see [`Shared::lose`]).
pub(crate) async fn run_once(shared: &Shared) -> Result<usize> {
    let jobs = shared.in_flight();
    if jobs.is_empty() {
        return Ok(0);
    }
    let held = shared.storage.backend().extend_leases(ExtendLeasesParams {
            jobs: jobs.clone(),
            lease: shared.config.lease,
        })
        .await?;
    for job in jobs
        .into_iter()
        .filter(|job| held.binary_search(&job.id).is_err())
    {
        if let Some(cancel) = shared.lose(job) {
            warn!(job.id = %job.id, attempt = job.attempt, "lost the lease of a running job (it was rescued); stopping this attempt");
            cancel.cancel();
        }
    }
    Ok(held.len())
}
