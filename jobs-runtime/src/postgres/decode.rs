//! Turning rows into the contract's values, and values into parameters.

use jobs_core::{BatchId, BatchState, FetchedJob, JobId, JobRecord};
use sqlx::Row;
use sqlx::postgres::PgRow;

pub(super) fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub(super) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(super) fn decode_batch_state(state: &str) -> std::result::Result<BatchState, sqlx::Error> {
    state.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

pub(super) fn decode_state(state: &str) -> std::result::Result<jobs_core::State, sqlx::Error> {
    state.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A count column (`INTEGER`: an attempt number, attempts, workers) as
/// `u32`; a negative value, which no statement writes, reads as 0.
pub(super) fn count(row: &PgRow, column: &str) -> std::result::Result<u32, sqlx::Error> {
    Ok(row.try_get::<i32, _>(column)?.try_into().unwrap_or(0))
}

pub(super) fn fetched(row: &PgRow) -> std::result::Result<FetchedJob, sqlx::Error> {
    Ok(FetchedJob {
        id: JobId(row.try_get("id")?),
        name: row.try_get("name")?,
        queue: row.try_get("queue")?,
        args: row.try_get("args")?,
        attempt: count(row, "attempt")?,
        max_attempts: count(row, "max_attempts")?,
        priority: row.try_get("priority")?,
        enqueued_at: row.try_get("created_at")?,
        parent_result: row.try_get("parent_result")?,
        trace_context: row.try_get("trace_context")?,
    })
}

pub(super) fn record(row: &PgRow) -> std::result::Result<JobRecord, sqlx::Error> {
    Ok(JobRecord {
        id: JobId(row.try_get("id")?),
        name: row.try_get("name")?,
        queue: row.try_get("queue")?,
        args: row.try_get("args")?,
        state: decode_state(row.try_get("state")?)?,
        attempt: count(row, "attempt")?,
        max_attempts: count(row, "max_attempts")?,
        priority: row.try_get("priority")?,
        created_at: row.try_get("created_at")?,
        state_changed_at: row.try_get("state_changed_at")?,
        run_at: row.try_get("run_at")?,
        reason: row.try_get("reason")?,
        result: row.try_get("result")?,
        parent: row.try_get::<Option<i64>, _>("parent_id")?.map(JobId),
        parent_batch: row
            .try_get::<Option<String>, _>("parent_batch_id")?
            .map(BatchId),
        batch: row.try_get::<Option<String>, _>("batch_id")?.map(BatchId),
        progress: row.try_get("progress")?,
    })
}
