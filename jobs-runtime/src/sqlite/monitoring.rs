//! [`MonitoringStorage`] for SQLite: reads only, through the reading pool.

use jobs_core::Parent;
use jobs_core::{
    BatchId, BatchRecord, Error, JobId, JobLogQuery, JobParameters, JobQuery, JobRecord, JobSearch,
    LogRecord, MonitoringStorage, Paused, QueueCounts, RecurringJob, Result, SearchPage, State,
    StateChange, StateCounts, Statistics,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStorage;
use super::decode::{record, time};
use crate::counting::{
    by_queue, by_state, counts_of_sql, newest_sql, queue_counts_sql, queue_heads_sql, waiting,
    with_heads,
};
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

    async fn search_jobs(&self, search: JobSearch) -> Result<SearchPage> {
        const OP: &str = "searching jobs";
        let jobs = &search.jobs;
        let limit = jobs.limit.min(JobQuery::MAX_LIMIT);
        // The state a literal, as in `list_jobs`; the queue filters the
        // window rather than bounding it (see PostgreSQL's `search_sql`).
        let window = newest_sql(
            "jobs_job",
            "id, queue, name, args, attempt",
            jobs.state,
            "?1",
            JobSearch::WINDOW,
        );
        let sql = format!(
            "WITH searched AS ({window})
             SELECT (SELECT count(*) FROM searched), (SELECT min(id) FROM searched),
                    (SELECT json_group_array(id) FROM (
                         SELECT id FROM searched
                         WHERE (?2 IS NULL OR queue = ?2)
                           AND (?3 IS NULL OR name = ?3)
                           AND (?4 IS NULL OR instr(args, ?4) > 0)
                           AND (NOT ?5 OR attempt > 0)
                         ORDER BY id DESC LIMIT ?6))"
        );
        let (read, oldest, ids): (i64, Option<i64>, String) =
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(jobs.before.map_or(i64::MAX, |id| id.0))
                .bind(&jobs.queue)
                .bind(&search.name)
                .bind(&search.text)
                .bind(search.attempted)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_one(&self.reader)
                .await
                .map_err(|e| storage_error(OP, e))?;
        let matches = sqlx::query(
            "SELECT id, name, queue, args, state, attempt, max_attempts, priority, created_at,
                    state_changed_at, run_at, reason, result, parent_id, parent_batch_id,
                    batch_id, progress
             FROM jobs_job WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id DESC",
        )
        .bind(&ids)
        .try_map(|row: SqliteRow| record(&row))
        .fetch_all(&self.reader)
        .await
        .map_err(|e| storage_error(OP, e))?;
        Ok(SearchPage::of(
            matches,
            limit,
            usize::try_from(read).unwrap_or(0),
            oldest.map(JobId),
        ))
    }

    async fn statistics(&self) -> Result<Statistics> {
        self.statistics_read().await
    }

    async fn queue_counts(&self) -> Result<Vec<QueueCounts>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as(sqlx::AssertSqlSafe(queue_counts_sql("jobs_job")))
                .fetch_all(&self.reader)
                .await
                .map_err(|e| storage_error("counting jobs by queue", e))?;
        let mut queues = by_queue(rows)?;
        let waiting = waiting(&queues);
        if !waiting.is_empty() {
            let sql = queue_heads_sql(
                "jobs_job",
                "(SELECT value AS queue FROM json_each(?1)) AS q",
            );
            let waiting = serde_json::to_string(&waiting)
                .map_err(|e| Error::storage("reading the queues' heads", e))?;
            let heads: Vec<(String, Option<i64>, Option<i64>)> =
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(waiting)
                    .fetch_all(&self.reader)
                    .await
                    .map_err(|e| storage_error("reading the queues' heads", e))?;
            with_heads(&mut queues, heads, time);
        }
        Ok(queues)
    }

    async fn counts_of(&self, states: &[State]) -> Result<StateCounts> {
        let Some(sql) = counts_of_sql("jobs_job", states) else {
            return Ok(StateCounts::default());
        };
        let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.reader)
            .await
            .map_err(|e| storage_error("counting jobs", e))?;
        by_state(rows)
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

    async fn continuations(&self, parent: Parent) -> Result<Vec<JobRecord>> {
        // Through `jobs_job_parent` or `jobs_job_parent_batch`.
        let statement = match &parent {
            Parent::Job(id) => sqlx::query(
                "SELECT id, name, queue, args, state, attempt, max_attempts, priority, created_at,
                    state_changed_at, run_at, reason, result, parent_id, parent_batch_id,
                    batch_id, progress
                 FROM jobs_job WHERE parent_id = ?1 ORDER BY id LIMIT ?2",
            )
            .bind(id.0),
            Parent::Batch(id) => sqlx::query(
                "SELECT id, name, queue, args, state, attempt, max_attempts, priority, created_at,
                    state_changed_at, run_at, reason, result, parent_id, parent_batch_id,
                    batch_id, progress
                 FROM jobs_job WHERE parent_batch_id = ?1 ORDER BY id LIMIT ?2",
            )
            .bind(id.as_str().to_owned()),
        };
        statement
            .bind(i64::try_from(JobQuery::MAX_LIMIT).unwrap_or(i64::MAX))
            .try_map(|row: SqliteRow| record(&row))
            .fetch_all(&self.reader)
            .await
            .map_err(|e| storage_error("reading continuations", e))
    }

    async fn list_batches(&self, query: jobs_core::BatchQuery) -> Result<Vec<BatchRecord>> {
        self.batch_list(query).await
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
