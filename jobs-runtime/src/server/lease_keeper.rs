//! Renews the lease of every job this server holds, every third of the
//! lease and whenever an operator moved running jobs, so that a job
//! running for hours is never rescued while its server lives. An attempt whose lease was lost anyway (the storage was
//! away longer than the lease and the job was rescued, or an operator
//! requeued or deleted it) is stopped: it is no longer this server's.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{CancelReason, ExtendLeasesParams, Result};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::held::Held;
use crate::Storage;

/// The wait before trying again after a failed renewal.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Runs [`run_once`] every third of the lease until `cancel`; sooner again
/// after a failure.
pub(crate) async fn run(
    storage: Storage,
    held: Arc<Held>,
    lease: Duration,
    cancel: CancellationToken,
) {
    let period = lease / 3;
    let mut wait = period;
    let mut revoked = storage.leases_revoked();
    revoked.mark_unchanged();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
            // An operator moved running jobs: renew now, so that the
            // attempts this server no longer holds stop at once.
            Ok(()) = revoked.changed() => {}
        }
        wait = match run_once(&storage, &held, lease).await {
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
/// lease (see [`Held::lose`]).
pub(crate) async fn run_once(storage: &Storage, held: &Held, lease: Duration) -> Result<usize> {
    let jobs = held.attempts();
    if jobs.is_empty() {
        return Ok(0);
    }
    let renewed = storage
        .backend()
        .extend_leases(ExtendLeasesParams {
            jobs: jobs.clone(),
            lease,
        })
        .await?;
    for job in jobs
        .into_iter()
        .filter(|job| renewed.binary_search(&job.id).is_err())
    {
        if let Some(cancel) = held.lose(job) {
            warn!(job.id = %job.id, attempt = job.attempt, "lost the lease of a running job (it was cancelled, requeued or deleted, or rescued); stopping this attempt");
            cancel.cancel(CancelReason::Cancelled);
        }
    }
    Ok(renewed.len())
}
