//! Gives back jobs whose server stopped renewing their lease (it crashed or
//! lost the database): `Enqueued` again, or `Failed` when no attempt is left.
//! River's `job_rescuer`. Leader-only: started and stopped with the
//! leadership (see `maintenance.rs`).

use std::time::Duration;

use jobs_core::{ExpiredLeasesParams, FinishParams, JobOutcome, Result, decide};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::completer::outcomes_moved;
use super::periodic::every;
use crate::Storage;
use crate::filters::StateTeller;

/// The most jobs moved per storage call.
pub const RESCUE_BATCH: usize = 1000;

/// Runs [`run_once`] every `interval` until `cancel`.
pub(crate) async fn run(
    storage: Storage,
    states: StateTeller,
    interval: Duration,
    cancel: CancellationToken,
) {
    every(interval, &cancel, "rescuing jobs", || {
        run_once(&storage, &states)
    })
    .await;
}

/// Rescues every job whose lease expired; returns how many moved. What
/// each becomes is decided here ([`decide::rescued`]); the storage moves
/// only those whose lease is still expired when it writes. The state
/// filters are told of the moves.
pub(crate) async fn run_once(storage: &Storage, states: &StateTeller) -> Result<u64> {
    let mut total = 0;
    loop {
        let expired = storage
            .backend()
            .expired_leases(ExpiredLeasesParams {
                limit: RESCUE_BATCH,
            })
            .await?;
        let found = expired.len();
        let jobs: Vec<JobOutcome> = expired
            .iter()
            .map(|lease| JobOutcome {
                job: lease.job,
                outcome: decide::rescued(lease),
            })
            .collect();
        let moved = storage.rescue(FinishParams { jobs: jobs.clone() }).await?;
        let names: Vec<(&str, &str)> = expired
            .iter()
            .map(|lease| (lease.name.as_str(), lease.queue.as_str()))
            .collect();
        outcomes_moved(states, &jobs, &names, &moved);
        total += moved.len() as u64;
        if found < RESCUE_BATCH || moved.is_empty() {
            if total > 0 {
                info!(jobs = total, "rescued jobs whose lease expired");
            }
            return Ok(total);
        }
    }
}
