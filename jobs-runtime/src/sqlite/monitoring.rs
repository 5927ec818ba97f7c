//! [`MonitoringStorage`] for SQLite: reads only, through the reading pool.

use jobs_core::{
    BatchId, BatchRecord, Error, JobId, JobLogQuery, JobParameters, JobQuery, JobRecord, LogRecord,
    MonitoringStorage, Paused, QueueCounts, RecurringJob, Result, State, StateChange, StateCounts,
    Statistics,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStorage;
use super::decode::{record, time};
use crate::queue_counts::by_queue;
use crate::sql_error::storage_error;

#[async_trait::async_trait]
impl MonitoringStorage for SqliteStorage {
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        sqlx::query(
            "SELECT id, name, queue, args, state, attempt, max_attempts, priority, created_at,
                    state_changed_at, run_at, reason, result, parent_id, parent_batch_id,
                    batch_id, progress
             FROM jobs_job WHERE id = ?1",
        )
        .bind(id.0)
        .try_map(|row: SqliteRow| record(&row))
        .fetch_optional(&self.reader)
        .await
        .map_err(|e| storage_error("reading a job", e))
    }

    async fn history(&self, id: JobId) -> Result<Vec<StateChange>> {
        sqlx::query(
            "SELECT state, at, reason, data FROM jobs_job_state WHERE job_id = ?1 ORDER BY id",
        )
        .bind(id.0)
        .try_map(|row: SqliteRow| {
            let state: String = row.try_get("state")?;
            let data: Option<String> = row.try_get("data")?;
            Ok(StateChange {
                state: state
                    .parse()
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                at: time(row.try_get("at")?),
                reason: row.try_get("reason")?,
                data: data
                    .map(|data| serde_json::from_str(&data))
                    .transpose()
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            })
        })
        .fetch_all(&self.reader)
        .await
        .map_err(|e| storage_error("reading a job's history", e))
    }

    async fn statistics(&self) -> Result<Statistics> {
        self.statistics_read().await
    }

    async fn queue_counts(&self) -> Result<Vec<QueueCounts>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT queue, state, count(*) FROM jobs_job
             WHERE state IN ('Enqueued', 'Scheduled', 'Processing', 'Awaiting', 'Failed')
             GROUP BY queue, state ORDER BY queue",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(|e| storage_error("counting jobs by queue", e))?;
        by_queue(rows)
    }

    async fn counts_of(&self, states: &[State]) -> Result<StateCounts> {
        // Each state written out as a literal (one of seven names, never
        // user text): SQLite uses a partial index only for a term it can
        // match when it prepares the statement, never for a parameter.
        let counts: Vec<String> = states
            .iter()
            .map(|state| {
                format!(
                    "SELECT '{state}', count(*) FROM jobs_job WHERE state = '{state}'",
                    state = state.as_str()
                )
            })
            .collect();
        let mut counted = StateCounts::default();
        if counts.is_empty() {
            return Ok(counted);
        }
        let rows: Vec<(String, i64)> =
            sqlx::query_as(sqlx::AssertSqlSafe(counts.join(" UNION ALL ")))
                .fetch_all(&self.reader)
                .await
                .map_err(|e| storage_error("counting jobs", e))?;
        for (state, count) in rows {
            let state: State = state
                .parse()
                .map_err(|e| Error::storage("counting jobs", e))?;
            counted.set(state, u64::try_from(count).unwrap_or(0));
        }
        Ok(counted)
    }

    async fn counts(&self) -> Result<StateCounts> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM jobs_job GROUP BY state")
                .fetch_all(&self.reader)
                .await
                .map_err(|e| storage_error("counting jobs", e))?;
        let mut counts = StateCounts::default();
        for (state, count) in rows {
            let state: State = state
                .parse()
                .map_err(|e| Error::storage("counting jobs", e))?;
            counts.set(state, u64::try_from(count).unwrap_or(0));
        }
        Ok(counts)
    }

    async fn list_jobs(&self, query: JobQuery) -> Result<Vec<JobRecord>> {
        // One text per filter, the state written out as a literal (one of
        // seven names, never user text). Without an index of states (see
        // migration 0004), a page walks the primary key back from `before`.
        let mut sql = String::from(
            "SELECT id, name, queue, args, state, attempt, max_attempts, priority, created_at,
                    state_changed_at, run_at, reason, result, parent_id, parent_batch_id,
                    batch_id, progress
             FROM jobs_job WHERE id < ?",
        );
        if let Some(state) = query.state {
            sql.push_str(&format!(" AND state = '{}'", state.as_str()));
        }
        if query.queue.is_some() {
            sql.push_str(" AND queue = ?");
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let mut statement =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(query.before.map_or(i64::MAX, |id| id.0));
        if let Some(queue) = query.queue {
            statement = statement.bind(queue);
        }
        statement
            .bind(i64::try_from(query.limit.min(JobQuery::MAX_LIMIT)).unwrap_or(i64::MAX))
            .try_map(|row: SqliteRow| record(&row))
            .fetch_all(&self.reader)
            .await
            .map_err(|e| storage_error("listing jobs", e))
    }

    async fn recurring_jobs(&self) -> Result<Vec<RecurringJob>> {
        self.recurring_list().await
    }

    async fn recurring_job(&self, id: &str) -> Result<Option<RecurringJob>> {
        self.recurring_get(id).await
    }

    async fn batch(&self, id: &BatchId) -> Result<Option<BatchRecord>> {
        self.batch_read(id).await
    }

    async fn paused(&self) -> Result<Vec<Paused>> {
        self.paused_list().await
    }

    async fn job_parameters(&self, id: JobId) -> Result<JobParameters> {
        self.parameters_of(id).await
    }

    async fn job_log(&self, query: JobLogQuery) -> Result<Vec<LogRecord>> {
        self.log_list(query).await
    }
}
