//! Statistics of finished jobs for SQLite: `jobs_counter_hour`, kept by
//! the trigger `jobs_job_count_final` (migration 0009); the leader folds
//! hours older than the history kept into the epoch's row.

use jobs_core::{AggregateCountersParams, Result, Statistics};

use super::SqliteStorage;
use super::decode::{millis, time};
use crate::sql_error::storage_error;

impl SqliteStorage {
    pub(super) async fn statistics_read(&self) -> Result<Statistics> {
        let rows: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT name, hour, value FROM jobs_counter_hour")
                .fetch_all(&self.reader)
                .await
                .map_err(|e| storage_error("reading statistics", e))?;
        Ok(Statistics::from_rows(
            rows.into_iter()
                .map(|(name, hour, value)| (name, time(hour), value)),
        ))
    }

    pub(super) async fn counters_aggregate(&self, params: AggregateCountersParams) -> Result<u64> {
        const OP: &str = "folding old hours of counters";
        let (mut tx, now) = self.write(OP).await?;
        let cutoff = now - millis(params.keep);
        let old: Vec<(String, i64, i64)> = sqlx::query_as(
            "DELETE FROM jobs_counter_hour WHERE hour > 0 AND hour < ?1
             RETURNING name, hour, value",
        )
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        for (name, _, value) in &old {
            sqlx::query(
                "INSERT INTO jobs_counter_hour (name, hour, value) VALUES (?1, 0, ?2)
                 ON CONFLICT (name, hour) DO UPDATE SET value = value + excluded.value",
            )
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(|e| storage_error(OP, e))?;
        }
        tx.commit().await.map_err(|e| storage_error(OP, e))?;
        Ok(old.len() as u64)
    }
}
