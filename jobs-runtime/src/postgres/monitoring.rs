//! [`MonitoringStorage`] for PostgreSQL: reads only.

use chrono::{DateTime, Utc};
use jobs_core::Parent;
use jobs_core::{
    BatchId, BatchRecord, Error, JobId, JobLogQuery, JobParameters, JobQuery, JobRecord, JobSearch,
    LogRecord, MonitoringStorage, Paused, QueueCounts, RecurringJob, Result, SearchPage, State,
    StateChange, StateCounts, Statistics,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PostgresStorage;
use super::decode::{decode_state, limit, record};
use crate::counting::{
    by_queue, by_state, counts_of_sql, newest_sql, queue_counts_sql, queue_heads_sql, waiting,
    with_heads,
};

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

/// A [`JobSearch`]: reads the window ([`JobSearch::WINDOW`] jobs below
/// the id `$1`) of jobs in the state, then matches the queue (`$2`), name
/// (`$3`), text (`$4`) and attempted (`$5`) filters, `NULL` for none, up
/// to the limit (`$6`). Reads how many jobs the window holds, its oldest
/// id, and the matches' ids, newest first. The queue filters the window
/// rather than bounding it: no index lists a big state's jobs of one
/// queue newest first, and a queue of few jobs would make the window walk
/// every job kept. The state is a literal, as in [`list_sql`], so a rare
/// state's window is read through its partial indexes ([`newest_sql`]).
pub(super) fn search_sql(state: Option<State>) -> String {
    let window = newest_sql(
        "{s}.jobs_job",
        "id, queue, name, args, attempt",
        state,
        "$1",
        JobSearch::WINDOW,
    );
    format!(
        "WITH searched AS ({window})
         SELECT (SELECT count(*) FROM searched), (SELECT min(id) FROM searched),
                ARRAY(SELECT id FROM searched
                      WHERE ($2::text IS NULL OR queue = $2)
                        AND ($3::text IS NULL OR name = $3)
                        AND ($4::text IS NULL OR strpos(args, $4) > 0)
                        AND (NOT $5 OR attempt > 0)
                      ORDER BY id DESC LIMIT $6)"
    )
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

    async fn search_jobs(&self, search: JobSearch) -> Result<SearchPage> {
        const OP: &str = "searching jobs";
        let jobs = &search.jobs;
        let limit = jobs.limit.min(JobQuery::MAX_LIMIT);
        let (read, oldest, ids): (i64, Option<i64>, Vec<i64>) = self
            .run(
                OP,
                sqlx::query_as(self.sql(&search_sql(jobs.state)))
                    .bind(jobs.before.map_or(i64::MAX, |id| id.0))
                    .bind(&jobs.queue)
                    .bind(&search.name)
                    .bind(&search.text)
                    .bind(search.attempted)
                    .bind(super::decode::limit(limit))
                    .fetch_one(&self.pool),
            )
            .await?;
        let matches = if ids.is_empty() {
            Vec::new()
        } else {
            self.run(
                OP,
                sqlx::query(self.sql(
                    "SELECT id, name, queue, args, state, attempt, max_attempts, priority,
                            created_at, state_changed_at, run_at, reason, result, parent_id,
                            parent_batch_id, batch_id, progress
                     FROM {s}.jobs_job WHERE id = ANY($1) ORDER BY id DESC",
                ))
                .bind(&ids)
                .try_map(|row: PgRow| record(&row))
                .fetch_all(&self.pool),
            )
            .await?
        };
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
        let rows: Vec<(String, String, i64)> = self
            .run(
                "counting jobs by queue",
                sqlx::query_as(self.sql(&queue_counts_sql("{s}.jobs_job"))).fetch_all(&self.pool),
            )
            .await?;
        let mut queues = by_queue(rows)?;
        let waiting = waiting(&queues);
        if !waiting.is_empty() {
            let sql = queue_heads_sql("{s}.jobs_job", "unnest($1::text[]) AS q(queue)");
            let heads: Vec<(String, Option<DateTime<Utc>>, Option<DateTime<Utc>>)> = self
                .run(
                    "reading the queues' heads",
                    sqlx::query_as(self.sql(&sql))
                        .bind(waiting)
                        .fetch_all(&self.pool),
                )
                .await?;
            with_heads(&mut queues, heads, |time| time);
        }
        Ok(queues)
    }

    async fn counts_of(&self, states: &[State]) -> Result<StateCounts> {
        let Some(sql) = counts_of_sql("{s}.jobs_job", states) else {
            return Ok(StateCounts::default());
        };
        let rows: Vec<(String, i64)> = self
            .run(
                "counting jobs",
                sqlx::query_as(self.sql(&sql)).fetch_all(&self.pool),
            )
            .await?;
        by_state(rows)
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

    async fn continuations(&self, parent: Parent) -> Result<Vec<JobRecord>> {
        // Through `jobs_job_parent` or `jobs_job_parent_batch`.
        let statement = match &parent {
            Parent::Job(id) => sqlx::query(self.sql(
                "SELECT id, name, queue, args, state, attempt, max_attempts, priority, created_at,
                        state_changed_at, run_at, reason, result, parent_id, parent_batch_id,
                        batch_id, progress
                 FROM {s}.jobs_job WHERE parent_id = $1 ORDER BY id LIMIT $2",
            ))
            .bind(id.0),
            Parent::Batch(id) => sqlx::query(self.sql(
                "SELECT id, name, queue, args, state, attempt, max_attempts, priority, created_at,
                        state_changed_at, run_at, reason, result, parent_id, parent_batch_id,
                        batch_id, progress
                 FROM {s}.jobs_job WHERE parent_batch_id = $1 ORDER BY id LIMIT $2",
            ))
            .bind(id.as_str().to_owned()),
        };
        self.run(
            "reading continuations",
            statement
                .bind(limit(JobQuery::MAX_LIMIT))
                .try_map(|row: PgRow| record(&row))
                .fetch_all(&self.pool),
        )
        .await
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
