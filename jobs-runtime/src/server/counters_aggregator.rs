//! Folds the statistics' counters (Hangfire's `CountersAggregator`): the
//! counts the recording of outcomes appends are added to their hour's, and
//! hours older than [`STATISTICS_KEPT`] to the totals, so reading the
//! statistics stays cheap however many jobs finish. Leader-only: started
//! and stopped with the leadership (see `maintenance.rs`).

use std::time::Duration;

use jobs_core::{AggregateCountersParams, Result, STATISTICS_KEPT};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::periodic::every;
use crate::Storage;

/// How often the counters are folded: often enough that at tens of
/// thousands of jobs a second a few thousand appended rows wait at most.
pub const AGGREGATE_INTERVAL: Duration = Duration::from_secs(5);

/// Runs [`run_once`] every [`AGGREGATE_INTERVAL`] until `cancel`.
pub(crate) async fn run(storage: Storage, cancel: CancellationToken) {
    every(AGGREGATE_INTERVAL, &cancel, "folding counters", || {
        run_once(&storage)
    })
    .await;
}

/// Folds the counters once; returns how many rows were folded.
pub(crate) async fn run_once(storage: &Storage) -> Result<u64> {
    let folded = storage
        .backend()
        .aggregate_counters(AggregateCountersParams {
            keep: STATISTICS_KEPT,
        })
        .await?;
    if folded > 0 {
        debug!(rows = folded, "folded counters");
    }
    Ok(folded)
}
