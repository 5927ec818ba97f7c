//! Turning rows into the contract's values, and values into parameters.
//! Times are Unix milliseconds, UTC.

use chrono::{DateTime, TimeZone, Utc};
use jobs_core::{BatchId, FetchedJob, JobId, JobRecord};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

pub(super) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// The jobs [`TAKEN`](super::jobs::TAKEN) returns.
pub(super) fn taken_jobs(json: &str) -> serde_json::Result<Vec<FetchedJob>> {
    type Taken = (
        i64,
        String,
        String,
        String,
        u32,
        u32,
        i16,
        i64,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Taken> = serde_json::from_str(json)?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                name,
                queue,
                args,
                attempt,
                max_attempts,
                priority,
                created_at,
                parent_result,
                trace_context,
            )| {
                FetchedJob {
                    id: JobId(id),
                    name,
                    queue,
                    args,
                    attempt,
                    max_attempts,
                    priority,
                    enqueued_at: time(created_at),
                    parent_result,
                    trace_context,
                }
            },
        )
        .collect())
}

pub(super) fn record(row: &SqliteRow) -> std::result::Result<JobRecord, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(JobRecord {
        id: JobId(row.try_get("id")?),
        name: row.try_get("name")?,
        queue: row.try_get("queue")?,
        args: row.try_get("args")?,
        state: state
            .parse()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        priority: row.try_get("priority")?,
        created_at: time(row.try_get("created_at")?),
        state_changed_at: time(row.try_get("state_changed_at")?),
        run_at: row.try_get::<Option<i64>, _>("run_at")?.map(time),
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
