//! [`MonitoringStorage`] for PostgreSQL: reads only.

use jobs_core::{
    BatchId, BatchRecord, Error, JobId, JobLogQuery, JobParameters, JobQuery, JobRecord, LogRecord,
    MonitoringStorage, Paused, QueueCounts, RecurringJob, Result, State, StateChange, StateCounts,
    Statistics,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStorage;
use super::decode::{decode_state, limit, record};
use crate::queue_counts::by_queue;

/// The page of jobs [`MonitoringStorage::list_jobs`] reads: `$1` the id to
/// start below, then the queue when filtered by it, then the limit. The
/// state is written out as a literal (one of seven names, never user
/// text): one text per filter lets the planner prove the predicate of the
/// partial index `jobs_job_listed` for a rare state, which a parameter or
/// `($1 IS NULL OR state = $1)` would not, and it would walk the primary
/// key back through every retained job instead (see the plan tests).
pub(super) fn list_sql(state: Option<State>, by_queue: bool) -> String {
    let mut sql = String::from(
        "SELECT id, name, queue, args, state, attempt, max_attempts, priority, created_at,
                state_changed_at, run_at, reason, result, parent_id, parent_batch_id, batch_id, progress
         FROM {s}.jobs_job WHERE id < $1",
    );
    if let Some(state) = state {
        sql.push_str(&format!(" AND state = '{}'", state.as_str()));
    }
    if by_queue {
        sql.push_str(" AND queue = $2 ORDER BY id DESC LIMIT $3");
    } else {
        sql.push_str(" ORDER BY id DESC LIMIT $2");
    }
    sql
}

/// Counts each of `states` apart, the state written out as a literal (one
/// of seven names, never user text) so that each count reads the partial
/// index of its state; `None` for no state.
pub(super) fn counts_of_sql(states: &[State]) -> Option<String> {
    let counts: Vec<String> = states
        .iter()
        .map(|state| {
            format!(
                "SELECT '{state}', count(*) FROM {{s}}.jobs_job WHERE state = '{state}'",
                state = state.as_str()
            )
        })
        .collect();
    (!counts.is_empty()).then(|| counts.join(" UNION ALL "))
}

#[async_trait::async_trait]
impl MonitoringStorage for PostgresStorage {
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>> {
        self.run(
            "reading a job",
            sqlx::query(self.sql(
                "SELECT id, name, queue, args, state, attempt, max_attempts, priority, created_at,
                    state_changed_at, run_at, reason, result, parent_id, parent_batch_id,
                    batch_id, progress
             FROM {s}.jobs_job WHERE id = $1",
            ))
            .bind(id.0)
            .try_map(|row: PgRow| record(&row))
            .fetch_optional(&self.pool),
        )
        .await
    }

    async fn history(&self, id: JobId) -> Result<Vec<StateChange>> {
        self.run("reading a job's history", sqlx::query(self.sql(
            "SELECT state, at, reason, data FROM {s}.jobs_job_state WHERE job_id = $1 ORDER BY id",
        ))
        .bind(id.0)
        .try_map(|row: PgRow| {
            Ok(StateChange {
                state: decode_state(row.try_get("state")?)?,
                at: row.try_get("at")?,
                reason: row.try_get("reason")?,
                data: row.try_get("data")?,
            })
        })
        .fetch_all(&self.pool)
        ).await
    }

    async fn statistics(&self) -> Result<Statistics> {
        self.statistics_read().await
    }

    async fn queue_counts(&self) -> Result<Vec<QueueCounts>> {
        let rows: Vec<(String, String, i64)> = self
            .run(
                "counting jobs by queue",
                sqlx::query_as(self.sql(
                    "SELECT queue, state, count(*) FROM {s}.jobs_job
                     WHERE state IN ('Enqueued', 'Scheduled', 'Processing', 'Awaiting', 'Failed')
                     GROUP BY queue, state ORDER BY queue",
                ))
                .fetch_all(&self.pool),
            )
            .await?;
        by_queue(rows)
    }

    async fn counts_of(&self, states: &[State]) -> Result<StateCounts> {
        let rows: Vec<(String, i64)> = match counts_of_sql(states) {
            Some(sql) => {
                self.run(
                    "counting jobs",
                    sqlx::query_as(self.sql(&sql)).fetch_all(&self.pool),
                )
                .await?
            }
            None => Vec::new(),
        };
        let mut counts = StateCounts::default();
        for (state, count) in rows {
            let state = decode_state(&state).map_err(|e| Error::storage("counting jobs", e))?;
            counts.set(state, u64::try_from(count).unwrap_or(0));
        }
        Ok(counts)
    }

    async fn counts(&self) -> Result<StateCounts> {
        let rows: Vec<(String, i64)> = self
            .run(
                "counting jobs",
                sqlx::query_as(self.sql("SELECT state, count(*) FROM {s}.jobs_job GROUP BY state"))
                    .fetch_all(&self.pool),
            )
            .await?;
        let mut counts = StateCounts::default();
        for (state, count) in rows {
            let state = decode_state(&state).map_err(|e| Error::storage("counting jobs", e))?;
            counts.set(state, u64::try_from(count).unwrap_or(0));
        }
        Ok(counts)
    }

    async fn list_jobs(&self, query: JobQuery) -> Result<Vec<JobRecord>> {
        let sql = list_sql(query.state, query.queue.is_some());
        let mut statement =
            sqlx::query(self.sql(&sql)).bind(query.before.map_or(i64::MAX, |id| id.0));
        if let Some(queue) = query.queue {
            statement = statement.bind(queue);
        }
        self.run(
            "listing jobs",
            statement
                .bind(limit(query.limit.min(JobQuery::MAX_LIMIT)))
                .try_map(|row: PgRow| record(&row))
                .fetch_all(&self.pool),
        )
        .await
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
