//! Renews the lease of every job this server runs, every third of the lease,
//! so that a job running for hours is never rescued while its server lives.

use std::sync::Arc;

use jobs_core::{ExtendLeasesParams, Result};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Shared, sleep_or_cancel};

/// Runs [`run_once`] every third of the lease until `cancel`.
pub(crate) async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let period = shared.config.lease / 3;
    loop {
        if sleep_or_cancel(period, &cancel).await {
            return;
        }
        if let Err(error) = run_once(&shared).await {
            warn!(%error, "renewing leases failed; jobs may be rescued and run again if this goes on");
        }
    }
}

/// Renews the leases of the jobs running now; returns how many are held.
pub(crate) async fn run_once(shared: &Shared) -> Result<u64> {
    let jobs = shared.in_flight();
    if jobs.is_empty() {
        return Ok(0);
    }
    let sent = jobs.len() as u64;
    let held = shared
        .storage
        .extend_leases(ExtendLeasesParams {
            jobs,
            lease: shared.config.lease,
        })
        .await?;
    if held < sent {
        warn!(
            lost = sent - held,
            "some running jobs were taken over after their lease expired"
        );
    }
    Ok(held)
}
